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
from tinyflow.models.body import LayerBuilder
from tinyflow.models.firenet import FireNetFamily, reject_neuron, spiking_builders


class FireFlowNet(FireNetFamily):
    """Stateless ANN: seven ReLU convs and the flow prediction (arguments: :class:`FireNetFamily`)."""

    @classmethod
    def layer_builders(
        cls, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
    ) -> tuple[LayerBuilder, LayerBuilder]:
        reject_neuron(cls.__name__, neuron, neuron_kwargs)
        conv = partial(ConvReLU, kernel_size=kernel_size)
        return conv, conv


class LIFFireFlowNet(FireNetFamily):
    """Seven non-recurrent spiking layers and the flow prediction (arguments: :class:`FireNetFamily`)."""

    default_neuron = "lif"

    @classmethod
    def layer_builders(
        cls, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
    ) -> tuple[LayerBuilder, LayerBuilder]:
        spiking, _ = spiking_builders(cls.__name__, neuron, neuron_kwargs, kernel_size)
        return spiking, spiking
