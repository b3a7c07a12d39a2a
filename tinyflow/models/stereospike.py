"""StereoSpike (Rançon et al., IEEE Access 2022): a spiking U-Net whose readout neurons integrate depth.

As urancon/StereoSpike defines its shipped model (network/SNN_models.py ``StereoSpike``, network/blocks.py
``SEWResBlock`` and ``NNConvUpsampling``; train.py builds it with ``surrogate.ATan()``, ``detach_reset=True``,
``v_threshold=1.0``, ``v_reset=0.``). With n = ``num_encoders`` (4), m = ``num_residual_blocks`` (2),
C = ``base_num_channels`` (32), k = ``kernel_size`` (5), every conv without bias unless stated::

    bottom       k x k, stride 1, to C (the input: the cameras' channels concatenated, left first)
    conv1..convn k x k, stride 2, to 2C, 4C, 8C, 16C
    R{j}a, R{j}b SEW residual blocks at 16C, 3x3: R{j}b's spikes plus the block's input (ADD)
    deconvn..deconv1  2x nearest upsampling, then k x k to 8C, 4C, 2C, C; each output plus the encoder
                 output of its resolution (conv{n-1} .. conv1, bottom): the additive skips
    P{n}..P{2}   after deconv n..2: nearest upsampling to the input resolution, 3x3 to 1 channel, with bias
    head         after deconv1: 3x3 to 1 channel, with bias
    readout      non-firing integrate-and-fire neurons that sum P{n}, ..., P{2} and the head:
                 out["depth"], and out["depth_scales"] after each (MultiScaleDepthNetwork)

Every layer but the predictions is spiking (``neuron``: IF as the reference; SpikingJelly's
``ParametricLIFNode`` of the paper's first version is ``neuron=lif`` with ``shared_leak``). The two cameras
enter one ``bottom`` conv: the conv of the concatenated input is the sum of one conv per camera, the
paper's two encoder branches merged by a sum.

Differences from the reference, with the same layer shapes and parameters: the reference's
``NNConvUpsampling`` resizes to ``(size + k - 1)`` and applies a padding-free conv, so any frame size
(MVSEC's 346 x 260) passes; here each upsampling is 2x (or 2^i for the predictions) and the conv is
zero-padded, and the network pads the input with zeros (no events) at the bottom and right to multiples
of 2^n (16) and crops the depth back (``pad_input``). The reference multiplies every conv output by
``multiply_factor`` (1 in its train.py: left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tinyflow.models.blocks import ConvLayer
from tinyflow.models.body import LayerSpec, RecurrentBody, Skip
from tinyflow.models.heads import DepthHead
from tinyflow.models.network import MultiScaleDepthNetwork
from tinyflow.models.neurons import build_spiking_layer, resolve_neuron_kwargs

RESIDUAL_KERNEL_SIZE = 3  # StereoSpike's SEWResBlock convs are 3x3
PREDICTION_KERNEL_SIZE = 3  # predict_depth1..4: NNConvUpsampling(kernel_size=3, bias=True)
UPSAMPLING = "nearest"  # NN upsampling keeps spike counts integer (the paper's choice)


def stereospike_body(
    in_channels: int,
    base_num_channels: int,
    kernel_size: int,
    num_encoders: int,
    num_residual_blocks: int,
    neuron: str,
    neuron_kwargs: Mapping[str, Any],
) -> tuple[RecurrentBody, list[str]]:
    """The body of the module docstring and its prediction layers P{n}..P{2} (coarsest first)."""
    spiking = partial(build_spiking_layer, neuron, recurrent=False, **neuron_kwargs)
    conv = partial(spiking, kernel_size=kernel_size)
    residual = partial(spiking, kernel_size=RESIDUAL_KERNEL_SIZE)
    prediction = partial(ConvLayer, kernel_size=PREDICTION_KERNEL_SIZE, activation=None, bias=True)
    encoders = ["bottom", *(f"conv{i}" for i in range(1, num_encoders + 1))]
    specs = [LayerSpec("bottom", base_num_channels, conv)]
    specs += [
        LayerSpec(f"conv{i}", base_num_channels * 2**i, conv, stride=2) for i in range(1, num_encoders + 1)
    ]
    deepest = base_num_channels * 2**num_encoders
    for j in range(1, num_residual_blocks + 1):
        specs.append(LayerSpec(f"R{j}a", deepest, residual))
        specs.append(LayerSpec(f"R{j}b", deepest, residual, skip=Skip(f"R{j}a", of="input")))
    scale_layers = []
    for i in range(num_encoders, 0, -1):
        skip = Skip(encoders[i - 1])  # the encoder output of the decoder's resolution, added
        specs.append(
            LayerSpec(
                f"deconv{i}",
                base_num_channels * 2 ** (i - 1),
                conv,
                upsample=2,
                upsample_mode=UPSAMPLING,
                skip=skip,
            )
        )
        if i > 1:
            specs.append(
                LayerSpec(
                    f"P{i}", 1, prediction, upsample=2 ** (i - 1), upsample_mode=UPSAMPLING, branch=True
                )
            )
            scale_layers.append(f"P{i}")
    return RecurrentBody(in_channels, specs), scale_layers


class StereoSpike(MultiScaleDepthNetwork):
    """StereoSpike's network (module docstring): 18,148,708 parameters at the reference's defaults (two
    cameras of 2 polarity channels, C = 32, k = 5, IF neurons), 18,147,108 for one camera.

    Args:
        num_bins: input channels per camera (2 for per-polarity counts, the reference's; the voxel grid's bins).
        num_cameras: cameras whose channels the input concatenates (2: binocular; 1: monocular, the left).
        base_num_channels: C (32).
        kernel_size: k of the encoder and decoder convs (5).
        num_encoders: n, the stride-2 encoders and the decoders (4; the input is padded to multiples of 2^n).
        num_residual_blocks: m, the SEW residual blocks (2).
        neuron: the spiking layers' type (``tinyflow.models.neurons.NEURON_TYPES``; ``if`` as the reference).
        neuron_kwargs: their settings under the rule of :mod:`tinyflow.models.neurons.registry`.
        stateless: every neuron starts each window at rest, as the reference (see
            :class:`~tinyflow.models.network.MultiScaleDepthNetwork`).
    """

    def __init__(
        self,
        *,
        num_bins: int = 2,
        num_cameras: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 5,
        num_encoders: int = 4,
        num_residual_blocks: int = 2,
        neuron: str = "if",
        neuron_kwargs: Mapping[str, Any] | None = None,
        stateless: bool = True,
    ) -> None:
        name = type(self).__name__
        for key, value, minimum in (
            ("num_bins", num_bins, 1),
            ("num_cameras", num_cameras, 1),
            ("base_num_channels", base_num_channels, 1),
            ("num_encoders", num_encoders, 1),
            ("num_residual_blocks", num_residual_blocks, 0),
        ):
            if not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: {key}={value!r}: expected an integer >= {minimum}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"{name}: kernel_size={kernel_size!r}: expected an odd integer >= 1")
        settings = resolve_neuron_kwargs(name, neuron, neuron_kwargs)
        body, scale_layers = stereospike_body(
            num_bins * num_cameras,
            base_num_channels,
            kernel_size,
            num_encoders,
            num_residual_blocks,
            neuron,
            settings,
        )
        head = DepthHead(base_num_channels, kernel_size=PREDICTION_KERNEL_SIZE)
        super().__init__(body=body, head=head, scale_layers=scale_layers, stateless=stateless, pad_input=True)
        self.num_cameras = num_cameras


__all__ = ["StereoSpike", "stereospike_body"]
