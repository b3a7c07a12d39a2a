"""Focus objectives on images of warped events (IWE): what the CMax losses and the focus metrics measure.

Image layout: per-polarity images ``[..., 2, H, W]``, channel 0 = ON (p_sign > 0), 1 = OFF. Each
objective is a loss (lower = sharper).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import Splat, splat_bilinear
from tinyflow.cmax.warp import warp_linear

AVERAGE_TIMESTAMP_EPS = 1e-9


def average_timestamp_focus(counts: Tensor, stamps: Tensor) -> Tensor:
    """Hagenaars et al. (NeurIPS 2021): squared average-timestamp images normalised by the active pixels.

    Args:
        counts: [..., 2, H, W] per-polarity images of warped events (splat weight 1 per event).
        stamps: [..., 2, H, W] the same events splatted with their timestamp weights s in [0, 1].
    Returns:
        [...] ``sum_x [T_ON(x)^2 + T_OFF(x)^2] / #{x : n_ON(x) + n_OFF(x) > 0}`` with
        ``T_p = stamps_p / (counts_p + 1e-9)``; 0 without events.
    """
    average_timestamps = stamps / (counts + AVERAGE_TIMESTAMP_EPS)
    active_pixels = (counts.sum(dim=-3) > 0).flatten(-2).sum(dim=-1)
    return average_timestamps.square().flatten(-3).sum(dim=-1) / active_pixels.clamp(min=1)


def variance_focus(counts: Tensor) -> Tensor:
    """Contrast of Gallego et al. (CVPR 2018) as a loss: minus the variance over pixels of the IWE.

    Args:
        counts: [..., 2, H, W] per-polarity images of warped events; the IWE is their sum.
    Returns:
        [...] ``-Var_x[n_ON(x) + n_OFF(x)]`` (unbiased variance over the H * W pixels).
    """
    return -counts.sum(dim=-3).flatten(-2).var(dim=-1)


@dataclass(frozen=True)
class Focus:
    """A focus objective on splatted images.

    Attributes:
        num_weights: splat weights per event: 1 (counts) or 2 (counts, timestamp weights s).
        measure: ``images [..., 2 (polarity), num_weights, H, W] -> loss [...]``.
    """

    num_weights: int
    measure: Callable[[Tensor], Tensor]


FOCUS = {
    "average_timestamp": Focus(
        2, lambda images: average_timestamp_focus(images[..., 0, :, :], images[..., 1, :, :])
    ),
    "variance": Focus(1, lambda images: variance_focus(images[..., 0, :, :])),
}


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

    Each event is warped linearly to ``t_ref_norm`` (window units) and splatted with the timestamp weight
    ``s = 1 - |t_ref_norm - t_norm|``: ``s = t_norm`` for the forward reference (1, window end) and
    ``s = 1 - t_norm`` for the backward reference (0, window start), as in event_flow; the result is
    :func:`average_timestamp_focus` of the count and timestamp images. A batch element without events
    gives 0.
    """
    x, y, t_norm, p_sign = window.events.unbind(-1)
    warped_x, warped_y = warp_linear(x, y, t_norm, window.flow_at_events, t_ref_norm)
    counts_weights = window.mask.to(x.dtype)
    timestamp_weights = counts_weights * (1 - (t_ref_norm - t_norm).abs())
    counts = polarity_images(warped_x, warped_y, counts_weights, p_sign, sensor_size, splat)
    stamps = polarity_images(warped_x, warped_y, timestamp_weights, p_sign, sensor_size, splat)
    return average_timestamp_focus(counts, stamps)
