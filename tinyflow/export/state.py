"""The recurrent state of a network as a flat, named list of tensors: what an exported step graph takes and
returns besides its input window.

A network's state (:class:`~tinyflow.models.network.RecurrentNetwork`) is a list with one entry per body
layer: ``None`` (a stateless layer), a tensor (a ConvGRU's hidden state) or a tuple of tensors (a spiking
layer's ``(v, z)`` or ``(v, z, trace)``, a ConvLSTM's ``(h, c)``). :class:`StateLayout` records that
structure once, from one step of the network on zeros, and names every tensor ``state.<layer>.<index>``
(its index in the layer's tuple); the step's new state is ``new_state.<layer>.<index>``. The initial state
is all zeros, which is what every tinyflow layer means by ``state=None``. A stateless network (one that
returns ``None`` as its state, e.g. StereoSpike, every window from rest) has no state tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from tinyflow.export.runtime import INPUT_NAME, NEW_STATE_PREFIX, STATE_PREFIX
from tinyflow.models.body import NetworkState

# what an entry of the state list is: no tensor, one tensor, or a tuple of this many tensors
TENSOR = -1


@dataclass(frozen=True)
class StateEntry:
    """One tensor of the state.

    Attributes:
        layer: the body layer it belongs to.
        layer_type: the layer's class name.
        index: its position in the layer's state tuple (0 for a layer whose state is one tensor).
        shape: its shape (batch first).
        dtype: its numpy dtype name (``float32``).
    """

    layer: str
    layer_type: str
    index: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def input_name(self) -> str:
        return f"{STATE_PREFIX}{self.layer}.{self.index}"

    @property
    def output_name(self) -> str:
        return f"{NEW_STATE_PREFIX}{self.layer}.{self.index}"


@dataclass(frozen=True)
class StateLayout:
    """The state's structure (per layer: :data:`TENSOR`, the length of its tuple, or 0 for none) and its
    tensors in order."""

    layers: tuple[str, ...]
    structure: tuple[int, ...]
    entries: tuple[StateEntry, ...]

    @classmethod
    def of(cls, network: nn.Module, x: Tensor) -> StateLayout:
        """The layout of ``network``'s state after one step on ``x`` from the zero state."""
        with torch.no_grad():
            _, state = network(x, None)
        layers = tuple(network.layer_names)
        if state is None:  # a stateless network
            state = [None] * len(layers)
        structure: list[int] = []
        entries: list[StateEntry] = []
        modules = dict(network.layers.items())
        for layer, layer_state in zip(layers, state, strict=True):
            tensors = _tensors(layer, layer_state)
            structure.append(TENSOR if isinstance(layer_state, Tensor) else len(tensors))
            for index, tensor in enumerate(tensors):
                dtype = str(tensor.dtype).removeprefix("torch.")
                entries.append(
                    StateEntry(layer, type(modules[layer]).__name__, index, tuple(tensor.shape), dtype)
                )
        return cls(layers, tuple(structure), tuple(entries))

    @property
    def input_names(self) -> list[str]:
        return [entry.input_name for entry in self.entries]

    @property
    def output_names(self) -> list[str]:
        return [entry.output_name for entry in self.entries]

    def flatten(self, state: NetworkState | None) -> list[Tensor]:
        """The state's tensors in :attr:`entries` order (none for a stateless network's ``None``)."""
        if state is None:
            return []
        return [t for layer, s in zip(self.layers, state, strict=True) for t in _tensors(layer, s)]

    def unflatten(self, tensors: Sequence[Tensor]) -> NetworkState:
        """The network state (one entry per layer) of tensors in :attr:`entries` order."""
        if len(tensors) != len(self.entries):
            raise ValueError(f"expected {len(self.entries)} state tensors, got {len(tensors)}")
        state: NetworkState = []
        position = 0
        for kind in self.structure:
            if kind == TENSOR:
                state.append(tensors[position])
                position += 1
            elif kind == 0:
                state.append(None)
            else:
                state.append(tuple(tensors[position : position + kind]))
                position += kind
        return state

    def zeros(self) -> list[np.ndarray]:
        """The initial state: zeros of every entry's shape and dtype."""
        return [np.zeros(entry.shape, entry.dtype) for entry in self.entries]

    def describe(self) -> list[dict[str, object]]:
        """The entries as the manifest lists them."""
        return [
            {
                "input": entry.input_name,
                "output": entry.output_name,
                "layer": entry.layer,
                "layer_type": entry.layer_type,
                "index": entry.index,
                "shape": list(entry.shape),
                "dtype": entry.dtype,
                "initial": "zeros",
            }
            for entry in self.entries
        ]


def _tensors(layer: str, layer_state: object) -> list[Tensor]:
    if layer_state is None:
        return []
    if isinstance(layer_state, Tensor):
        return [layer_state]
    if isinstance(layer_state, tuple | list) and all(isinstance(t, Tensor) for t in layer_state):
        return list(layer_state)
    raise TypeError(
        f"layer {layer!r}: state of type {type(layer_state).__name__}: expected None, a tensor or a tuple of "
        f"tensors"
    )


class OneStep(nn.Module):
    """One time step of a pure network with its state as flat tensors: ``forward(x, *state) -> (prediction,
    *new_state)``, the graph an export writes.

    ``prediction`` is ``out[network.prediction.output_key]`` (``flow`` [B, 2, H, W], pixels over the input
    window, channel 0 = x); the state tensors follow ``layout``.
    """

    def __init__(self, network: nn.Module, layout: StateLayout) -> None:
        super().__init__()
        self.network = network
        self.layout = layout
        self.output_key: str = network.prediction.output_key

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        out, new_state = self.network(x, self.layout.unflatten(state))
        return (out[self.output_key], *self.layout.flatten(new_state))


__all__ = ["INPUT_NAME", "OneStep", "StateEntry", "StateLayout"]
