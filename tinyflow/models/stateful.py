"""Stateful wrapper around a pure network ``forward(x, state) -> (out, new_state)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn


def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a nested list / tuple state; ``None`` entries stay ``None``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, list | tuple):
        return type(state)(map_state(fn, item) for item in state)
    raise TypeError(f"state entry of type {type(state).__name__}: expected a tensor, list, tuple or None")


class StatefulNetwork(nn.Module):
    """Holds the recurrent state of ``network`` between calls (one call = one input window).

    Args:
        network: pure module with ``forward(x, state) -> (out, new_state)``; ``state=None`` means zeros.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.state: Any = None

    def forward(self, x: Tensor) -> Any:
        """Run one window from the held state, keep the new state, return the network's output."""
        out, self.state = self.network(x, self.state)
        return out

    def reset_state(self, mask: Tensor | None = None) -> None:
        """Zero the state of the batch elements where ``mask [B]`` (bool) is True; all when ``None``."""
        if mask is None:
            self.state = None
            return
        if mask.dtype != torch.bool or mask.ndim != 1:
            raise ValueError(
                f"reset_state mask: dtype {mask.dtype}, shape {tuple(mask.shape)}: expected bool [B]"
            )

        def checked(tensor: Tensor) -> Tensor:
            if tensor.shape[0] != mask.shape[0]:
                raise ValueError(
                    f"reset_state mask has {mask.shape[0]} elements, state batch size is {tensor.shape[0]}"
                )
            return tensor

        def reset(tensor: Tensor) -> Tensor:
            return checked(tensor).masked_fill(mask.view(-1, *[1] * (tensor.ndim - 1)).to(tensor.device), 0)

        # Most training steps end no stream: the state stays as it is, without a copy of every tensor.
        self.state = map_state(reset if bool(mask.any()) else checked, self.state)

    def detach_state(self) -> None:
        """Cut the autograd graph at the held state (truncated BPTT)."""
        self.state = map_state(Tensor.detach, self.state)
