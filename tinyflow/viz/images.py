"""Numpy images of event lists and flow fields: per-polarity counts, sparse arrows.

Event lists are ``[N, 4]`` with columns (x, y, t_norm, p_sign) as the datasets produce them; images are
``[..., H, W]`` with (x, y) = (column, row).
"""

from __future__ import annotations

import numpy as np


def event_counts(events: np.ndarray, mask: np.ndarray, sensor_size: tuple[int, int]) -> np.ndarray:
    """Per-polarity counts float32 [2, H, W] (channel 0 = ON) of the events where ``mask`` [N] is True.

    Events outside the sensor are dropped; x and y are rounded to the nearest pixel.
    """
    height, width = sensor_size
    kept = events[mask]
    x = np.rint(kept[:, 0]).astype(np.int64)
    y = np.rint(kept[:, 1]).astype(np.int64)
    channel = (kept[:, 3] < 0).astype(np.int64)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    counts = np.zeros((2, height, width), np.float32)
    np.add.at(counts, (channel[inside], y[inside], x[inside]), 1.0)
    return counts


def sparse_arrows(
    flow: np.ndarray, stride: int, mask: np.ndarray | None = None, min_length: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Arrows of ``flow`` [2, H, W] on a grid of ``stride`` pixels (cell centres).

    Args:
        mask: bool [H, W]; grid points where it is False get no arrow.
        min_length: shorter vectors (pixels) are left out.
    Returns:
        origins and vectors, float32 [K, 2] each, (x, y) in pixels.
    """
    if stride < 1:
        raise ValueError(f"stride: expected a grid spacing of at least 1 pixel; got {stride}")
    height, width = flow.shape[-2:]
    ys, xs = np.meshgrid(
        np.arange(stride // 2, height, stride), np.arange(stride // 2, width, stride), indexing="ij"
    )
    vectors = flow[:, ys, xs].reshape(2, -1).T
    keep = np.hypot(vectors[:, 0], vectors[:, 1]) >= min_length
    if mask is not None:
        keep &= mask[ys, xs].reshape(-1)
    origins = np.stack((xs.reshape(-1), ys.reshape(-1)), axis=1)
    return origins[keep].astype(np.float32), vectors[keep].astype(np.float32)
