"""The synthetic stereo camera: exact disparity, occlusion, events that line up, the files on disk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tinyflow.cmax.splat import splat_nearest
from tinyflow.events.core import Events
from tinyflow.io import open_recording
from tinyflow.synth import (
    CameraLayerMotion,
    CameraMotion,
    Layer,
    LayerTexture,
    ObjectMotion,
    Scene,
    SmoothRate,
    StereoConfig,
    SynthConfig,
    ensure_synthetic_dataset,
    generate_recording,
)
from tinyflow.synth.dataset import dataset_spec, recording_seed
from tinyflow.synth.textures import background_texture

HEIGHT, WIDTH = 48, 64
SMALL = SynthConfig(height=HEIGHT, width=WIDTH, duration_us=200_000, gt_interval_us=20_000)
STEREO = StereoConfig(baseline_m=0.1, focal_px=50.0)  # f b = 5 px m: 1.25 px at 4 m, 5 px at 1 m
STILL = SmoothRate(0.0)
BOX_ROWS, BOX_COLUMNS = (2, 13), (2, 17)  # opaque texels of the box texture, inclusive


def _box_texture() -> LayerTexture:
    """An opaque rectangle of texels rows 2-13, columns 2-17 (alpha exactly 0 or 1), textured inside."""
    channels = np.zeros((16, 20, 2), np.float32)
    rows, cols = slice(BOX_ROWS[0], BOX_ROWS[1] + 1), slice(BOX_COLUMNS[0], BOX_COLUMNS[1] + 1)
    channels[rows, cols, 1] = 1.0
    channels[rows, cols, 0] = np.random.default_rng(4).uniform(0.1, 1.0, channels[rows, cols, 0].shape)
    return LayerTexture(channels, (0.0, 0.0), periodic=False)


def _still(centre_xy: tuple[float, float], depth_m: float) -> ObjectMotion:
    return ObjectMotion(centre_xy, STILL, STILL, STILL, STILL, depth_m)


def _ramp(u: np.ndarray, first: int, last: int) -> np.ndarray:
    """Bilinear coverage of texels ``first..last`` (1) with 0 beside them, at texel coordinate ``u``."""
    return np.clip(np.minimum(u - (first - 1), (last + 1) - u), 0.0, 1.0)


def test_fronto_parallel_layers_have_disparity_f_b_over_z_and_occlusions_are_marked():
    """A box at 1 m over a background at 4 m, both still: disparity is f b / Z exactly where the right
    camera sees the point; NaN on the left border (out of the right frame) and on the background band
    that the box covers in the right view (a 3.75 px wide strip left of the box)."""
    box_origin = (30.0, 20.0)  # integer: every left pixel samples the box's alpha at a texel (0 or 1)
    scene = Scene(
        (Layer(background_texture(128, (0.05, 1.0), np.random.default_rng(0)), _still((31.5, 23.5), 4.0)),
         Layer(_box_texture(), _still(box_origin, 1.0))),
        (HEIGHT, WIDTH),
    )  # fmt: skip
    recording = generate_recording(SMALL, scene, stereo=STEREO)
    disparity = recording.disparity.disparity
    np.testing.assert_array_equal(recording.disparity.t_us, recording.depth.t_us)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)

    def box_alpha(x_image: np.ndarray, shift_px: float) -> np.ndarray:
        u, v = x_image + shift_px - box_origin[0], y - box_origin[1]
        return _ramp(u, *BOX_COLUMNS) * _ramp(v, *BOX_ROWS)

    on_box = box_alpha(x, 0.0) >= 0.5
    d_box, d_background = 5.0 / 1.0, 5.0 / 4.0
    # A background point at left x is at x - d_background in the right view; the box is there if its
    # right-view alpha (the box shifted by -d_box) at that point is >= 0.5.
    covered = ~on_box & (box_alpha(x - d_background, d_box) >= 0.5)
    outside = x - np.where(on_box, d_box, d_background) < -0.5
    expected = np.where(on_box, d_box, d_background).astype(np.float32)
    expected[covered | outside] = np.nan
    for k in range(len(disparity)):
        np.testing.assert_array_equal(disparity[k], expected)
    assert covered.sum() == 4 * (BOX_ROWS[1] - BOX_ROWS[0] + 1)  # columns 26-29 of the box's 12 rows
    assert outside.sum() == HEIGHT and (recording.depth.depth[0][on_box] == 1.0).all()


def test_disparity_follows_depth_over_time_under_forward_motion():
    """Camera mode with forward motion: each layer's depth shrinks over time; disparity = f b / Z(t)
    wherever it is defined, at every GT time."""
    centre = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    camera = CameraMotion(SmoothRate(40.0), STILL, STILL, SmoothRate(2.0), 6.0, centre)
    far = Layer(
        background_texture(128, (0.05, 1.0), np.random.default_rng(0)), CameraLayerMotion(camera, 6.0)
    )
    near = Layer(_box_texture(), CameraLayerMotion(camera, 2.5))
    recording = generate_recording(SMALL, Scene((far, near), (HEIGHT, WIDTH)), stereo=STEREO)
    depth, disparity = recording.depth.depth, recording.disparity.disparity
    defined = np.isfinite(disparity)
    np.testing.assert_allclose(disparity[defined], 5.0 / depth[defined], rtol=1e-6)
    assert depth[-1].min() < depth[0].min() - 0.3  # the camera moved 0.4 m closer
    assert defined.mean() > 0.9


def test_a_scene_drawn_near_below_far_is_refused():
    background = Layer(
        background_texture(128, (0.05, 1.0), np.random.default_rng(0)), _still((31.5, 23.5), 2.0)
    )
    scene = Scene((background, Layer(_box_texture(), _still((30.0, 20.0), 5.0))), (HEIGHT, WIDTH))
    with pytest.raises(ValueError, match="drawn back to front"):
        generate_recording(SMALL, scene, stereo=STEREO)


# ---------------------------------------------------------------- the right camera's events line up

WIDE = StereoConfig(baseline_m=0.3, focal_px=40.0)  # 3-8 px disparities: misalignment is unmistakable
SHARPNESS_CONFIG = replace(
    SMALL,
    duration_us=300_000,
    gt_interval_us=30_000,
    depth_range_m=(1.5, 4.0),
    speed_range_px_s=(40.0, 120.0),
    velocity_variation=0.0,
    num_hot_pixels=0,
    seed=3,
)


def _alignment(left: Events, shift_px: np.ndarray, right: Events) -> float:
    """Variance of the image of the left events moved by ``-shift_px`` along x together with the right
    events (nearest pixel); aligned edges stack up, so a higher variance means a better match."""
    x = torch.from_numpy(np.concatenate([left.x - shift_px, right.x]).astype(np.float64))[None]
    y = torch.from_numpy(np.concatenate([left.y, right.y]).astype(np.float64))[None]
    return float(splat_nearest(x, y, torch.ones_like(x), (HEIGHT, WIDTH)).var())


@pytest.mark.parametrize("mode", ["objects", "camera"])
def test_left_events_moved_by_the_gt_disparity_line_up_with_the_right_events(mode):
    """Around each GT time (+-5 ms), the left events moved by the GT disparity at their pixel stack onto
    the right camera's events: variance ratio > 1.2 over no shift, where the opposite shift does not
    sharpen; per-pixel GT beats the best single shift (the median disparity) on average."""
    recording = generate_recording(replace(SHARPNESS_CONFIG, camera_mode=mode), stereo=WIDE)
    left, right, gt = recording.events, recording.right_events, recording.disparity
    gains, opposite, over_constant = [], [], []
    for k in range(1, len(gt.t_us) - 1):
        a, b = gt.t_us[k] - 5_000, gt.t_us[k] + 5_000
        window_left = left[np.searchsorted(left.t_us, a) : np.searchsorted(left.t_us, b)]
        window_right = right[np.searchsorted(right.t_us, a) : np.searchsorted(right.t_us, b)]
        shift = gt.disparity[k][window_left.y, window_left.x]
        seen = np.isfinite(shift)
        events, shift = window_left[seen], shift[seen].astype(np.float64)
        still = _alignment(events, np.zeros_like(shift), window_right)
        gains.append(_alignment(events, shift, window_right) / still)
        opposite.append(_alignment(events, -shift, window_right) / still)
        constant = _alignment(events, np.full_like(shift, np.median(shift)), window_right) / still
        over_constant.append(gains[-1] / constant)
    assert len(gains) == 9
    assert min(gains) > 1.2, gains
    assert max(opposite) < 1.05, opposite
    assert np.mean(over_constant) > 1.02, over_constant


# ---------------------------------------------------------------- sensors and files


def test_left_camera_is_the_mono_recording_and_the_right_sensor_is_its_own():
    config = replace(SMALL, seed=5, num_hot_pixels=0)
    mono, stereo = generate_recording(config), generate_recording(config, stereo=STEREO)
    for key in ("x", "y", "t_us", "p"):
        np.testing.assert_array_equal(getattr(stereo.events, key), getattr(mono.events, key))
    np.testing.assert_array_equal(stereo.depth.depth, mono.depth.depth)
    assert stereo.right_events is not None and len(stereo.right_events) > 0.5 * len(stereo.events)
    coarse = generate_recording(config, stereo=replace(STEREO, right_sensor={"contrast_threshold_mean": 0.4}))
    np.testing.assert_array_equal(coarse.events.t_us, stereo.events.t_us)
    assert len(coarse.right_events) < 0.7 * len(stereo.right_events)  # twice the threshold, fewer events
    with pytest.raises(ValueError, match=r"StereoConfig.right_sensor=.*expected keys among"):
        StereoConfig(right_sensor={"height": 10})
    with pytest.raises(ValueError, match=r"StereoConfig.baseline_m=0.0: expected > 0 metres"):
        StereoConfig(baseline_m=0.0)


def test_stereo_dataset_is_cached_apart_and_reads_back_both_cameras(tmp_path):
    config = replace(SMALL, height=32, width=32, duration_us=100_000)
    paths = ensure_synthetic_dataset(tmp_path, config, {"train": 1}, seed=0, stereo=STEREO)["train"]
    mono = ensure_synthetic_dataset(tmp_path, config, {"train": 1}, seed=0)["train"]
    assert paths[0].parent.parent != mono[0].parent.parent  # a stereo dataset has its own folder
    assert "stereo" not in dataset_spec(config, 0)  # mono datasets keep their key
    generated = generate_recording(replace(config, seed=recording_seed(0, "train", 0)), stereo=STEREO)
    recording = open_recording(paths[0])
    assert recording.cameras == ("left", "right") and open_recording(mono[0]).cameras == ("left",)
    right = recording.camera("right")
    assert (right.sensor_size, right.t0_us, right.name) == (
        recording.sensor_size,
        recording.t0_us,
        recording.name,
    )
    read = right.events(0, right.num_events)
    np.testing.assert_array_equal(read.t_us, generated.right_events.t_us)
    np.testing.assert_array_equal(read.x, generated.right_events.x)
    np.testing.assert_array_equal(
        right.index_at_time(np.array([50_000])), np.searchsorted(read.t_us, [50_000])
    )
    np.testing.assert_array_equal(recording.disparity().disparity, generated.disparity.disparity)
    assert recording.calib() == {"baseline_m": 0.1, "focal_px": 50.0}
    assert right.depth() is None and right.flow_names == [] and right.cameras == ("left",)
    with pytest.raises(Exception, match=r"no 'right' camera \(cameras: \['left'\]\)"):
        open_recording(mono[0]).camera("right")
