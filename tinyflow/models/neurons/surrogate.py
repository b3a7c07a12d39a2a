"""Heaviside spike function with a surrogate gradient.

Forward: ``spike = H(x) = 1 if x > 0 else 0`` with ``x = v - threshold``.
Backward: ``dspike/dx`` is replaced by a smooth (or boxcar) surrogate. Every surrogate has height 1
at ``x = 0`` (the height-1 convention of event_flow and Zenke & Vogels 2021); ``width`` sets how far
from the threshold gradients still flow.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

SurrogateDerivative = Callable[[Tensor, float], Tensor]


def arctan_derivative(x: Tensor, width: float) -> Tensor:
    """``1 / (1 + (pi * x / width)^2)``: derivative of ``(width / pi) * arctan(pi * x / width)``.

    With ``width = 1`` this equals snntorch's / SpikingJelly's default ATan surrogate (``alpha = 2``);
    in general it is ``width`` times ``snntorch.surrogate.atan(alpha=2 / width)``. event_flow's
    ``1 / (1 + 10 x^2)`` is ``width = pi / sqrt(10) ~ 0.99``.
    """
    return 1.0 / (1.0 + (math.pi * x / width) ** 2)


def sigmoid_derivative(x: Tensor, width: float) -> Tensor:
    """``4 * s * (1 - s)`` with ``s = sigmoid(x / width)``: the scaled derivative of a sigmoid (peak 1)."""
    s = torch.sigmoid(x / width)
    return 4.0 * s * (1.0 - s)


def boxcar_derivative(x: Tensor, width: float) -> Tensor:
    """``1`` where ``|x| < width / 2``, else ``0`` (rectangular window of total width ``width``)."""
    return (x.abs() < width / 2).to(x.dtype)


SURROGATE_DERIVATIVES: dict[str, SurrogateDerivative] = {
    "arctan": arctan_derivative,
    "sigmoid": sigmoid_derivative,
    "boxcar": boxcar_derivative,
}


class HeavisideSurrogate(torch.autograd.Function):
    """``H(x)`` forward; ``grad * derivative(x, width)`` backward."""

    @staticmethod
    def forward(ctx, x: Tensor, derivative: SurrogateDerivative, width: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.derivative = derivative
        ctx.width = width
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.derivative(x, ctx.width), None, None


class SpikeFunction(nn.Module):
    """Spike generator ``H(x)`` with a named surrogate gradient.

    Args:
        surrogate: one of ``"arctan"``, ``"sigmoid"``, ``"boxcar"`` (formulas in this module).
        width: positive width of the surrogate, in units of ``x`` (membrane potential minus threshold).
    """

    def __init__(self, surrogate: str = "arctan", width: float = 1.0) -> None:
        super().__init__()
        if surrogate not in SURROGATE_DERIVATIVES:
            raise ValueError(f"surrogate={surrogate!r}: expected one of {sorted(SURROGATE_DERIVATIVES)}")
        if not width > 0:
            raise ValueError(f"surrogate width={width!r}: expected a positive number")
        self.surrogate = surrogate
        self.width = float(width)
        self._derivative = SURROGATE_DERIVATIVES[surrogate]

    def forward(self, x: Tensor) -> Tensor:
        """Spikes (0/1, dtype of ``x``) where ``x > 0``."""
        return HeavisideSurrogate.apply(x, self._derivative, self.width)

    def extra_repr(self) -> str:
        return f"surrogate={self.surrogate!r}, width={self.width}"
