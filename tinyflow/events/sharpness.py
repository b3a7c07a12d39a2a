"""Numpy images of warped events, used to check that flow and events agree.

This is the reference sharpness check of the data layer (synthetic GT, augmentations);
the differentiable CMax losses live in :mod:`tinyflow.cmax`.
"""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events


def splat_bilinear(
    x: np.ndarray, y: np.ndarray, sensor_size: tuple[int, int], weights: np.ndarray | None = None
) -> np.ndarray:
    """Accumulate sub-pixel points (x = column, y = row) into a float64 [H, W] image by bilinear splatting.

    Points whose four neighbours lie partly outside the image keep only their inside share.
    """
    height, width = sensor_size
    w = np.ones_like(x, dtype=np.float64) if weights is None else weights.astype(np.float64)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx = x - x0
    fy = y - y0
    image = np.zeros(height * width, np.float64)
    for dx, dy, share in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        image += np.bincount((yi * width + xi)[inside], weights=(w * share)[inside], minlength=height * width)
    return image.reshape(height, width)


def warp_to_reference(
    events: Events, flow_xy: np.ndarray, t_start_us: int, t_end_us: int, t_ref_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """Move each event along a constant flow to ``t_ref_us`` (linear warp).

    Args:
        flow_xy: float [2, H, W], (x, y) displacement in pixels over ``[t_start_us, t_end_us]``,
            sampled at each event's integer pixel.
    Returns:
        Warped (x, y) positions as float64 arrays.
    """
    span = max(int(t_end_us) - int(t_start_us), 1)
    xi = events.x.astype(np.int64)
    yi = events.y.astype(np.int64)
    dt = (t_ref_us - events.t_us.astype(np.float64)) / span
    return xi + dt * flow_xy[0, yi, xi], yi + dt * flow_xy[1, yi, xi]


def splat_nearest(x: np.ndarray, y: np.ndarray, sensor_size: tuple[int, int]) -> np.ndarray:
    """Count sub-pixel points (x = column, y = row) at their nearest pixel: float64 [H, W]; outside points drop."""
    height, width = sensor_size
    xi = np.rint(x).astype(np.int64)
    yi = np.rint(y).astype(np.int64)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    return (
        np.bincount(yi[inside] * width + xi[inside], minlength=height * width)
        .astype(np.float64)
        .reshape(height, width)
    )


def warped_event_image(
    events: Events,
    flow_xy: np.ndarray,
    t_start_us: int,
    t_end_us: int,
    sensor_size: tuple[int, int],
    t_ref_us: int | None = None,
    bilinear: bool = False,
) -> np.ndarray:
    """Image of warped events (event counts, both polarities) at ``t_ref_us`` (default: interval start).

    Events land on their nearest pixel (``bilinear=False``, so that warped and unwarped images are
    accumulated alike) or are splatted bilinearly.
    """
    ref = t_start_us if t_ref_us is None else t_ref_us
    wx, wy = warp_to_reference(events, flow_xy, t_start_us, t_end_us, ref)
    return splat_bilinear(wx, wy, sensor_size) if bilinear else splat_nearest(wx, wy, sensor_size)


def sharpness_gain(
    events: Events,
    flow_xy: np.ndarray,
    t_start_us: int,
    t_end_us: int,
    sensor_size: tuple[int, int],
    bilinear: bool = False,
) -> float:
    """Variance of the image of events warped by ``flow_xy`` divided by that with zero flow (> 1 = sharper).

    By default both images use nearest-pixel accumulation, so the ratio is not biased towards zero
    flow (bilinear splatting blurs sub-pixel positions but not the integer positions of unwarped
    events); ``bilinear=True`` splats both bilinearly (exactly mirror-symmetric, for invariance checks).
    """
    warped = warped_event_image(events, flow_xy, t_start_us, t_end_us, sensor_size, bilinear=bilinear)
    still = warped_event_image(
        events, np.zeros_like(flow_xy), t_start_us, t_end_us, sensor_size, bilinear=bilinear
    )
    return float(warped.var() / max(still.var(), 1e-12))
