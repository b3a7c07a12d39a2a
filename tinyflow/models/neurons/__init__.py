"""Convolutional spiking layers with one interface: ``forward(x, state) -> (spikes, new_state)``."""

from __future__ import annotations

from torch import nn

from tinyflow.models.neurons.alif import ConvALIF
from tinyflow.models.neurons.base import ConvSynapses, NeuronState, PresynapticActivity, SpikingConv
from tinyflow.models.neurons.lif import ConvLIF
from tinyflow.models.neurons.plif import ConvPLIF
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF
from tinyflow.models.neurons.surrogate import SpikeFunction
from tinyflow.models.neurons.xlif import ConvXLIF

NEURON_TYPES: dict[str, type[nn.Module]] = {
    "lif": ConvLIF,
    "plif": ConvPLIF,
    "alif": ConvALIF,
    "xlif": ConvXLIF,
    "snntorch_lif": SnnTorchConvLIF,
}


def build_spiking_layer(
    neuron: str, in_channels: int, out_channels: int, kernel_size: int, recurrent: bool, **neuron_kwargs
) -> nn.Module:
    """Spiking conv layer of type ``neuron`` (a key of ``NEURON_TYPES``)."""
    if neuron not in NEURON_TYPES:
        raise ValueError(f"neuron={neuron!r}: expected one of {sorted(NEURON_TYPES)}")
    return NEURON_TYPES[neuron](
        in_channels, out_channels, kernel_size=kernel_size, recurrent=recurrent, **neuron_kwargs
    )


__all__ = [
    "NEURON_TYPES",
    "ConvALIF",
    "ConvLIF",
    "ConvPLIF",
    "ConvSynapses",
    "ConvXLIF",
    "NeuronState",
    "PresynapticActivity",
    "SnnTorchConvLIF",
    "SpikeFunction",
    "SpikingConv",
    "build_spiking_layer",
]
