"""Convolutional spiking layers with one interface: ``forward(x, state) -> (spikes, new_state)``.

Neuron types by name, their settings and the ``neuron_kwargs`` rule: :mod:`tinyflow.models.neurons.registry`.
"""

from __future__ import annotations

from tinyflow.models.neurons.alif import ConvALIF
from tinyflow.models.neurons.base import ConvSynapses, NeuronState, PresynapticActivity, SpikingConv
from tinyflow.models.neurons.integrate_fire import ConvIF
from tinyflow.models.neurons.lif import ConvLIF
from tinyflow.models.neurons.plif import ConvPLIF
from tinyflow.models.neurons.registry import (
    NEURON_TYPES,
    build_spiking_layer,
    check_neuron,
    neuron_settings,
    resolve_neuron_kwargs,
)
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF
from tinyflow.models.neurons.surrogate import SpikeFunction
from tinyflow.models.neurons.xlif import ConvXLIF

__all__ = [
    "NEURON_TYPES",
    "ConvALIF",
    "ConvIF",
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
    "check_neuron",
    "neuron_settings",
    "resolve_neuron_kwargs",
]
