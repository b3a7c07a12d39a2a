"""FireNet family in event_flow's layer order: head -> G1 -> R1a -> R1b -> G2 -> R2a -> R2b -> pred.

FireNet is Scheerlinck et al. 2020's architecture as adapted for optical flow in event_flow
(Hagenaars et al. 2021). All layers keep the input resolution and have ``base_num_channels``
channels; ``pred`` is a 1x1 conv to 2 channels with tanh, scaled by ``flow_scaling``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from torch import nn

from tinyflow.models.blocks import ConvGRU, ConvReLU
from tinyflow.models.network import SequentialFlowNetwork
from tinyflow.models.neurons import build_spiking_layer

LayerFactory = Callable[[int, int], nn.Module]  # (in_channels, out_channels) -> layer

FIRENET_LAYER_NAMES = ("head", "G1", "R1a", "R1b", "G2", "R2a", "R2b")
SHORT_LAYER_NAMES = ("head", "G1", "R1a", "G2", "R2a")
RESIDUAL_SKIPS = {"R1b": "G1", "R2b": "G2"}
PRED_WEIGHT_SCALE = 0.01  # event_flow's prediction init for its spiking and feed-forward nets


def firenet_layers(
    num_bins: int,
    channels: int,
    feedforward: LayerFactory,
    recurrent: LayerFactory,
    names: tuple[str, ...] = FIRENET_LAYER_NAMES,
) -> dict[str, nn.Module]:
    """Layers named ``names``: ``G*`` from ``recurrent``, the others from ``feedforward``."""
    layers = {}
    for name in names:
        in_channels = num_bins if name == "head" else channels
        factory = recurrent if name.startswith("G") else feedforward
        layers[name] = factory(in_channels, channels)
    return layers


def spiking_layer_factory(
    neuron: str, kernel_size: int, recurrent: bool, neuron_kwargs: Mapping[str, Any] | None
) -> LayerFactory:
    """Factory of spiking layers of type ``neuron`` (see ``tinyflow.models.neurons.NEURON_TYPES``)."""
    return partial(
        build_spiking_layer,
        neuron,
        kernel_size=kernel_size,
        recurrent=recurrent,
        **dict(neuron_kwargs or {}),
    )


class FireNet(SequentialFlowNetwork):
    """ANN FireNet: ReLU conv head and R layers, ConvGRU G1 / G2 (148,450 parameters at defaults).

    Args:
        num_bins: input channels (2 for per-polarity counts).
        base_num_channels: channels of every hidden layer (32 in event_flow).
        kernel_size: of every hidden conv.
        flow_scaling: pixels of displacement at ``tanh = 1`` (event_flow: the training resolution, 128).
        mask_output: zero the flow where the input has no event.
        residual: add G1's output to R1b's and G2's to R2b's (event_flow trains without: False).
        prediction_bias: the prediction conv has a bias (event_flow: True). Without it the flow can
            only come from the features (see :class:`~tinyflow.models.blocks.FlowPrediction`).
        prediction_init_scale: the prediction conv's weights start uniform in ``+-prediction_init_scale``;
            None = PyTorch's default (``+-1/sqrt(base_num_channels)``). event_flow: None for FireNet,
            0.01 (``PRED_WEIGHT_SCALE``) for its spiking and feed-forward nets.
    """

    def __init__(
        self,
        num_bins: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 3,
        flow_scaling: float = 128.0,
        mask_output: bool = False,
        residual: bool = False,
        prediction_bias: bool = True,
        prediction_init_scale: float | None = None,
    ) -> None:
        layers = firenet_layers(
            num_bins,
            base_num_channels,
            feedforward=partial(ConvReLU, kernel_size=kernel_size),
            recurrent=partial(ConvGRU, kernel_size=kernel_size),
        )
        skips = RESIDUAL_SKIPS if residual else {}
        super().__init__(
            num_bins,
            layers,
            skips,
            base_num_channels,
            flow_scaling,
            mask_output,
            prediction_init_scale,
            prediction_bias,
        )


class LIFFireNet(SequentialFlowNetwork):
    """Spiking FireNet: spiking head and R layers, spiking G1 / G2 with a recurrent conv.

    74,818 parameters at defaults with LIF neurons (no conv biases; a leak and a threshold per channel).

    Args:
        neuron: spiking layer type: ``"lif"``, ``"plif"``, ``"alif"``, ``"xlif"`` or ``"snntorch_lif"``.
        neuron_kwargs: extra arguments of every spiking layer (leak / threshold init, reset, surrogate).
        num_bins, base_num_channels, kernel_size, flow_scaling, mask_output, residual, prediction_bias,
        prediction_init_scale: as in FireNet
            (with ``residual``, spikes of G1 / G2 are added to those of R1b / R2b).
    """

    def __init__(
        self,
        num_bins: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 3,
        neuron: str = "lif",
        neuron_kwargs: Mapping[str, Any] | None = None,
        flow_scaling: float = 128.0,
        mask_output: bool = False,
        residual: bool = False,
        prediction_bias: bool = True,
        prediction_init_scale: float | None = PRED_WEIGHT_SCALE,
    ) -> None:
        layers = firenet_layers(
            num_bins,
            base_num_channels,
            feedforward=spiking_layer_factory(neuron, kernel_size, False, neuron_kwargs),
            recurrent=spiking_layer_factory(neuron, kernel_size, True, neuron_kwargs),
        )
        skips = RESIDUAL_SKIPS if residual else {}
        super().__init__(
            num_bins,
            layers,
            skips,
            base_num_channels,
            flow_scaling,
            mask_output,
            prediction_init_scale,
            prediction_bias,
        )


class LIFFireNetShort(SequentialFlowNetwork):
    """LIF-FireNet without R1b and R2b: head -> G1 -> R1a -> G2 -> R2a -> pred (56,258 parameters, LIF).

    event_flow's own repository has no short variant; this follows the ``LIFFireNet_short`` of
    derived event_flow code ("R1b and R2b layers removed"). Arguments: as in :class:`LIFFireNet`
    (no ``residual``: its skips would land on the removed layers).
    """

    def __init__(
        self,
        num_bins: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 3,
        neuron: str = "lif",
        neuron_kwargs: Mapping[str, Any] | None = None,
        flow_scaling: float = 128.0,
        mask_output: bool = False,
        prediction_bias: bool = True,
        prediction_init_scale: float | None = PRED_WEIGHT_SCALE,
    ) -> None:
        layers = firenet_layers(
            num_bins,
            base_num_channels,
            feedforward=spiking_layer_factory(neuron, kernel_size, False, neuron_kwargs),
            recurrent=spiking_layer_factory(neuron, kernel_size, True, neuron_kwargs),
            names=SHORT_LAYER_NAMES,
        )
        super().__init__(
            num_bins,
            layers,
            {},
            base_num_channels,
            flow_scaling,
            mask_output,
            prediction_init_scale,
            prediction_bias,
        )
