"""Association of flow to events and the linear (constant-flow) warp of events to a reference time."""

from __future__ import annotations

from torch import Tensor


def sample_flow_at_events(flow: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Flow of each event, read at its own integer pixel (no interpolation).

    Args:
        flow: [B, 2, H, W] (x, y) displacement in pixels.
        x: [B, N] pixel column of each event, an integer (stored as int or float) in [0, W-1].
        y: [B, N] pixel row of each event, an integer in [0, H-1].
    Returns:
        [B, N, 2] (x, y) flow at the events, in the units of ``flow``; differentiable w.r.t. ``flow``.
    """
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow: expected shape [B, 2, H, W]; got {tuple(flow.shape)}")
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] != flow.shape[0]:
        raise ValueError(
            f"event coordinates: expected x and y of shape [{flow.shape[0]}, N]; "
            f"got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    batch, _, _, width = flow.shape
    flat_index = (y.long() * width + x.long()).unsqueeze(1).expand(batch, 2, -1)
    return flow.flatten(2).gather(2, flat_index).transpose(1, 2)


def warp_linear(
    x: Tensor, y: Tensor, t_norm: Tensor, flow_at_events: Tensor, t_ref_norm: float
) -> tuple[Tensor, Tensor]:
    """Move each event along its constant flow to the reference time: ``x' = x + (t_ref - t) * u``.

    Args:
        x, y: [B, N] event pixel coordinates (column, row).
        t_norm: [B, N] event time in units of the flow interval (0 = its start, 1 = its end).
        flow_at_events: [B, N, 2] (x, y) displacement in pixels over that interval.
        t_ref_norm: reference time in the same units.
    Returns:
        Warped (x, y) sub-pixel positions, each [B, N].
    """
    steps = t_ref_norm - t_norm
    return x + steps * flow_at_events[..., 0], y + steps * flow_at_events[..., 1]
