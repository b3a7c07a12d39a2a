"""Charbonnier smoothness of predicted flow maps over space and over consecutive forward passes."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

# The neighbour pairs of flow_maps [B, P, 2, H, W]: (first, second) index tuples whose difference is
# penalised, horizontal, vertical, the two diagonals, consecutive passes.
_ALL = slice(None)
_HEAD, _TAIL = slice(None, -1), slice(1, None)
NEIGHBOUR_PAIRS = (
    ((..., _ALL, _HEAD), (..., _ALL, _TAIL)),
    ((..., _HEAD, _ALL), (..., _TAIL, _ALL)),
    ((..., _HEAD, _HEAD), (..., _TAIL, _TAIL)),
    ((..., _TAIL, _HEAD), (..., _HEAD, _TAIL)),
    ((_ALL, _HEAD), (_ALL, _TAIL)),
)


def charbonnier(difference: Tensor, eps: float = 1e-3, alpha: float = 0.5) -> Tensor:
    """Generalised Charbonnier penalty ``(d^2 + eps^2)^alpha`` (alpha = 0.5: smooth L1)."""
    return (difference.square() + eps**2) ** alpha


def flow_smoothness(flow_maps: Tensor, eps: float = 1e-3, alpha: float = 0.5) -> Tensor:
    """Smoothness penalty per batch element [B] of the flow maps of P consecutive passes.

    Args:
        flow_maps: [B, P, 2, H, W] (x, y) flow of each pass.
    Returns:
        ``(S_x + S_y + S_diag_down + S_diag_up + S_t) / 5 / P``, where ``S_k`` sums the Charbonnier penalty
        of the neighbour differences of kind k (horizontal, vertical, the two diagonals, consecutive
        passes; both flow components separately) over pixels, components and passes. The division by
        5 and P (not by the number of pixels) follows event_flow, so its weights carry over.
        Differentiable w.r.t. ``flow_maps`` (one fused autograd function: it keeps only the slopes of
        the penalties, one flow-map sized tensor per kind of difference).
    """
    if flow_maps.ndim != 5 or flow_maps.shape[2] != 2:
        raise ValueError(f"flow_maps: expected shape [B, P, 2, H, W]; got {tuple(flow_maps.shape)}")
    return _Smoothness.apply(flow_maps, eps, alpha)


class _Smoothness(torch.autograd.Function):
    """Forward keeps d(penalty)/d(difference) of every neighbour pair (flow-map sized, not event sized)."""

    @staticmethod
    def forward(ctx: FunctionCtx, flow_maps: Tensor, eps: float, alpha: float) -> Tensor:
        total = flow_maps.new_zeros(flow_maps.shape[0])
        slopes = []
        for first, second in NEIGHBOUR_PAIRS:
            difference = flow_maps[first] - flow_maps[second]
            squared = (difference * difference).add_(eps**2)
            if alpha == 0.5:  # sqrt(d^2 + eps^2), slope d / sqrt(d^2 + eps^2)
                penalty = squared.sqrt_()
                slopes.append(difference.div_(penalty))
            else:  # (d^2 + eps^2)^alpha, slope 2 alpha d (d^2 + eps^2)^(alpha - 1)
                penalty = squared.pow(alpha)
                slopes.append(difference.mul_(penalty).div_(squared).mul_(2 * alpha))
            total += penalty.sum(dim=(1, 2, 3, 4))
        ctx.save_for_backward(*slopes)
        ctx.shape = flow_maps.shape
        return total / (len(NEIGHBOUR_PAIRS) * flow_maps.shape[1])

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor) -> tuple[Tensor | None, None, None]:
        shape = ctx.shape
        scale = (grad_total / (len(NEIGHBOUR_PAIRS) * shape[1])).view(-1, 1, 1, 1, 1)
        grad = grad_total.new_zeros(shape)
        for (first, second), slope in zip(NEIGHBOUR_PAIRS, ctx.saved_tensors, strict=True):
            step = slope * scale
            grad[first] += step
            grad[second] -= step
        return grad, None, None
