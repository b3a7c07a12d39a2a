"""Adaptive render steps: no pixel moves more than a set distance between two render times."""

from __future__ import annotations

import numpy as np

from tinyflow.synth.scene import Scene


def max_corner_displacement_px(scene: Scene, t_start_s: np.ndarray, t_end_s: np.ndarray) -> np.ndarray:
    """Largest displacement (pixels) of any image point under any layer's motion, for each time pair.

    Between two times a layer's image points move by an affine map, so the largest displacement
    over the frame is reached at one of its four corners; the value bounds every visible point.

    Args:
        t_start_s, t_end_s: float [G], seconds.
    Returns:
        float [G].
    """
    height, width = scene.sensor_size
    corners_x = np.array([0.0, width - 1, 0.0, width - 1])
    corners_y = np.array([0.0, 0.0, height - 1, height - 1])
    largest = np.zeros(np.shape(t_start_s))
    for layer in scene.layers:
        motion = layer.motion.pose(t_end_s).relative_to(layer.motion.pose(t_start_s))
        px, py = motion.apply(corners_x, corners_y)
        largest = np.maximum(largest, np.hypot(px - corners_x, py - corners_y).max(axis=1))
    return largest


def render_times_us(
    scene: Scene, duration_us: int, max_step_displacement_px: float, max_render_step_us: int
) -> np.ndarray:
    """Render times (float64 µs, from 0 to ``duration_us`` inclusive, increasing).

    The recording is cut into probe intervals of at most ``max_render_step_us``; each is split
    evenly into as many steps as its largest displacement needs to stay within
    ``max_step_displacement_px`` per step (velocities change slowly within one probe interval).
    """
    num_probes = int(np.ceil(duration_us / max_render_step_us))
    probes_us = np.linspace(0.0, float(duration_us), num_probes + 1)
    displacement = max_corner_displacement_px(scene, probes_us[:-1] / 1e6, probes_us[1:] / 1e6)
    splits = np.maximum(np.ceil(displacement / max_step_displacement_px), 1).astype(np.int64)
    first = np.repeat(np.cumsum(splits) - splits, splits)
    fraction = (np.arange(int(splits.sum())) - first) / np.repeat(splits, splits)
    cell = np.repeat(np.arange(num_probes), splits)
    starts = probes_us[cell] + fraction * (probes_us[cell + 1] - probes_us[cell])
    return np.append(starts, float(duration_us))
