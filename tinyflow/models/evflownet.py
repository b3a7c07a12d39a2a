"""EV-FlowNet family as event_flow defines it: a U-Net with a flow prediction at every decoder scale.

Zhu et al., RSS 2018, in event_flow's form (Hagenaars et al., NeurIPS 2021; models/model.py ``EVFlowNet``,
``RecEVFlowNet``, ``SpikingRecEVFlowNet`` / ``PLIF-`` / ``ALIF-`` / ``XLIFRecEVFlowNet``; models/unet.py
``MultiResUNet``, ``MultiResUNetRecurrent``, ``SpikingMultiResUNetRecurrent``). With n = ``num_encoders``
(4), m = ``num_residual_blocks`` (2), C = ``base_num_channels`` (32), k = ``kernel_size`` (3)::

    E1..En    encoders: k x k, stride 2, to 2C, 4C, 8C, 16C channels (E1 takes num_bins)
    G1..Gn    recurrent variants: each encoder's recurrent block after E_i, at E_i's channels
              (RecEVFlowNet: ConvGRU or ConvLSTM, 3x3; LIFEVFlowNet: a recurrent spiking layer, k x k)
    R1..Rm    residual blocks at 16C, 3x3 (ANN: one ResidualBlock each; spiking: R{j}a, R{j}b, and
              R{j}a's input added to R{j}b's spikes, event_flow's SpikingResidualBlock)
    D1..Dn    decoders: 2x bilinear upsampling, then k x k to 8C, 4C, 2C, C; D_i takes
              cat(P_{i-1}, D_{i-1}, encoder output n-i+1), D1 takes cat(R output, encoder output n)
    P1..Pn-1  flow predictions after D1..Dn-1 (1/8, 1/4, 1/2 of the input): 1x1 conv to 2 channels, tanh
    head      the prediction after Dn (full resolution): 1x1 conv, tanh, times ``flow_scaling``

The encoder outputs are E_i's (EVFlowNet) or G_i's (recurrent variants). The order of the
concatenations is event_flow's (``skip_type="concat"``; MultiResUNet.forward: ``x = cat(x, block)``,
then ``x = cat(prediction, x)``), so the decoders take ``2 * channels + 2`` (D1: ``2 * 16C``) inputs.
The prediction layers are never spiking (event_flow builds them with ``ConvLayer`` in every variant).
The network's ``out["flow_scales"]`` holds every scale's flow at full resolution, coarsest first
(:class:`~tinyflow.models.network.MultiScaleFlowNetwork`), ``out["flow"]`` the finest.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from tinyflow.models.blocks import ConvGRU, ConvLayer, ConvLSTM, ConvReLU, ResidualBlock
from tinyflow.models.body import LayerBuilder, LayerSpec, RecurrentBody, Skip
from tinyflow.models.firenet import PRED_WEIGHT_SCALE, Default, reject_neuron
from tinyflow.models.heads import FlowHead
from tinyflow.models.network import MultiScaleFlowNetwork
from tinyflow.models.neurons import build_spiking_layer, resolve_neuron_kwargs

RECURRENT_BLOCKS = {"convgru": ConvGRU, "convlstm": ConvLSTM}  # event_flow's RecurrentConvLayer choices
RECURRENT_KERNEL_SIZE = 3  # event_flow's RecurrentConvLayer builds its ConvGRU / ConvLSTM 3x3
RESIDUAL_KERNEL_SIZE = 3  # event_flow's ResidualBlock / SpikingResidualBlock are 3x3


@dataclass(frozen=True)
class EVFlowNetLayers:
    """The layer builders of one EV-FlowNet variant.

    Attributes:
        encoder: the strided encoder layers E_i (the body passes ``stride=2``).
        recurrent: the recurrent block G_i after each encoder, or None (feed-forward).
        residual: the residual layers.
        residual_pairs: each residual block is two ``residual`` layers with the block's input added to
            the second one's output (spiking); otherwise one ``residual`` layer (a ResidualBlock).
        decoder: the decoder layers D_i (after the body's 2x bilinear upsampling).
    """

    encoder: LayerBuilder
    recurrent: LayerBuilder | None
    residual: LayerBuilder
    residual_pairs: bool
    decoder: LayerBuilder


def evflownet_body(
    num_bins: int,
    base_num_channels: int,
    layers: EVFlowNetLayers,
    prediction: LayerBuilder,
    *,
    num_encoders: int = 4,
    num_residual_blocks: int = 2,
) -> tuple[RecurrentBody, list[str]]:
    """The body of the module docstring and the names of its prediction layers (P1..Pn-1, coarsest first)."""
    specs: list[LayerSpec] = []
    encoder_outputs: list[str] = []
    for i in range(1, num_encoders + 1):
        channels = base_num_channels * 2**i
        specs.append(LayerSpec(f"E{i}", channels, layers.encoder, stride=2))
        encoder_outputs.append(f"E{i}")
        if layers.recurrent is not None:
            specs.append(LayerSpec(f"G{i}", channels, layers.recurrent))
            encoder_outputs[-1] = f"G{i}"
    deepest = base_num_channels * 2**num_encoders
    for j in range(1, num_residual_blocks + 1):
        if layers.residual_pairs:
            specs.append(LayerSpec(f"R{j}a", deepest, layers.residual))
            specs.append(LayerSpec(f"R{j}b", deepest, layers.residual, skip=Skip(f"R{j}a", of="input")))
        else:
            specs.append(LayerSpec(f"R{j}", deepest, layers.residual))
    scale_layers: list[str] = []
    for i in range(1, num_encoders + 1):
        encoder = Skip(encoder_outputs[num_encoders - i], mode="concat", into="input")
        specs.append(
            LayerSpec(
                f"D{i}", base_num_channels * 2 ** (num_encoders - i), layers.decoder, upsample=2, skip=encoder
            )
        )
        if i < num_encoders:
            specs.append(LayerSpec(f"P{i}", 2, prediction, skip=Skip(f"D{i}", mode="concat")))
            scale_layers.append(f"P{i}")
    return RecurrentBody(num_bins, specs), scale_layers


def reject_recurrent_block(model: str, recurrent_block: str | None) -> None:
    """``ValueError`` naming ``model`` unless ``recurrent_block`` is None."""
    if recurrent_block is not None:
        raise ValueError(
            f"{model}: recurrent_block={recurrent_block!r}: {model} has no ConvGRU / ConvLSTM blocks; "
            f"RecEVFlowNet (model=rec_evflownet) takes one of {sorted(RECURRENT_BLOCKS)}"
        )


class EVFlowNetFamily(MultiScaleFlowNetwork, abc.ABC):
    """An EV-FlowNet-family network (the module docstring); the classes differ in :meth:`layer_builders`.

    The input's height and width must be multiples of ``2 ** num_encoders`` (16): else a ``ValueError``
    names the size and the divisor (event_flow pads the input instead, at evaluation).

    Args:
        num_bins: input channels (event_flow: 2, per-polarity counts).
        base_num_channels: C, the channels of the last decoder (event_flow: 32).
        kernel_size: of the encoder and decoder convs and of the spiking recurrent layers (event_flow: 3).
        num_encoders: n, the strided encoders and the decoders (event_flow: 4).
        num_residual_blocks: m (event_flow: 2).
        neuron: spiking layer type (a key of ``tinyflow.models.neurons.NEURON_TYPES``) of LIFEVFlowNet;
            the ANNs refuse any value but None, with a ``ValueError`` naming the model and the neuron.
            Default: :attr:`default_neuron`.
        neuron_kwargs: settings of the spiking layers under the rule of
            :mod:`tinyflow.models.neurons.registry` (shared keys and per-type sections).
        recurrent_block: ``"convgru"`` or ``"convlstm"`` (RecEVFlowNet; event_flow's RecEVFlowNet: convgru,
            its E2VID: convlstm); the others refuse any value but None. Default: :attr:`default_recurrent_block`.
        flow_scaling: pixels of displacement at ``tanh = 1``, for every scale (event_flow: the training
            resolution, 128).
        mask_output: zero the flow of every scale where the input has no event.
        prediction_bias: the prediction convs (P_i and the head) have a bias (event_flow: True).
        prediction_init_scale: the prediction convs' weights start uniform in ``+-prediction_init_scale``,
            biases at zero; None = PyTorch's default. Default: :attr:`default_prediction_init_scale`
            (event_flow: None for EVFlowNet and RecEVFlowNet, 0.01 for the spiking ones).
        prediction_smoothing_px: the full-resolution head's fixed Gaussian blur (std in pixels, see
            :class:`~tinyflow.models.heads.FlowHead`); the coarser scales' predictions are not blurred.
            None (event_flow): no blur.
    """

    default_neuron: ClassVar[str | None] = None
    default_recurrent_block: ClassVar[str | None] = None
    default_prediction_init_scale: ClassVar[float | None] = None

    def __init__(
        self,
        *,
        num_bins: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 3,
        num_encoders: int = 4,
        num_residual_blocks: int = 2,
        neuron: str | Default | None = Default.CLASS,
        neuron_kwargs: Mapping[str, Any] | None = None,
        recurrent_block: str | Default | None = Default.CLASS,
        flow_scaling: float = 128.0,
        mask_output: bool = False,
        prediction_bias: bool = True,
        prediction_init_scale: float | Default | None = Default.CLASS,
        prediction_smoothing_px: float | None = None,
    ) -> None:
        name = type(self).__name__
        for key, value, minimum in (
            ("base_num_channels", base_num_channels, 1),
            ("num_encoders", num_encoders, 1),
            ("num_residual_blocks", num_residual_blocks, 0),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: {key}={value!r}: expected an integer >= {minimum}")
        neuron = self.default_neuron if neuron is Default.CLASS else neuron
        if recurrent_block is Default.CLASS:
            recurrent_block = self.default_recurrent_block
        if prediction_init_scale is Default.CLASS:
            prediction_init_scale = self.default_prediction_init_scale
        layers = self.layer_builders(neuron, neuron_kwargs, recurrent_block, kernel_size)
        prediction = partial(
            ConvLayer,
            kernel_size=1,
            activation="tanh",
            bias=prediction_bias,
            weight_init_scale=prediction_init_scale,
        )
        body, scale_layers = evflownet_body(
            num_bins,
            base_num_channels,
            layers,
            prediction,
            num_encoders=num_encoders,
            num_residual_blocks=num_residual_blocks,
        )
        head = FlowHead(
            base_num_channels,
            flow_scaling=flow_scaling,
            prediction_init_scale=prediction_init_scale,
            prediction_bias=prediction_bias,
            smoothing_px=prediction_smoothing_px,
        )
        super().__init__(body=body, head=head, scale_layers=scale_layers, mask_output=mask_output)

    @classmethod
    @abc.abstractmethod
    def layer_builders(
        cls,
        neuron: str | None,
        neuron_kwargs: Mapping[str, Any] | None,
        recurrent_block: str | None,
        kernel_size: int,
    ) -> EVFlowNetLayers:
        """The class's layer builders; ``ValueError`` naming the class for a setting it does not take."""


class EVFlowNet(EVFlowNetFamily):
    """Feed-forward EV-FlowNet (event_flow's ``EVFlowNet``, ``MultiResUNet``): ReLU convs with biases,
    stateless (14,128,552 parameters at event_flow's defaults)."""

    @classmethod
    def layer_builders(
        cls,
        neuron: str | None,
        neuron_kwargs: Mapping[str, Any] | None,
        recurrent_block: str | None,
        kernel_size: int,
    ) -> EVFlowNetLayers:
        reject_neuron(cls.__name__, neuron, neuron_kwargs)
        reject_recurrent_block(cls.__name__, recurrent_block)
        conv = partial(ConvReLU, kernel_size=kernel_size)
        residual = partial(ResidualBlock, kernel_size=RESIDUAL_KERNEL_SIZE)
        return EVFlowNetLayers(conv, None, residual, residual_pairs=False, decoder=conv)


class RecEVFlowNet(EVFlowNetFamily):
    """EV-FlowNet with recurrent encoders (event_flow's ``RecEVFlowNet``, ``MultiResUNetRecurrent``):
    each strided ReLU conv E_i is followed by a 3x3 ConvGRU (default) or ConvLSTM G_i at its channels
    (32,932,072 parameters with ConvGRUs, 39,199,912 with ConvLSTMs, at event_flow's defaults)."""

    default_recurrent_block = "convgru"

    @classmethod
    def layer_builders(
        cls,
        neuron: str | None,
        neuron_kwargs: Mapping[str, Any] | None,
        recurrent_block: str | None,
        kernel_size: int,
    ) -> EVFlowNetLayers:
        reject_neuron(cls.__name__, neuron, neuron_kwargs)
        if recurrent_block not in RECURRENT_BLOCKS:
            raise ValueError(
                f"{cls.__name__}: recurrent_block={recurrent_block!r}: expected one of {sorted(RECURRENT_BLOCKS)}"
            )
        conv = partial(ConvReLU, kernel_size=kernel_size)
        recurrent = partial(RECURRENT_BLOCKS[recurrent_block], kernel_size=RECURRENT_KERNEL_SIZE)
        residual = partial(ResidualBlock, kernel_size=RESIDUAL_KERNEL_SIZE)
        return EVFlowNetLayers(conv, recurrent, residual, residual_pairs=False, decoder=conv)


class LIFEVFlowNet(EVFlowNetFamily):
    """Spiking recurrent EV-FlowNet (event_flow's ``SpikingRecEVFlowNet`` and its PLIF / ALIF / XLIF
    versions, ``SpikingMultiResUNetRecurrent``); the neuron type is the ``neuron`` key.

    Spiking, without conv biases: the encoders E_i (stride 2) and their recurrent layers G_i (a
    feed-forward and a recurrent conv, stride 1; event_flow's SpikingRecurrentConvLayer), the residual
    layers R{j}a / R{j}b (the block's input added to R{j}b's spikes), the decoders D_i (after bilinear
    upsampling). Not spiking: the prediction layers P_i and the head (1x1 conv with bias, tanh; weights
    uniform in +-0.01 at init). 20,400,840 parameters with LIF neurons at event_flow's defaults.
    """

    default_neuron = "lif"
    default_prediction_init_scale = PRED_WEIGHT_SCALE

    @classmethod
    def layer_builders(
        cls,
        neuron: str | None,
        neuron_kwargs: Mapping[str, Any] | None,
        recurrent_block: str | None,
        kernel_size: int,
    ) -> EVFlowNetLayers:
        reject_recurrent_block(cls.__name__, recurrent_block)
        settings = resolve_neuron_kwargs(cls.__name__, neuron, neuron_kwargs)
        spiking = partial(build_spiking_layer, neuron, **settings)
        feedforward = partial(spiking, kernel_size=kernel_size, recurrent=False)
        return EVFlowNetLayers(
            encoder=feedforward,
            recurrent=partial(spiking, kernel_size=kernel_size, recurrent=True),
            residual=partial(spiking, kernel_size=RESIDUAL_KERNEL_SIZE, recurrent=False),
            residual_pairs=True,
            decoder=feedforward,
        )


__all__ = [
    "RECURRENT_BLOCKS",
    "EVFlowNet",
    "EVFlowNetFamily",
    "EVFlowNetLayers",
    "LIFEVFlowNet",
    "RecEVFlowNet",
    "evflownet_body",
]
