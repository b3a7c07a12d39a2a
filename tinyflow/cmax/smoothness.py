"""Charbonnier smoothness of predicted flow maps over space and over consecutive forward passes."""

from __future__ import annotations

from torch import Tensor


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
    """
    if flow_maps.ndim != 5 or flow_maps.shape[2] != 2:
        raise ValueError(f"flow_maps: expected shape [B, P, 2, H, W]; got {tuple(flow_maps.shape)}")
    differences = (
        flow_maps[..., :, :-1] - flow_maps[..., :, 1:],
        flow_maps[..., :-1, :] - flow_maps[..., 1:, :],
        flow_maps[..., :-1, :-1] - flow_maps[..., 1:, 1:],
        flow_maps[..., 1:, :-1] - flow_maps[..., :-1, 1:],
        flow_maps[:, :-1] - flow_maps[:, 1:],
    )
    total = sum(charbonnier(d, eps, alpha).flatten(1).sum(dim=1) for d in differences)
    return total / (len(differences) * flow_maps.shape[1])
