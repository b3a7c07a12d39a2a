"""Focus objectives on images of warped events (IWE): what the CMax loss and the focus metrics measure."""

from __future__ import annotations

import torch
from torch import Tensor

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import Splat, splat_bilinear
from tinyflow.cmax.warp import warp_linear

AVERAGE_TIMESTAMP_EPS = 1e-9


def polarity_images(
    x: Tensor, y: Tensor, weights: Tensor, p_sign: Tensor, sensor_size: tuple[int, int], splat: Splat
) -> Tensor:
    """Splat points separately per polarity: [B, 2, H, W], channel 0 = ON (p_sign > 0), 1 = OFF."""
    is_on = p_sign > 0
    both = splat(x.repeat(2, 1), y.repeat(2, 1), torch.cat((weights * is_on, weights * ~is_on)), sensor_size)
    return both.view(2, x.shape[0], *sensor_size).transpose(0, 1)


def warped_event_images(
    window: EventsWithFlow, sensor_size: tuple[int, int], t_ref_norm: float, splat: Splat = splat_bilinear
) -> Tensor:
    """Per-polarity event-count images [B, 2, H, W] (ON, OFF) of the events warped to ``t_ref_norm``.

    ``t_ref_norm`` is in window units (0 = window start, 1 = window end).
    """
    x, y, t_norm, p_sign = window.events.unbind(-1)
    warped_x, warped_y = warp_linear(x, y, t_norm, window.flow_at_events, t_ref_norm)
    return polarity_images(warped_x, warped_y, window.mask.to(x.dtype), p_sign, sensor_size, splat)


def squared_average_timestamp_loss(
    window: EventsWithFlow, sensor_size: tuple[int, int], t_ref_norm: float, splat: Splat = splat_bilinear
) -> Tensor:
    """Hagenaars et al. (NeurIPS 2021) focus loss at one reference time, per batch element [B].

    Each event is warped to ``t_ref_norm`` (window units) and splatted with the timestamp weight
    ``s = 1 - |t_ref_norm - t_norm|``: ``s = t_norm`` for the forward reference (1, window end) and
    ``s = 1 - t_norm`` for the backward reference (0, window start), as in event_flow. Per polarity p,
    ``T_p(x) = sum_j k(x - x'_j) s_j / (sum_j k(x - x'_j) + 1e-9)`` (k = splat kernel) and

        L(t_ref) = sum_x [T_ON(x)^2 + T_OFF(x)^2] / #{x : n_ON(x) + n_OFF(x) > 0},

    n_p = warped event count image. A batch element without events gives 0.
    """
    x, y, t_norm, p_sign = window.events.unbind(-1)
    warped_x, warped_y = warp_linear(x, y, t_norm, window.flow_at_events, t_ref_norm)
    counts_weights = window.mask.to(x.dtype)
    timestamp_weights = counts_weights * (1 - (t_ref_norm - t_norm).abs())
    counts = polarity_images(warped_x, warped_y, counts_weights, p_sign, sensor_size, splat)
    stamps = polarity_images(warped_x, warped_y, timestamp_weights, p_sign, sensor_size, splat)
    average_timestamps = stamps / (counts + AVERAGE_TIMESTAMP_EPS)
    active_pixels = (counts.sum(dim=1) > 0).flatten(1).sum(dim=1)
    return average_timestamps.square().flatten(1).sum(dim=1) / active_pixels.clamp(min=1)
