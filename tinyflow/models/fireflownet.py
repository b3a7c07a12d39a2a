"""Feed-forward FireNet variants (no recurrent weights), in FireNet's layer order and names.

FireFlowNet follows Paredes-Vallés & de Croon 2021 as in event_flow: the ConvGRUs become plain ReLU
convs. In LIF-FireFlowNet every layer is a non-recurrent spiking layer: the membranes still carry
state across windows, but there are no recurrent weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tinyflow.models.blocks import ConvReLU
from tinyflow.models.firenet import (
    PRED_WEIGHT_SCALE,
    RESIDUAL_SKIPS,
    firenet_layers,
    spiking_layer_factory,
)
from tinyflow.models.network import SequentialFlowNetwork


class FireFlowNet(SequentialFlowNetwork):
    """Stateless ANN: seven ReLU convs and the flow prediction.

    Arguments: as in ``FireNet``, except that ``prediction_init_scale`` defaults to event_flow's 0.01.
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
        prediction_init_scale: float | None = PRED_WEIGHT_SCALE,
    ) -> None:
        conv = partial(ConvReLU, kernel_size=kernel_size)
        layers = firenet_layers(num_bins, base_num_channels, feedforward=conv, recurrent=conv)
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


class LIFFireFlowNet(SequentialFlowNetwork):
    """Seven non-recurrent spiking layers and the flow prediction. Arguments: as in ``LIFFireNet``."""

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
        spiking = spiking_layer_factory(neuron, kernel_size, False, neuron_kwargs)
        layers = firenet_layers(num_bins, base_num_channels, feedforward=spiking, recurrent=spiking)
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
