"""The transfer sets (config/data/transfer_*.yaml): each set's ground truth is the motion it names, checked
analytically on its own recordings' scenes; the sets are held apart from training."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from omegaconf import OmegaConf

from tinyflow.synth import CameraLayerMotion, ObjectMotion, SynthConfig, generate_recording
from tinyflow.synth.dataset import dataset_key, recording_seed
from tinyflow.synth.groundtruth import ground_truth_flow
from tinyflow.synth.render import render
from tinyflow.synth.scene import sample_scene
from tinyflow.synth.textures import natural_background_texture

SETS = ("world", "roll", "zoom", "fast", "slow", "natural", "low_rate", "high_rate", "noise")


def _data(compose_config, name: str):
    return compose_config("validate", ["runid=x", f"data=transfer_{name}"]).data


def _config(compose_config, name: str, index: int = 0) -> SynthConfig:
    data = _data(compose_config, name)
    fields = OmegaConf.to_container(data.synth, resolve=True)
    return SynthConfig(**fields, seed=recording_seed(data.data_seed, "val", index))


def _flows(config: SynthConfig):
    """The recording's scene and its dt1 GT flow (exact, from the scene, as the generator writes it)."""
    scene = sample_scene(config, np.random.default_rng(config.seed))
    gt_us = np.arange(config.num_gt_intervals + 1, dtype=np.int64) * config.gt_interval_us
    _, top_layer = render(scene, gt_us / 1e6)
    return scene, ground_truth_flow(scene, gt_us, top_layer, 1), top_layer


def _centred_grid(config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0 : config.height, 0 : config.width].astype(np.float64)
    return x - (config.width - 1) / 2, y - (config.height - 1) / 2


@pytest.mark.parametrize("index", [0, 1])
def test_roll_flow_is_a_rotation_about_the_centre_at_every_depth(compose_config, index):
    config = _config(compose_config, "roll", index)
    scene, gt, _ = _flows(config)
    cameras = {layer.motion.camera for layer in scene.layers}
    assert len(cameras) == 1 and all(isinstance(layer.motion, CameraLayerMotion) for layer in scene.layers)
    camera = cameras.pop()
    assert camera.velocity_x.mean == camera.velocity_y.mean == camera.forward_velocity.mean == 0.0
    omega = camera.angular_velocity.mean  # rad/s, constant (no variation)
    assert 120 <= abs(np.rad2deg(omega)) <= 360 and camera.angular_velocity.amplitude == 0
    dx, dy = _centred_grid(config)
    angle = omega * config.gt_interval_us / 1e6
    exact = np.stack(
        [np.cos(angle) * dx - np.sin(angle) * dy - dx, np.sin(angle) * dx + np.cos(angle) * dy - dy]
    )
    np.testing.assert_allclose(gt.flow, np.broadcast_to(exact, gt.flow.shape), atol=1e-4)
    cross = angle * np.stack([-dy, dx])  # omega x (p - c) dt: the rotation to first order
    assert np.abs(exact - cross).max() <= angle**2 / 2 * np.hypot(dx, dy).max() + 1e-9
    radius = np.hypot(dx, dy)
    assert np.linalg.norm(gt.flow[0], axis=0)[radius > 30].min() > 0.9  # > 0.9 px 30 px off the centre


@pytest.mark.parametrize("index", [0, 1])
def test_zoom_flow_is_a_scaling_about_the_centre_with_depth_parallax(compose_config, index):
    config = _config(compose_config, "zoom", index)
    scene, gt, top_layer = _flows(config)
    camera = scene.layers[0].motion.camera
    assert camera.velocity_x.mean == camera.velocity_y.mean == camera.angular_velocity.mean == 0.0
    speed = camera.forward_velocity.mean  # m/s towards the scene (negative: away), constant
    near_m = config.depth_range_m[0]
    assert 2.0 <= abs(speed) / near_m <= 4.0 and camera.forward_velocity.amplitude == 0
    dx, dy = _centred_grid(config)
    rates = set()
    for k in range(len(gt)):
        t0, t1 = gt.t_start_us[k] / 1e6, gt.t_end_us[k] / 1e6
        for index_layer, layer in enumerate(scene.layers):
            seen = top_layer[k] == index_layer
            if not seen.any():
                continue
            depth_m = layer.motion.depth_m
            s = (depth_m - speed * t0) / (depth_m - speed * t1) - 1  # flow = s (p - c), fronto-parallel plane
            np.testing.assert_allclose(gt.flow[k, 0][seen], s * dx[seen], atol=1e-4)
            np.testing.assert_allclose(gt.flow[k, 1][seen], s * dy[seen], atol=1e-4)
            assert s == pytest.approx(speed * (t1 - t0) / (depth_m - speed * t1), rel=1e-9)  # V dt / Z
            rates.add(round(s, 6))
    assert len(rates) >= 2 * len(gt)  # nearer layers zoom faster: more than one rate per interval


@pytest.mark.parametrize(("name", "low_px", "high_px"), [("fast", 8.0, 16.0), ("slow", 0.2, 0.9)])
def test_translation_sets_move_each_layer_uniformly_by_their_range(compose_config, name, low_px, high_px):
    for index in range(2):
        config = _config(compose_config, name, index)
        scene, gt, top_layer = _flows(config)
        for index_layer, layer in enumerate(scene.layers):
            motion = layer.motion
            assert isinstance(motion, ObjectMotion)
            assert motion.angular_velocity.mean == motion.log_scale_rate.mean == 0.0
            assert motion.log_scale_rate.amplitude == motion.velocity_x.amplitude == 0.0
            expected = (
                np.array([motion.velocity_x.mean, motion.velocity_y.mean]) * config.gt_interval_us / 1e6
            )
            assert low_px <= np.linalg.norm(expected) <= high_px
            seen = top_layer[:-1] == index_layer
            for channel in range(2):
                np.testing.assert_allclose(gt.flow[:, channel][seen], expected[channel], atol=1e-4)


def test_natural_textures_have_natural_image_statistics(compose_config):
    config = _config(compose_config, "natural")
    texture = natural_background_texture(128, config.intensity_range, np.random.default_rng(config.seed))
    log_intensity = np.log(texture.channels[..., 0].astype(np.float64))
    assert np.exp(log_intensity.max() - log_intensity.min()) > 50  # wide contrast range (range 100:1)
    amplitude = np.abs(np.fft.fft2(log_intensity - log_intensity.mean()))
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128)))
    band = (frequency > 2 / 128) & (frequency < 0.4)
    slope = np.polyfit(np.log(frequency[band]), np.log(amplitude[band]), 1)[0]
    assert -1.5 < slope < -0.8, slope  # about 1/f
    steps = np.abs(np.diff(log_intensity, axis=1))
    assert np.percentile(steps, 99.5) > 1.0 and np.median(steps) < 0.3  # sharp edges in smooth regions
    scene = sample_scene(config, np.random.default_rng(config.seed))
    background = scene.layers[0].texture.channels[..., 0]
    assert background.max() / background.min() > 50


def test_sensor_sets_see_the_world_sets_scenes_with_their_event_rates(compose_config):
    """low_rate, high_rate and noise change only the sensor: the same scenes (same seeds) as world, so the
    same GT, and the event counts move as their thresholds and noise say."""
    short = {"duration_us": 100_000}
    world = replace(_config(compose_config, "world"), **short)
    counts = {"world": len(generate_recording(world).events)}
    for name in ("low_rate", "high_rate", "noise"):
        config = replace(_config(compose_config, name), **short)
        assert config.seed == world.seed
        ours, theirs = (sample_scene(c, np.random.default_rng(c.seed)) for c in (config, world))
        assert [layer.motion for layer in ours.layers] == [layer.motion for layer in theirs.layers]
        assert all(
            np.array_equal(a.texture.channels, b.texture.channels)
            for a, b in zip(ours.layers, theirs.layers, strict=True)
        )
        counts[name] = len(generate_recording(config).events)
    assert counts["low_rate"] < counts["world"] / 2 and counts["high_rate"] > 1.5 * counts["world"]
    noise = 10.0 * world.height * world.width * 0.1 + 20 * 1000.0 * 0.1  # background + hot pixels
    assert counts["noise"] - counts["world"] == pytest.approx(noise, rel=0.25)


def test_transfer_sets_are_held_apart_from_training(compose_config):
    training = compose_config("train", tiny=False).data
    train_seeds = {recording_seed(training.data_seed, "train", i) for i in range(training.num_train)}
    keys = set()
    for name in SETS:
        data = _data(compose_config, name)
        assert data.num_train == 0 and data.num_val >= 2
        seeds = {recording_seed(data.data_seed, "val", i) for i in range(data.num_val)}
        assert not seeds & train_seeds
        keys.add(dataset_key(_config(compose_config, name), data.data_seed))
    assert len(keys) == len(SETS)  # each set is a dataset of its own
