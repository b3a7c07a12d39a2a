"""Tests of the synthetic event camera: exact ground truth, ESIM events, sensor effects, datasets."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from tinyflow.cmax.sharpness import sharpness_gain
from tinyflow.events.core import Events
from tinyflow.events.transforms import (
    WindowSample,
    downsample,
    flip_horizontal,
    flip_polarity,
    flip_vertical,
    reverse_time,
)
from tinyflow.synth import (
    CameraLayerMotion,
    CameraMotion,
    Layer,
    LayerTexture,
    ObjectMotion,
    Scene,
    SmoothRate,
    SynthConfig,
    SyntheticRecording,
    ensure_synthetic_dataset,
    generate_recording,
    write_synthetic_dataset,
)
from tinyflow.synth.esim import ContrastThresholds, threshold_crossing_events
from tinyflow.synth.refractory import apply_refractory
from tinyflow.synth.render import render
from tinyflow.synth.stepping import max_corner_displacement_px
from tinyflow.synth.textures import background_texture, object_texture

HEIGHT, WIDTH = 48, 64
SMALL = SynthConfig(height=HEIGHT, width=WIDTH, duration_us=200_000, gt_interval_us=20_000)
STILL = SmoothRate(0.0)


def _background(seed: int = 0) -> LayerTexture:
    return background_texture(2 * max(HEIGHT, WIDTH), (0.05, 1.0), np.random.default_rng(seed))


def _object(
    seed: int = 1, radius_px: float = 12.0, centre_xy: tuple[float, float] = (0.0, 0.0)
) -> LayerTexture:
    return object_texture("rectangle", radius_px, (0.05, 1.0), np.random.default_rng(seed), centre_xy)


def _translating(
    centre_xy: tuple[float, float], vx_px_s: float, vy_px_s: float, depth_m: float, omega_rad_s: float = 0.0
) -> ObjectMotion:
    return ObjectMotion(
        centre_xy, SmoothRate(vx_px_s), SmoothRate(vy_px_s), SmoothRate(omega_rad_s), STILL, depth_m
    )


def _pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    return x, y


# ---------------------------------------------------------------- (a) analytic ground truth


def test_translation_flow_depth_and_valid_mask_are_exact():
    background = Layer(_background(), _translating((31.5, 23.5), 150.0, -60.0, 10.0))
    box = Layer(_object(), _translating((20.0, 24.0), -100.0, 40.0, 3.0))
    recording = generate_recording(SMALL, Scene((background, box), (HEIGHT, WIDTH)))
    x, y = _pixel_grid()
    for name, intervals in (("dt1", 1), ("dt4", 4)):
        gt = recording.flows[name]
        assert len(gt) == SMALL.num_gt_intervals + 1 - intervals
        np.testing.assert_array_equal(gt.t_end_us - gt.t_start_us, intervals * SMALL.gt_interval_us)
        seconds = intervals * SMALL.gt_interval_us / 1e6
        on_box = recording.depth.depth[: len(gt)] == 3.0
        assert on_box.any() and (~on_box).any()
        expected = np.where(
            on_box[:, None], np.array([-100.0, 40.0])[:, None, None], np.array([150.0, -60.0])[:, None, None]
        )
        np.testing.assert_allclose(gt.flow, expected * seconds, atol=1e-4)
        end_x, end_y = x + gt.flow[:, 0], y + gt.flow[:, 1]
        inside = (end_x >= -0.5) & (end_x < WIDTH - 0.5) & (end_y >= -0.5) & (end_y < HEIGHT - 0.5)
        np.testing.assert_array_equal(gt.valid, inside)
        assert not gt.valid.all()
    assert set(np.unique(recording.depth.depth)) == {3.0, 10.0}


def test_rotation_flow_is_exact():
    omega = 3.0  # rad/s about the frame centre
    centre = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    scene = Scene((Layer(_background(), _translating(centre, 0.0, 0.0, 10.0, omega)),), (HEIGHT, WIDTH))
    recording = generate_recording(SMALL, scene)
    x, y = _pixel_grid()
    for name, intervals in (("dt1", 1), ("dt4", 4)):
        angle = omega * intervals * SMALL.gt_interval_us / 1e6
        dx, dy = x - centre[0], y - centre[1]
        expected_x = np.cos(angle) * dx - np.sin(angle) * dy - dx
        expected_y = np.sin(angle) * dx + np.cos(angle) * dy - dy
        flow = recording.flows[name].flow
        np.testing.assert_allclose(flow[:, 0], np.broadcast_to(expected_x, flow[:, 0].shape), atol=1e-4)
        np.testing.assert_allclose(flow[:, 1], np.broadcast_to(expected_y, flow[:, 1].shape), atol=1e-4)


def test_camera_translation_has_inverse_depth_parallax():
    centre = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    camera = CameraMotion(SmoothRate(100.0), SmoothRate(50.0), STILL, STILL, 8.0, centre)
    far = Layer(_background(), CameraLayerMotion(camera, 8.0))
    near = Layer(_object(centre_xy=centre), CameraLayerMotion(camera, 2.0))
    recording = generate_recording(SMALL, Scene((far, near), (HEIGHT, WIDTH)))
    flow, depth = recording.flows["dt1"].flow, recording.depth.depth[:-1]
    seconds = SMALL.gt_interval_us / 1e6
    for depth_m in (8.0, 2.0):
        seen = depth == depth_m
        assert seen.any()
        np.testing.assert_allclose(flow[:, 0][seen], 100.0 * seconds * 8.0 / depth_m, atol=1e-4)
        np.testing.assert_allclose(flow[:, 1][seen], 50.0 * seconds * 8.0 / depth_m, atol=1e-4)


def test_changing_velocity_flow_is_the_integrated_velocity():
    vx = SmoothRate(mean=80.0, amplitude=120.0, period_s=0.09, phase=0.4)
    vy = SmoothRate(mean=-30.0, amplitude=60.0, period_s=0.13, phase=2.0)
    motion = ObjectMotion((31.5, 23.5), vx, vy, STILL, STILL, 10.0)
    recording = generate_recording(SMALL, Scene((Layer(_background(), motion),), (HEIGHT, WIDTH)))
    for name in ("dt1", "dt4"):
        gt = recording.flows[name]
        for k in range(len(gt)):
            t_s = np.linspace(gt.t_start_us[k], gt.t_end_us[k], 20_001) / 1e6
            for channel, rate in enumerate((vx, vy)):
                velocity = rate.mean + rate.amplitude * np.sin(2 * np.pi * t_s / rate.period_s + rate.phase)
                trapezoid = np.sum((velocity[1:] + velocity[:-1]) / 2 * np.diff(t_s))
                np.testing.assert_allclose(gt.flow[k, channel], trapezoid, atol=1e-4)


def test_camera_roll_and_forward_motion_scale_about_the_centre():
    omega, forward_m_s = 2.0, 3.0
    centre = ((WIDTH - 1) / 2, (HEIGHT - 1) / 2)
    camera = CameraMotion(STILL, STILL, SmoothRate(omega), SmoothRate(forward_m_s), 8.0, centre)
    layers = (
        Layer(_background(), CameraLayerMotion(camera, 8.0)),
        Layer(_object(centre_xy=centre), CameraLayerMotion(camera, 4.0)),
    )
    recording = generate_recording(SMALL, Scene(layers, (HEIGHT, WIDTH)))
    gt, depth = recording.flows["dt1"], recording.depth
    x, y = _pixel_grid()
    for k in range(len(gt)):
        t0, t1 = gt.t_start_us[k] / 1e6, gt.t_end_us[k] / 1e6
        angle = omega * (t1 - t0)
        for depth_m in (8.0, 4.0):
            seen = np.isclose(depth.depth[k], depth_m - forward_m_s * t0)
            assert seen.any()
            ratio = (depth_m - forward_m_s * t0) / (depth_m - forward_m_s * t1)
            dx, dy = x - centre[0], y - centre[1]
            expected_x = ratio * (np.cos(angle) * dx - np.sin(angle) * dy) - dx
            expected_y = ratio * (np.sin(angle) * dx + np.cos(angle) * dy) - dy
            np.testing.assert_allclose(gt.flow[k, 0][seen], expected_x[seen], atol=1e-4)
            np.testing.assert_allclose(gt.flow[k, 1][seen], expected_y[seen], atol=1e-4)


def test_first_frame_shows_the_texture_where_the_layer_is_unmoved():
    texture = _background()
    scene = Scene((Layer(texture, _translating((0.0, 0.0), 0.0, 0.0, 10.0)),), (HEIGHT, WIDTH))
    recording = generate_recording(SMALL, scene)
    expected = np.rint(texture.channels[:HEIGHT, :WIDTH, 0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(recording.frames.images[0], expected)


# ---------------------------------------------------------------- (b) GT flow sharpens the events

FAST = dict(speed_range_px_s=(150.0, 300.0), num_hot_pixels=0)
SCENE_CONFIGS = {
    "independent_objects": dict(camera_mode="objects", velocity_variation=0.0, **FAST),
    "moving_camera": dict(camera_mode="camera", velocity_variation=0.0, **FAST),
    "changing_velocity": dict(
        camera_mode="objects", velocity_variation=0.5, velocity_period_range_s=(0.15, 0.3), **FAST
    ),
}


def _rotation_scene(seed: int) -> Scene:
    """Background rotating about a pivot off the top-left corner, a box spinning about its centre."""
    background = Layer(_background(seed), _translating((-20.0, -20.0), 0.0, 0.0, 10.0, 4.0))
    box = Layer(_object(seed + 1), _translating((40.0, 28.0), 0.0, 0.0, 5.0, -6.0))
    return Scene((background, box), (HEIGHT, WIDTH))


def _scene_recording(kind: str) -> SyntheticRecording:
    config = replace(SMALL, duration_us=300_000, gt_interval_us=30_000, seed=3)
    if kind == "rotation":
        return generate_recording(replace(config, num_hot_pixels=0), _rotation_scene(config.seed))
    return generate_recording(replace(config, **SCENE_CONFIGS[kind]))


@pytest.mark.parametrize("kind", [*SCENE_CONFIGS, "rotation"])
def test_ground_truth_flow_sharpens_events(kind):
    """Every 30 ms GT interval: its events warped by flow dt1[k] give a variance ratio > 1.2 over zero flow."""
    recording = _scene_recording(kind)
    events, gt = recording.events, recording.flows["dt1"]
    gains = []
    for k in range(len(gt)):
        start, stop = np.searchsorted(events.t_us, [gt.t_start_us[k], gt.t_end_us[k]])
        gains.append(
            sharpness_gain(
                events[start:stop],
                gt.flow[k],
                int(gt.t_start_us[k]),
                int(gt.t_end_us[k]),
                recording.sensor_size,
            )
        )
    assert len(gains) == len(gt) >= 9
    assert min(gains) > 1.2, gains


@pytest.mark.parametrize(
    "transform", [flip_horizontal, flip_vertical, flip_polarity, reverse_time, "downsample"]
)
def test_augmentations_keep_ground_truth_consistent(transform):
    """A flow-aware transform changes events and GT together: the sharpness gain of (b) is unchanged."""
    recording = _scene_recording("independent_objects")
    gt = recording.flows["dt1"]
    for k in (2, 6):
        start, stop = np.searchsorted(recording.events.t_us, [gt.t_start_us[k], gt.t_end_us[k]])
        sample = WindowSample(
            recording.events[start:stop],
            recording.sensor_size,
            int(gt.t_start_us[k]),
            int(gt.t_end_us[k]),
            gt.flow[k],
            gt.valid[k],
        )
        after = downsample(sample, 2) if transform == "downsample" else transform(sample)
        gain_after = sharpness_gain(
            after.events, after.flow, after.t_start_us, after.t_end_us, after.sensor_size, bilinear=True
        )
        gain_before = sharpness_gain(
            sample.events, sample.flow, sample.t_start_us, sample.t_end_us, sample.sensor_size, bilinear=True
        )
        if transform == "downsample" or transform is reverse_time:
            # Coarser pixels / the image at the other end of the interval: still sharp, not identical.
            assert (
                sharpness_gain(after.events, after.flow, after.t_start_us, after.t_end_us, after.sensor_size)
                > 1.2
            )
        else:
            assert gain_after == pytest.approx(gain_before, rel=1e-9)


# ---------------------------------------------------------------- events and sensor effects


def test_threshold_crossings_match_hand_computed_times():
    thresholds = ContrastThresholds(on=np.full((1, 2), 0.2), off=np.full((1, 2), 0.25))
    reference = np.array([[0.1, 0.0]])
    frames = [
        (0.0, np.array([[0.0, 0.0]])),
        (1000.0, np.array([[1.0, -0.6]])),
        (2000.0, np.array([[1.0, -0.6]])),
    ]
    events = threshold_crossing_events(frames, thresholds, reference)
    # pixel 0 rises through 0.3, 0.5, 0.7, 0.9; pixel 1 falls through -0.25, -0.5
    expected = sorted([(300, 0, 1), (500, 0, 1), (700, 0, 1), (900, 0, 1), (417, 1, 0), (833, 1, 0)])
    got = list(zip(events.t_us.tolist(), events.x.tolist(), events.p.tolist(), strict=True))
    assert got == expected
    assert np.all(events.y == 0)


def test_contrast_thresholds_vary_per_pixel_and_polarity():
    thresholds = ContrastThresholds.sample((64, 64), 0.2, 0.05, 0.1, np.random.default_rng(0))
    assert thresholds.on.shape == thresholds.off.shape == (64, 64)
    assert thresholds.on.min() == 0.1 and thresholds.off.min() == 0.1
    assert abs(thresholds.on.mean() - 0.2) < 0.01 and thresholds.on.std() > 0.03
    assert not np.array_equal(thresholds.on, thresholds.off)


def test_events_integrate_to_the_log_intensity_change():
    config = replace(
        SMALL,
        contrast_threshold_std=0.0,
        refractory_us=0,
        noise_rate_hz=0.0,
        num_hot_pixels=0,
        camera_mode="objects",
    )
    recording = generate_recording(config)
    c = config.contrast_threshold_mean
    times_us = recording.render_times_us
    start, stop = times_us[len(times_us) // 4], times_us[3 * len(times_us) // 4]
    window = recording.events[(recording.events.t_us > start) & (recording.events.t_us <= stop)]
    summed = np.zeros(config.sensor_size)
    np.add.at(summed, (window.y, window.x), c * window.polarity_sign)
    intensity, _ = render(_scene_from(config), np.array([start, stop]) / 1e6)
    change = np.log(intensity[1]) - np.log(intensity[0])
    # the reference level trails the log intensity by less than one threshold at both ends; an event
    # within 0.5 µs of a window end may be rounded across it
    error = np.abs(summed - change)
    assert np.mean(error < 2 * c) > 0.999 and error.max() < 3 * c
    assert np.abs(summed).max() > 3 * c


def _scene_from(config: SynthConfig) -> Scene:
    from tinyflow.synth.scene import sample_scene

    return sample_scene(config, np.random.default_rng(config.seed))


def test_render_steps_keep_motion_below_half_a_pixel():
    config = replace(SMALL, speed_range_px_s=(200.0, 400.0), rotation_max_deg_s=90.0, camera_mode="objects")
    recording = generate_recording(config)
    times_s = recording.render_times_us / 1e6
    assert (
        times_s[0] == 0
        and recording.render_times_us[-1] == config.duration_us
        and np.all(np.diff(times_s) > 0)
    )
    steps = max_corner_displacement_px(_scene_from(config), times_s[:-1], times_s[1:])
    assert steps.max() <= 0.5 * 1.02
    assert steps.max() > 0.4  # and the steps are not needlessly fine


def test_events_sorted_inside_sensor_and_between_render_steps():
    recording = generate_recording(SMALL)
    events = recording.events
    events.validate(SMALL.sensor_size)
    assert events.t_us.dtype == np.int64 and events.t_us.min() >= 0 and events.t_us.max() <= SMALL.duration_us
    on_steps = np.isin(events.t_us, np.rint(recording.render_times_us).astype(np.int64))
    assert on_steps.mean() < 0.05
    assert len(np.unique(events.t_us)) > 10 * len(recording.render_times_us)
    assert 0.3 < events.p.mean() < 0.7


def test_refractory_filter_matches_sequential_scan():
    rng = np.random.default_rng(0)
    n = 3000
    events = Events(
        rng.integers(0, 4, n).astype(np.uint16),
        rng.integers(0, 3, n).astype(np.uint16),
        np.sort(rng.integers(0, 200_000, n)).astype(np.int64),
        rng.integers(0, 2, n).astype(np.uint8),
    )
    last: dict[tuple[int, int], int] = {}
    keep = []
    for i, (x, y, t) in enumerate(
        zip(events.x.tolist(), events.y.tolist(), events.t_us.tolist(), strict=True)
    ):
        if (x, y) not in last or t - last[(x, y)] >= 700:
            last[(x, y)] = t
            keep.append(i)
    filtered = apply_refractory(events, 4, 700)
    np.testing.assert_array_equal(filtered.t_us, events.t_us[keep])
    np.testing.assert_array_equal(filtered.x, events.x[keep])
    assert 0 < len(filtered) < n


def test_refractory_period_is_respected_per_pixel():
    config = replace(SMALL, refractory_us=1_000, speed_range_px_s=(200.0, 300.0))
    events = generate_recording(config).events
    pixel = events.y.astype(np.int64) * WIDTH + events.x
    order = np.lexsort((events.t_us, pixel))
    same_pixel = pixel[order][1:] == pixel[order][:-1]
    gaps = np.diff(events.t_us[order])[same_pixel]
    assert gaps.min() >= 1_000
    assert len(events) < len(generate_recording(replace(config, refractory_us=0)).events)


def test_hot_pixels_and_background_activity_in_a_still_scene():
    config = replace(
        SMALL,
        speed_range_px_s=(0.0, 0.0),
        rotation_max_deg_s=0.0,
        scale_rate_max_per_s=0.0,
        num_hot_pixels=4,
        hot_pixel_rate_hz=400.0,
        noise_rate_hz=2.0,
        camera_mode="objects",
    )
    events = generate_recording(config).events
    counts = np.bincount(events.y.astype(np.int64) * WIDTH + events.x, minlength=HEIGHT * WIDTH)
    expected_hot = 400.0 * config.duration_us / 1e6
    assert np.sum(counts > expected_hot / 2) == 4
    background = np.sort(counts)[:-4]
    expected_noise = 2.0 * config.duration_us / 1e6 * HEIGHT * WIDTH
    assert abs(background.sum() - expected_noise) < 5 * np.sqrt(expected_noise)


# ---------------------------------------------------------------- determinism and datasets


def _datasets(path: Path) -> dict[str, bytes]:
    """Bytes of every dataset (by name) and root attribute (``@name``) of an HDF5 file."""
    out: dict[str, bytes] = {}

    def collect(name: str, item: h5py.Dataset | h5py.Group) -> None:
        if isinstance(item, h5py.Dataset):
            out[name] = item[()].tobytes()

    with h5py.File(path, "r") as file:
        file.visititems(collect)
        out.update({f"@{key}": np.asarray(value).tobytes() for key, value in file.attrs.items()})
    return out


def test_same_seed_gives_identical_files_and_other_seeds_differ(tmp_path):
    config = replace(SMALL, duration_us=100_000)
    first = write_synthetic_dataset(tmp_path / "a", config, 2, "train", seed=7)
    again = write_synthetic_dataset(tmp_path / "b", config, 2, "train", seed=7)
    other = write_synthetic_dataset(tmp_path / "c", config, 1, "train", seed=8)
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        Path("train/train_000.h5"),
        Path("train/train_001.h5"),
    ]
    for a, b in zip(first, again, strict=True):
        assert _datasets(a) == _datasets(b)
        assert a.read_bytes() == b.read_bytes()
    assert _datasets(first[0])["events/x"] != _datasets(first[1])["events/x"]
    assert _datasets(first[0])["events/t"] != _datasets(other[0])["events/t"]
    assert {"events/x", "flow/dt1/flow", "flow/dt4/valid", "depth/depth", "images/images"} <= set(
        _datasets(first[0])
    )


def test_ensure_synthetic_dataset_generates_only_what_is_missing(tmp_path):
    config = replace(SMALL, duration_us=80_000)
    made = ensure_synthetic_dataset(tmp_path, config, {"train": 1, "val": 1}, seed=0)
    train = made["train"][0]
    stamp = os.stat(train).st_mtime_ns
    again = ensure_synthetic_dataset(tmp_path, config, {"train": 2, "val": 1}, seed=0)
    assert again["train"][0] == train and os.stat(train).st_mtime_ns == stamp
    assert again["train"][1].exists() and again["val"] == made["val"]
    folder = train.parent.parent
    assert (folder / "manifest.json").exists()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    changed = ensure_synthetic_dataset(
        tmp_path, replace(config, num_foreground_layers=1), {"train": 1}, seed=0
    )
    assert changed["train"][0].parent.parent != folder
    reseeded = ensure_synthetic_dataset(tmp_path, replace(config, seed=123), {"train": 1}, seed=0)
    assert reseeded["train"][0] == train  # the config's own seed is replaced per recording


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="duration_us"):
        SynthConfig(duration_us=30_000, gt_interval_us=20_000)
    with pytest.raises(ValueError, match="camera_mode"):
        SynthConfig(camera_mode="drone")
    with pytest.raises(ValueError, match="sensor_size"):
        generate_recording(
            SMALL, Scene((Layer(_background(), _translating((0.0, 0.0), 0, 0, 1.0)),), (10, 10))
        )
