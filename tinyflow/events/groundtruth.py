"""Ground-truth containers that travel with events: flow maps, depth and disparity maps, frames.

All maps are (..., H, W). Flow channel 0 is the x (column) displacement and channel 1 the
y (row) displacement, in pixels over the interval ``[t_start_us, t_end_us]`` of its map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FlowGT:
    """Dense ground-truth flow.

    Attributes:
        flow: float32 [K, 2, H, W], (x, y) displacement in pixels from ``t_start_us[k]`` to ``t_end_us[k]``.
        t_start_us: int64 [K], start of each map's interval, microseconds.
        t_end_us: int64 [K], end of each map's interval, microseconds.
        valid: bool [K, H, W] or None (all valid).
    """

    flow: np.ndarray
    t_start_us: np.ndarray
    t_end_us: np.ndarray
    valid: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.t_start_us.shape[0])


@dataclass(frozen=True)
class DepthGT:
    """Dense depth in metres (NaN = invalid), float32 [K, H, W], at ``t_us`` [K] microseconds."""

    depth: np.ndarray
    t_us: np.ndarray


@dataclass(frozen=True)
class DisparityGT:
    """Dense stereo disparity of the left camera in pixels, float32 [K, H, W], at ``t_us`` [K] microseconds.

    Rectified pair: the scene point seen at left pixel (x, y) is at (x - d, y) in the right camera, d > 0;
    NaN where the point is seen by the left camera only (occluded in the right view, or outside its frame).
    For a focal length f (px) and baseline b (m), d = f b / Z with Z the left depth in metres.
    """

    disparity: np.ndarray
    t_us: np.ndarray


@dataclass(frozen=True)
class Frames:
    """Intensity frames uint8 [K, H, W] at ``t_us`` [K] microseconds."""

    images: np.ndarray
    t_us: np.ndarray
