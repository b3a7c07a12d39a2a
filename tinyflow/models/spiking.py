"""How anything outside a network finds its spiking layers: one small protocol, no type checks."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class SpikingLayer(Protocol):
    """A layer whose output is binary spikes (0/1 per neuron and window).

    Every spiking layer sets the class attribute ``emits_spikes = True``; statistics (firing rates,
    synaptic operations) are read from such layers' outputs by hooks, from outside the model.
    """

    emits_spikes: bool


def spiking_layers(network: nn.Module) -> dict[str, nn.Module]:
    """The spiking layers of ``network`` by their module name (``network.named_modules()`` order)."""
    return {
        name: module
        for name, module in network.named_modules()
        if isinstance(module, SpikingLayer) and module.emits_spikes
    }
