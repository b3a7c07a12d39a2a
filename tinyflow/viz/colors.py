"""Colour images of flow, events, depth and errors (numpy, uint8 RGB ``[H, W, 3]``), shared by every viewer.

Conventions: flow is ``[2, H, W]`` with channel 0 = x (to the right) and channel 1 = y (downwards), in
pixels; event images are ``[2, H, W]`` per-polarity counts with channel 0 = ON, 1 = OFF.
"""

from __future__ import annotations

import numpy as np

# Middlebury colour wheel (Baker et al., IJCV 2011): number of hues between the primaries.
_WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))
ON_COLOUR = (66, 133, 244)  # blue
OFF_COLOUR = (234, 67, 53)  # red
# Anchor colours of the error ramp (dark blue -> purple -> orange -> light yellow), evenly spaced.
_ERROR_RAMP = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191]], float)


def colour_wheel() -> np.ndarray:
    """The 55 hues of the Middlebury wheel, float [55, 3] in [0, 255], starting at red, counter-clockwise."""
    rows = []
    ramps = {
        "RY": ((255, 0, 0), (255, 255, 0)),
        "YG": ((255, 255, 0), (0, 255, 0)),
        "GC": ((0, 255, 0), (0, 255, 255)),
        "CB": ((0, 255, 255), (0, 0, 255)),
        "BM": ((0, 0, 255), (255, 0, 255)),
        "MR": ((255, 0, 255), (255, 0, 0)),
    }
    for name, count in _WHEEL_SEGMENTS:
        start, stop = (np.array(c, float) for c in ramps[name])
        fractions = np.arange(count)[:, None] / count
        rows.append(start + fractions * (stop - start))
    return np.concatenate(rows)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Middlebury colour coding: hue = direction, saturation = magnitude / ``max_magnitude``.

    Args:
        flow: float [2, H, W] (x, y) in pixels; NaN counts as zero.
        max_magnitude: pixels shown fully saturated; None = the largest magnitude in ``flow``.
    Returns:
        uint8 [H, W, 3]; zero flow is white.
    """
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow: expected shape [2, H, W]; got {flow.shape}")
    u, v = np.nan_to_num(flow.astype(np.float64))
    magnitude = np.hypot(u, v)
    scale = max_magnitude if max_magnitude is not None else float(magnitude.max(initial=0.0))
    radius = np.clip(magnitude / max(scale, 1e-9), 0.0, 1.0)
    wheel = colour_wheel()
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    position = (angle + 1) / 2 * (len(wheel) - 1)
    lower = np.floor(position).astype(int)
    upper = (lower + 1) % len(wheel)
    weight = (position - lower)[..., None]
    hue = ((1 - weight) * wheel[lower] + weight * wheel[upper]) / 255
    rgb = 1 - radius[..., None] * (1 - hue)
    return np.round(rgb * 255).astype(np.uint8)


def colour_wheel_legend(size: int = 64) -> np.ndarray:
    """The key of :func:`flow_to_rgb`: uint8 [size, size, 3], flow pointing from the centre to each pixel."""
    coords = np.arange(size) - (size - 1) / 2
    x, y = np.meshgrid(coords, coords)
    flow = np.stack((x, y))
    image = flow_to_rgb(flow, max_magnitude=(size - 1) / 2)
    image[np.hypot(x, y) > (size - 1) / 2] = 255
    return image


def events_to_rgb(counts: np.ndarray, saturation_quantile: float = 0.99) -> np.ndarray:
    """ON events blue, OFF red, both purple-ish, on black; intensity = count / its quantile.

    Args:
        counts: [2, H, W] per-polarity event counts (channel 0 = ON).
        saturation_quantile: quantile of the nonzero counts shown at full intensity.
    Returns:
        uint8 [H, W, 3].
    """
    if counts.ndim != 3 or counts.shape[0] != 2:
        raise ValueError(f"counts: expected shape [2, H, W] (ON, OFF); got {counts.shape}")
    counts = np.abs(counts.astype(np.float64))
    nonzero = counts[counts > 0]
    scale = float(np.quantile(nonzero, saturation_quantile)) if nonzero.size else 1.0
    on, off = np.clip(counts / max(scale, 1e-9), 0, 1)
    rgb = on[..., None] * np.array(ON_COLOUR) + off[..., None] * np.array(OFF_COLOUR)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def scalar_to_rgb(
    values: np.ndarray, max_value: float | None = None, mask: np.ndarray | None = None
) -> np.ndarray:
    """Colour ramp (dark = 0, light yellow = ``max_value``) of a non-negative map; masked-out pixels black.

    Args:
        values: float [H, W], e.g. the endpoint error in pixels.
        max_value: value shown at the top of the ramp; None = the largest unmasked value.
        mask: bool [H, W], True where ``values`` is meaningful; None = everywhere.
    """
    values = np.nan_to_num(values.astype(np.float64))
    shown = values[mask] if mask is not None else values
    top = max_value if max_value is not None else float(shown.max(initial=0.0))
    position = np.clip(values / max(top, 1e-9), 0, 1) * (len(_ERROR_RAMP) - 1)
    lower = np.minimum(np.floor(position).astype(int), len(_ERROR_RAMP) - 2)
    weight = (position - lower)[..., None]
    rgb = (1 - weight) * _ERROR_RAMP[lower] + weight * _ERROR_RAMP[lower + 1]
    if mask is not None:
        rgb[~mask] = 0
    return np.round(rgb).astype(np.uint8)


def depth_to_rgb(
    depth_m: np.ndarray, near_m: float, far_m: float, mask: np.ndarray | None = None
) -> np.ndarray:
    """The ramp of :func:`scalar_to_rgb` over depth: light yellow at ``near_m``, dark at ``far_m`` (clipped
    outside), black where ``mask`` [H, W] is False or the depth is not finite.

    One call per image with the same ``near_m`` and ``far_m`` gives predicted and GT depth one colour map.
    """
    finite = np.isfinite(depth_m)
    shown = finite if mask is None else finite & mask
    closeness = np.clip(far_m - np.where(finite, depth_m, far_m), 0.0, None)
    return scalar_to_rgb(closeness, max_value=max(far_m - near_m, 1e-9), mask=shown)
