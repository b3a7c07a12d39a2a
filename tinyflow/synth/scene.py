"""Scenes of textured layers and their random sampling from a :class:`SynthConfig`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from tinyflow.synth.config import SynthConfig
from tinyflow.synth.motion import CameraLayerMotion, CameraMotion, LayerMotion, ObjectMotion, SmoothRate
from tinyflow.synth.textures import SHAPE_KINDS, TEXTURES, LayerTexture


@dataclass(frozen=True)
class Layer:
    """A texture carried by a motion; ``motion.pose(t)`` maps layer points to image points."""

    texture: LayerTexture
    motion: LayerMotion


@dataclass(frozen=True)
class Scene:
    """Layers drawn back to front over a ``(height, width)`` sensor.

    The first layer is the background: periodic and opaque, so it covers every pixel at every time.
    """

    layers: tuple[Layer, ...]
    sensor_size: tuple[int, int]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("Scene.layers: expected at least a background layer, got none")
        background = self.layers[0].texture
        if not (background.periodic and background.opaque):
            raise ValueError("Scene.layers[0]: the background texture must be periodic and opaque")

    @cached_property
    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x, y) = (column, row), float64 [H, W] each (read-only)."""
        height, width = self.sensor_size
        y, x = np.mgrid[0:height, 0:width].astype(np.float64)
        x.flags.writeable = False
        y.flags.writeable = False
        return x, y


def sample_scene(config: SynthConfig, rng: np.random.Generator) -> Scene:
    """Draw a random scene: a background and ``config.num_foreground_layers`` shapes, farthest first.

    Objects mode: every layer moves on its own; each foreground centre is placed so that it lies
    inside the frame at mid-recording. Camera mode: static layers seen by one moving camera; each
    foreground shape is placed so that its centre is seen inside the frame at mid-recording.
    Mixed mode draws one of the two first.
    """
    height, width = config.sensor_size
    near_m, far_m = config.depth_range_m
    depths = np.sort(rng.uniform(near_m, far_m, size=config.num_foreground_layers))[::-1]
    background = TEXTURES[config.texture].background(2 * max(height, width), config.intensity_range, rng)
    t_mid_s = np.array([config.duration_us / 2e6])
    radius_scale = min(height, width)
    mode = config.camera_mode
    if mode == "mixed":
        mode = "camera" if rng.uniform() < 0.5 else "objects"
    if mode == "camera":
        camera = _sample_camera(config, rng)
        layers = [Layer(background, CameraLayerMotion(camera, far_m))]
        for depth in depths:
            motion = CameraLayerMotion(camera, float(depth))
            qx, qy = motion.pose(t_mid_s).invert(*_random_point(config, rng))
            centre = (float(qx[0]), float(qy[0]))
            layers.append(Layer(_random_object(config, radius_scale, rng, centre), motion))
        return Scene(tuple(layers), config.sensor_size)
    layers = [
        Layer(background, _sample_object_motion(config, ((width - 1) / 2, (height - 1) / 2), far_m, rng))
    ]
    for depth in depths:
        texture = _random_object(config, radius_scale, rng)
        motion = _sample_object_motion(config, (0.0, 0.0), float(depth), rng)
        mid_x, mid_y = _random_point(config, rng)
        drift = motion.pose(t_mid_s).offset[0]
        layers.append(Layer(texture, replace(motion, centre_xy=(mid_x - drift[0], mid_y - drift[1]))))
    return Scene(tuple(layers), config.sensor_size)


def _random_point(config: SynthConfig, rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.uniform(0, config.width - 1)), float(rng.uniform(0, config.height - 1))


def _random_object(
    config: SynthConfig,
    radius_scale: float,
    rng: np.random.Generator,
    centre_xy: tuple[float, float] = (0.0, 0.0),
) -> LayerTexture:
    kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
    radius = rng.uniform(0.15, 0.35) * radius_scale
    return TEXTURES[config.texture].object(kind, radius, config.intensity_range, rng, centre_xy)


def _varying(mean: float, amplitude: float, config: SynthConfig, rng: np.random.Generator) -> SmoothRate:
    period = rng.uniform(*config.velocity_period_range_s)
    return SmoothRate(mean, amplitude, period, rng.uniform(0, 2 * np.pi))


def _translation(config: SynthConfig, rng: np.random.Generator) -> tuple[SmoothRate, SmoothRate]:
    speed = rng.uniform(*config.speed_range_px_s)
    direction = rng.uniform(0, 2 * np.pi)
    amplitude = config.velocity_variation * speed
    return (
        _varying(speed * np.cos(direction), amplitude, config, rng),
        _varying(speed * np.sin(direction), amplitude, config, rng),
    )


def _signed(low: float, high: float, rng: np.random.Generator) -> float:
    """Uniform in ``[-high, high]`` for ``low == 0`` (one draw); else a random sign times a magnitude
    uniform in ``[low, high]``."""
    if low == 0:
        return float(rng.uniform(-high, high))
    return float(rng.choice((-1.0, 1.0)) * rng.uniform(low, high))


def _rotation(config: SynthConfig, rng: np.random.Generator) -> SmoothRate:
    omega = np.deg2rad(_signed(config.rotation_min_deg_s, config.rotation_max_deg_s, rng))
    return _varying(omega, config.velocity_variation * abs(omega), config, rng)


def _zoom_rate(
    amplitude_max: float, mean_scale: float, config: SynthConfig, rng: np.random.Generator
) -> SmoothRate:
    """A log-scale (or forward) rate: a sinusoid of amplitude up to ``amplitude_max`` about a mean of
    ``mean_scale`` times ``config.forward_rate_range_per_s`` (drawn only when that range is not (0, 0))."""
    rate = _varying(0.0, rng.uniform(-amplitude_max, amplitude_max), config, rng)
    low, high = config.forward_rate_range_per_s
    if high == 0:
        return rate
    return replace(rate, mean=mean_scale * _signed(low, high, rng))


def _sample_object_motion(
    config: SynthConfig, centre_xy: tuple[float, float], depth_m: float, rng: np.random.Generator
) -> ObjectMotion:
    vx, vy = _translation(config, rng)
    omega = _rotation(config, rng)
    scale_rate = _zoom_rate(config.scale_rate_max_per_s, 1.0, config, rng)
    return ObjectMotion(centre_xy, vx, vy, omega, scale_rate, depth_m)


def _sample_camera(config: SynthConfig, rng: np.random.Generator) -> CameraMotion:
    near_m, far_m = config.depth_range_m
    vx, vy = _translation(config, rng)
    omega = _rotation(config, rng)
    forward = _zoom_rate(config.scale_rate_max_per_s * near_m, near_m, config, rng)
    centre = ((config.width - 1) / 2, (config.height - 1) / 2)
    return CameraMotion(vx, vy, omega, forward, far_m, centre)
