"""Rendering of a scene's linear intensity at given times, with the top-most visible layer."""

from __future__ import annotations

import numpy as np

from tinyflow.synth.motion import Similarity
from tinyflow.synth.scene import Layer, Scene

VISIBLE_ALPHA = 0.5


def render(scene: Scene, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Composite the layers back to front (premultiplied alpha) at each time.

    Each non-periodic layer is sampled only inside the pixel box that its texture covers at
    these times (a few steps at a time keep the box tight). Layer coordinates are float32.

    Args:
        t_s: float [T], seconds.
    Returns:
        intensity: float32 [T, H, W], linear intensity in (0, 1].
        top_layer: int8 [T, H, W], index of the top-most layer with alpha >= 0.5 at each pixel
            (the layer whose scene point is seen there; 0 = background).
    """
    t_s = np.atleast_1d(np.asarray(t_s, np.float64))
    x, y = (grid.astype(np.float32) for grid in scene.pixel_grid)
    shape = (t_s.shape[0], *scene.sensor_size)
    intensity = np.zeros(shape, np.float32)
    top_layer = np.zeros(shape, np.int8)
    for index, layer in enumerate(scene.layers):
        pose = layer.motion.pose(t_s)
        window = _covered_window(layer, pose, scene.sensor_size)
        if window is None:
            continue
        qx, qy = pose.invert(x[window], y[window])
        premultiplied, alpha = layer.texture.sample(qx, qy)
        region = intensity[(slice(None), *window)]
        region *= 1 - alpha
        region += premultiplied
        top_layer[(slice(None), *window)][alpha >= VISIBLE_ALPHA] = index
    return intensity, top_layer


def _covered_window(
    layer: Layer, pose: Similarity, sensor_size: tuple[int, int]
) -> tuple[slice, slice] | None:
    """(rows, cols) slices of the pixels the layer's texture may cover at any of the pose's times."""
    height, width = sensor_size
    if layer.texture.periodic:
        return slice(0, height), slice(0, width)
    px, py = pose.apply(*layer.texture.corners_xy())
    col0, col1 = max(int(np.floor(px.min())), 0), min(int(np.ceil(px.max())), width - 1)
    row0, row1 = max(int(np.floor(py.min())), 0), min(int(np.ceil(py.max())), height - 1)
    if col0 > col1 or row0 > row1:
        return None
    return slice(row0, row1 + 1), slice(col0, col1 + 1)
