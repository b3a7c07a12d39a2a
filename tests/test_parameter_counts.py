"""Parameter counts of every model at its reference defaults, against counts from the reference layer shapes.

Each expected count below is summed layer by layer from the reference repository's layer shapes, each
term naming the file and class it comes from (event_flow = github.com/tudelft/event_flow, TinyCMax =
github.com/Huizerd/tinycmax, StereoSpike = github.com/urancon/StereoSpike). A conv k x k from Cin to Cout channels has ``Cin * Cout * k * k`` weights
plus ``Cout`` biases where it has a bias (:func:`conv`). event_flow's defaults (configs/train_*.yml):
num_bins 2 (``encoding: cnt``), base_num_channels 32, kernel_size 3; TinyCMax's (config/network/flow.yaml):
encoder / memory / decoder channels 64, final_bias true, 2 input channels (per-polarity counts).
"""

from __future__ import annotations

from functools import partial

import pytest
from torch import nn

from tinyflow.models import (
    ConvGRUFlowNet,
    EVFlowNet,
    FireFlowNet,
    FireNet,
    LIFEVFlowNet,
    LIFFireFlowNet,
    LIFFireNet,
    LIFFireNetShort,
    RecEVFlowNet,
    StereoSpike,
)
from tinyflow.models.neurons import NEURON_TYPES

BINS, C, K = 2, 32, 3  # event_flow: num_bins, base_num_channels, kernel_size
# learnable values per channel of one spiking layer: event_flow models/spiking_submodules.py ConvLIF
# (leak, thresh), ConvPLIF (leak_v, leak_pt, add_pt, thresh), ConvALIF / ConvXLIF (leak_v, leak_t;
# t0 and t1 are buffers at learn_thresh=False, the default); snntorch Leaky (beta, threshold); SpikingJelly
# IFNode (none: no leak, a fixed threshold)
NEURON = {"lif": 2, "plif": 4, "alif": 2, "xlif": 2, "snntorch_lif": 2, "if": 0}


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    """Parameters of a k x k conv from ``c_in`` to ``c_out`` channels: ``c_in*c_out*k*k (+ c_out)``."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def count(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())


# ---- the FireNet family: event_flow models/model.py ----

PRED = conv(C, 2, 1)  # model.py FireNet.pred: ConvLayer(32, 2, 1) with bias (submodules.py ConvLayer)


def firenet() -> int:
    head = conv(BINS, C, K)  # FireNet.head: submodules.py ConvLayer_(2, 32, 3), bias
    gru = 3 * conv(2 * C, C, K)  # G1, G2: submodules.py ConvGRU: reset_gate, update_gate, out_gate (64 -> 32)
    return head + 2 * gru + 4 * conv(C, C, K) + PRED  # R1a, R1b, R2a, R2b: ConvLayer_(32, 32, 3)


def fireflownet() -> int:
    return conv(BINS, C, K) + 6 * conv(C, C, K) + PRED  # FireFlowNet: rec_neuron = ConvLayer_


def lif_firenet(neuron: str, short: bool = False) -> int:
    lif = NEURON[neuron] * C
    head = conv(BINS, C, K, bias=False) + lif  # LIFFireNet.head: spiking_submodules.py ConvLIF (ff, no bias)
    g = 2 * conv(C, C, K, bias=False) + lif  # G1, G2: ConvLIFRecurrent (ff and rec convs, no bias)
    r = conv(C, C, K, bias=False) + lif  # R layers: ConvLIF
    return head + 2 * g + (2 if short else 4) * r + PRED  # short: without R1b and R2b


def lif_fireflownet(neuron: str) -> int:
    return conv(BINS, C, K, bias=False) + 6 * conv(C, C, K, bias=False) + 7 * NEURON[neuron] * C + PRED


# ---- the EV-FlowNet family: event_flow models/unet.py (BaseUNet, MultiResUNet, MultiResUNetRecurrent,
# SpikingMultiResUNetRecurrent) with model.py's EVFlowNet / RecEVFlowNet / SpikingRecEVFlowNet settings:
# num_encoders 4, num_residual_blocks 2, channel_multiplier 2, skip_type concat, use_upsample_conv True

ENCODER_IN = [
    BINS,
    2 * C,
    4 * C,
    8 * C,
]  # BaseUNet.encoder_input_sizes [32, 64, 128, 256], the first num_bins
ENCODER_OUT = [2 * C, 4 * C, 8 * C, 16 * C]  # BaseUNet.encoder_output_sizes
DECODER_IN = [2 * 16 * C, 2 * 8 * C + 2, 2 * 4 * C + 2, 2 * 2 * C + 2]  # build_multires_prediction_decoders:
DECODER_OUT = [8 * C, 4 * C, 2 * C, C]  # 2 * input_size + prediction_channels (0 for the first decoder)
PREDS = sum(conv(c, 2, 1) for c in DECODER_OUT)  # build_multires_prediction_layer: ConvLayer(c, 2, 1), bias


def evflownet() -> int:
    encoders = sum(conv(i, o, K) for i, o in zip(ENCODER_IN, ENCODER_OUT, strict=True))  # ConvLayer, stride 2
    residual = 2 * 2 * conv(16 * C, 16 * C, 3)  # 2 submodules.py ResidualBlock: conv1, conv2 3x3, bias
    decoders = sum(conv(i, o, K) for i, o in zip(DECODER_IN, DECODER_OUT, strict=True))  # UpsampleConvLayer
    return encoders + residual + decoders + PREDS


def rec_evflownet(recurrent_block: str) -> int:
    if recurrent_block == "convgru":  # submodules.py RecurrentConvLayer -> ConvGRU(out, out, 3): 3 gate convs
        recurrent = sum(3 * conv(2 * c, c, 3) for c in ENCODER_OUT)
    else:  # submodules.py ConvLSTM(out, out, 3): one Gates conv to 4 * hidden
        recurrent = sum(conv(2 * c, 4 * c, 3) for c in ENCODER_OUT)
    return evflownet() + recurrent  # RecurrentConvLayer.conv is MultiResUNet's encoder ConvLayer


def lif_evflownet(neuron: str) -> int:
    n = NEURON[neuron]
    encoders = sum(  # spiking_submodules.py SpikingRecurrentConvLayer: ConvLIF(in, out, k, stride 2) and
        conv(i, o, K, bias=False)
        + n * o
        + 2 * conv(o, o, K, bias=False)
        + n * o  # ConvLIFRecurrent(out, out, k)
        for i, o in zip(ENCODER_IN, ENCODER_OUT, strict=True)
    )
    residual = (
        2 * 2 * (conv(16 * C, 16 * C, 3, bias=False) + n * 16 * C)
    )  # SpikingResidualBlock: 2 ConvLIF 3x3
    decoders = sum(  # SpikingUpsampleConvLayer: ConvLIF(2 * in + 2, out, k)
        conv(i, o, K, bias=False) + n * o for i, o in zip(DECODER_IN, DECODER_OUT, strict=True)
    )
    return encoders + residual + decoders + PREDS  # the predictions stay ConvLayer (w_scale_pred 0.01)


# ---- TinyCMax tinycmax/network.py FlowNetwork, tinycmax/blocks.py ----

E, M, D = 64, 64, 64  # config/network/flow.yaml: encoder_channels, memory_channels, decoder_channels


def convgru() -> int:
    head = conv(BINS, E // 4, 7)  # conv_encoder: LazyConv2d(16, 7, stride=2), bias
    res1 = (
        conv(E // 4, E // 2, 3) + conv(E // 2, E // 2, 3) + conv(E // 4, E // 2, 3)
    )  # res_block(32, stride 2):
    res2 = (
        conv(E // 2, E, 3) + conv(E, E, 3) + conv(E // 2, E, 3)
    )  # conv, conv, downsample conv; res_block(64)
    memory = conv(E, 3 * M, 3) + conv(M, 3 * M, 3)  # LazyConvGru(64, 3): ih and hh, each to 3 * 64, bias
    decoder = conv(M, D, 3) + conv(
        D, 2, 3
    )  # upsample_decoder: LazyConv2d(64, 3), LazyConv2d(2, 3, bias=True)
    return head + res1 + res2 + memory + decoder


# ---- StereoSpike network/SNN_models.py StereoSpike, network/blocks.py SEWResBlock and NNConvUpsampling ----
# train.py: the binocular model on 2 cameras x 2 polarity channels, IF neurons (SpikingJelly IFNode: no
# parameters; MultiplyBy(1.0) has none either); no conv has a bias but the depth predictions'


def stereospike(cameras: int) -> int:
    c, k = 32, 5
    bottom = conv(2 * cameras, c, k, bias=False)  # bottom: Conv2d(4, 32, 5, bias=False) (2 for one camera)
    encoders = sum(conv(c * 2**i, c * 2 ** (i + 1), k, bias=False) for i in range(4))  # conv1..4: 32 -> 512
    bottleneck = 2 * 2 * conv(16 * c, 16 * c, 3, bias=False)  # 2 SEWResBlock(512): conv1, conv2, 3x3
    decoders = sum(
        conv(c * 2 ** (i + 1), c * 2**i, k, bias=False) for i in range(4)
    )  # deconv4..1: NNConvUpsampling
    predictions = sum(
        conv(c * 2**i, 1, 3) for i in range(4)
    )  # predict_depth4..1: NNConvUpsampling(., 1, 3, bias)
    return bottom + encoders + bottleneck + decoders + predictions


def test_stereospike_parameter_count_at_reference_defaults() -> None:
    binocular, monocular = StereoSpike(), StereoSpike(num_cameras=1)
    assert binocular.num_bins == 2 * BINS and monocular.num_bins == BINS  # input channels
    assert count(binocular) == stereospike(2) == 18_148_708
    assert count(monocular) == stereospike(1) == 18_147_108


TABLE = {  # model: (its class at the reference defaults, count from the reference shapes, total)
    "FireNet": (FireNet, firenet(), 148_450),
    "FireFlowNet": (FireFlowNet, fireflownet(), 56_162),
    "LIFFireNet": (LIFFireNet, lif_firenet("lif"), 74_818),
    "LIFFireNetShort": (LIFFireNetShort, lif_firenet("lif", short=True), 56_258),
    "LIFFireFlowNet": (LIFFireFlowNet, lif_fireflownet("lif"), 56_386),
    "EVFlowNet": (EVFlowNet, evflownet(), 14_128_552),
    "RecEVFlowNet-convgru": (RecEVFlowNet, rec_evflownet("convgru"), 32_932_072),
    "RecEVFlowNet-convlstm": (
        partial(RecEVFlowNet, recurrent_block="convlstm"),
        rec_evflownet("convlstm"),
        39_199_912,
    ),
    "LIFEVFlowNet": (LIFEVFlowNet, lif_evflownet("lif"), 20_400_840),
    "ConvGRUFlowNet": (ConvGRUFlowNet, convgru(), 353_682),
}


@pytest.mark.parametrize("name", TABLE)
def test_parameter_counts_at_reference_defaults(name: str) -> None:
    build, reference, total = TABLE[name]
    network = build()
    assert network.num_bins == BINS
    assert count(network) == reference == total


@pytest.mark.parametrize("neuron", sorted(NEURON_TYPES))
def test_spiking_parameter_counts_for_every_neuron(neuron: str) -> None:
    assert count(LIFFireNet(neuron=neuron)) == lif_firenet(neuron)
    assert count(LIFFireNetShort(neuron=neuron)) == lif_firenet(neuron, short=True)
    assert count(LIFFireFlowNet(neuron=neuron)) == lif_fireflownet(neuron)
    assert count(LIFEVFlowNet(neuron=neuron)) == lif_evflownet(neuron)
