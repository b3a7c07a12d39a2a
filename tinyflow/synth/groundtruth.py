"""Exact ground truth of a scene at the ground-truth times: flow, depth, stereo disparity and frames."""

from __future__ import annotations

import numpy as np

from tinyflow.events.groundtruth import DepthGT, DisparityGT, FlowGT, Frames
from tinyflow.synth.motion import StereoShiftedMotion
from tinyflow.synth.render import VISIBLE_ALPHA
from tinyflow.synth.scene import Layer, Scene


def right_camera_scene(scene: Scene, focal_baseline_px_m: float) -> Scene:
    """The scene as the right camera of a rectified pair sees it (:class:`StereoShiftedMotion` per layer).

    Layers must be drawn back to front (non-increasing depth): occlusion is the same in both cameras only
    when the layer drawn on top is the nearer one.
    """
    layers = tuple(
        Layer(layer.texture, StereoShiftedMotion(layer.motion, focal_baseline_px_m)) for layer in scene.layers
    )
    return Scene(layers, scene.sensor_size)


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


def ground_truth_disparity(
    scene: Scene, right: Scene, t_us: np.ndarray, top_layer: np.ndarray, focal_baseline_px_m: float
) -> DisparityGT:
    """Left-camera disparity in pixels (float32 [K, H, W]) at times ``t_us`` [K], NaN where occluded.

    The scene point seen at left pixel (x, y) on layer L at depth Z has disparity d = f b / Z and appears at
    (x - d, y) in the right camera. It is seen by the left camera only (NaN) when that point lies outside
    the right frame ``[-0.5, W - 0.5)``, or when a layer drawn above L covers it there (alpha >= 0.5, the
    rule of :func:`~tinyflow.synth.render.render`'s top layer) in the right view ``right``
    (:func:`right_camera_scene`).

    Args:
        top_layer: int [K, H, W] left-camera top layers at ``t_us`` (:func:`~tinyflow.synth.render.render`).
    Raises:
        ValueError: a layer is drawn above a farther one at some time (occlusion would differ between views).
    """
    t_s = np.asarray(t_us, np.int64) / 1e6
    depths = np.stack([layer.motion.depth(t_s) for layer in scene.layers])  # [L, K]
    if np.any(np.diff(depths, axis=0) > 0):
        raise ValueError(
            "stereo ground truth: scene layers must be drawn back to front (depth non-increasing)"
        )
    x, y = scene.pixel_grid
    width = scene.sensor_size[1]
    disparity = np.full(top_layer.shape, np.nan, np.float32)
    for index in range(len(scene.layers)):
        for k in range(len(t_s)):
            seen = top_layer[k] == index
            d = focal_baseline_px_m / depths[index, k]
            x_right, y_right = x[seen] - d, y[seen]
            visible = (x_right >= -0.5) & (x_right < width - 0.5)
            for above in right.layers[index + 1 :]:
                qx, qy = above.motion.pose(t_s[k : k + 1]).invert(x_right, y_right)
                visible &= above.texture.sample(qx[0], qy[0])[1] < VISIBLE_ALPHA
            disparity[k][seen] = np.where(visible, d, np.nan)
    return DisparityGT(disparity, np.asarray(t_us, np.int64))


def intensity_frames(intensity: np.ndarray, t_us: np.ndarray) -> Frames:
    """Linear intensity in [0, 1] (float [K, H, W]) as uint8 frames (round(255 * I))."""
    images = np.rint(np.clip(intensity, 0.0, 1.0) * 255).astype(np.uint8)
    return Frames(images, np.asarray(t_us, np.int64))
