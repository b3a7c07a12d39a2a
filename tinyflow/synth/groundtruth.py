"""Exact ground truth of a scene at the ground-truth times: flow, depth and frames."""

from __future__ import annotations

import numpy as np

from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.synth.scene import Scene


def ground_truth_flow(scene: Scene, t_us: np.ndarray, top_layer: np.ndarray, span: int) -> FlowGT:
    """Flow from ``t_us[k]`` to ``t_us[k + span]`` of the scene point seen at each pixel at ``t_us[k]``.

    The point belongs to the top-most layer at the pixel at ``t_us[k]`` and moves with that
    layer's exact similarity motion. A flow vector is valid when the point's end position lies in
    the sensor area ``[-0.5, W - 0.5) x [-0.5, H - 0.5)`` (it may be occluded there).

    Args:
        t_us: int64 [K + 1] ground-truth times, microseconds.
        top_layer: int [K + 1, H, W] from :func:`tinyflow.synth.render.render` at ``t_us``.
        span: number of ground-truth intervals per flow map (1 for dt1, 4 for dt4).
    Returns:
        FlowGT with ``K + 1 - span`` maps, float32 [.., 2, H, W] (x, y) displacement in pixels.
    """
    starts = np.asarray(t_us[:-span], np.int64)
    ends = np.asarray(t_us[span:], np.int64)
    x, y = scene.pixel_grid
    height, width = scene.sensor_size
    flow = np.zeros((len(starts), 2, height, width), np.float32)
    for index, layer in enumerate(scene.layers):
        motion = layer.motion.pose(ends / 1e6).relative_to(layer.motion.pose(starts / 1e6))
        end_x, end_y = motion.apply(x, y)
        seen = top_layer[: len(starts)] == index
        flow[:, 0][seen] = (end_x - x)[seen]
        flow[:, 1][seen] = (end_y - y)[seen]
    end_x = x + flow[:, 0]
    end_y = y + flow[:, 1]
    valid = (end_x >= -0.5) & (end_x < width - 0.5) & (end_y >= -0.5) & (end_y < height - 0.5)
    return FlowGT(flow, starts, ends, valid)


def ground_truth_depth(scene: Scene, t_us: np.ndarray, top_layer: np.ndarray) -> DepthGT:
    """Depth in metres (float32 [K, H, W]) of the top-most layer at each pixel and time ``t_us`` [K]."""
    depth = np.zeros(top_layer.shape, np.float32)
    for index, layer in enumerate(scene.layers):
        layer_depth = np.broadcast_to(layer.motion.depth(t_us / 1e6)[:, None, None], top_layer.shape)
        seen = top_layer == index
        depth[seen] = layer_depth[seen]
    return DepthGT(depth, np.asarray(t_us, np.int64))


def intensity_frames(intensity: np.ndarray, t_us: np.ndarray) -> Frames:
    """Linear intensity in [0, 1] (float [K, H, W]) as uint8 frames (round(255 * I))."""
    images = np.rint(np.clip(intensity, 0.0, 1.0) * 255).astype(np.uint8)
    return Frames(images, np.asarray(t_us, np.int64))
