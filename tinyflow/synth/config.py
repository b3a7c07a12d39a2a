"""Parameters of the synthetic event camera, and of its optional second (stereo) camera."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

CameraMode = Literal["objects", "camera", "mixed"]
CAMERA_MODES: tuple[str, ...] = ("objects", "camera", "mixed")
TextureKind = Literal["value_noise", "natural"]
TEXTURE_KINDS: tuple[str, ...] = ("value_noise", "natural")


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines one synthetic recording (the same config gives the same arrays).

    Scene:
        height, width: sensor size in pixels.
        duration_us: recording length, a multiple of ``gt_interval_us`` holding at least 4 intervals.
        gt_interval_us: spacing of the ground-truth times ``t_k = k * gt_interval_us``.
        camera_mode: ``"objects"`` (every layer, background included, moves on its own),
            ``"camera"`` (static layers at different depths seen by a moving camera) or ``"mixed"``
            (either, with probability 1/2 each, drawn from the seed).
        num_foreground_layers: textured shapes drawn over the full-frame background.
        depth_range_m: (nearest, farthest) layer depth in metres; the background sits at the farthest.
        intensity_range: (darkest, brightest) linear intensity of the textures, in (0, 1].
        texture: ``"value_noise"`` (smooth multi-scale noise with a few sharp shapes) or ``"natural"``
            (natural-image statistics: a dead-leaves tile of occluding shapes filled with 1/f noise,
            log-intensity spread over ``intensity_range``; see :mod:`tinyflow.synth.textures`).
    Motion (each velocity is a mean plus a sinusoid, see :class:`tinyflow.synth.motion.SmoothRate`):
        speed_range_px_s: mean translation speed in px/s (camera mode: of the background; a layer at
            depth Z moves ``far / Z`` times as fast).
        rotation_max_deg_s: largest mean angular velocity (degrees/s) about the layer centre
            (camera mode: image rotation about the image centre).
        rotation_min_deg_s: least magnitude of the mean angular velocity (degrees/s); 0 draws the mean
            uniformly in ``[-max, max]``, above 0 a random sign times a magnitude in ``[min, max]``.
        scale_rate_max_per_s: largest amplitude of the zero-mean log-scale rate (1/s) (camera mode:
            of the forward speed divided by the nearest depth).
        forward_rate_range_per_s: (least, largest) magnitude of the mean forward rate (1/s), a random
            sign (+: towards the scene): camera mode: the mean forward speed divided by the nearest depth
            (the nearest layer's initial log-scale rate; a layer at depth Z zooms ``near / Z`` as fast:
            depth parallax); objects mode: each layer's mean log-scale rate. (0, 0) = none.
        velocity_variation: amplitude of the velocity sinusoid relative to the mean (0 = constant).
        velocity_period_range_s: range of the sinusoid periods in seconds.
    Sensor:
        contrast_threshold_mean, contrast_threshold_std: per-pixel log-intensity thresholds, drawn
            independently for ON and OFF, clipped below at ``contrast_threshold_min``.
        refractory_us: least time between two events of one pixel.
        noise_rate_hz: background-activity events per pixel per second (Poisson).
        num_hot_pixels, hot_pixel_rate_hz: pixels that fire at a high Poisson rate.
    Rendering:
        max_step_displacement_px: largest motion of any pixel between two render steps.
        max_render_step_us: longest render step, also the probe interval of the speed check.
    seed: seed of the numpy Generator that draws the scene and the sensor.
    """

    height: int = 128
    width: int = 128
    duration_us: int = 2_000_000
    gt_interval_us: int = 20_000
    camera_mode: CameraMode = "mixed"
    num_foreground_layers: int = 3
    depth_range_m: tuple[float, float] = (4.0, 10.0)
    intensity_range: tuple[float, float] = (0.05, 1.0)
    texture: TextureKind = "value_noise"
    speed_range_px_s: tuple[float, float] = (50.0, 200.0)
    rotation_max_deg_s: float = 30.0
    rotation_min_deg_s: float = 0.0
    scale_rate_max_per_s: float = 0.2
    forward_rate_range_per_s: tuple[float, float] = (0.0, 0.0)
    velocity_variation: float = 0.5
    velocity_period_range_s: tuple[float, float] = (0.5, 2.0)
    contrast_threshold_mean: float = 0.2
    contrast_threshold_std: float = 0.03
    contrast_threshold_min: float = 0.05
    refractory_us: int = 100
    noise_rate_hz: float = 0.2
    num_hot_pixels: int = 3
    hot_pixel_rate_hz: float = 500.0
    max_step_displacement_px: float = 0.5
    max_render_step_us: int = 2_000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in _RANGE_FIELDS:  # accept any 2-sequence (e.g. a Hydra ListConfig); store a float tuple
            value = getattr(self, name)
            _check(len(value) == 2, name, value, "a (low, high) pair")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        _check(self.height >= 8 and self.width >= 8, "height/width", (self.height, self.width), ">= 8")
        _check(self.gt_interval_us > 0, "gt_interval_us", self.gt_interval_us, "> 0")
        _check(
            self.duration_us % self.gt_interval_us == 0 and self.duration_us >= 4 * self.gt_interval_us,
            "duration_us",
            self.duration_us,
            f"a multiple of gt_interval_us={self.gt_interval_us} holding at least 4 intervals",
        )
        _check(self.camera_mode in CAMERA_MODES, "camera_mode", self.camera_mode, f"one of {CAMERA_MODES}")
        _check(self.texture in TEXTURE_KINDS, "texture", self.texture, f"one of {TEXTURE_KINDS}")
        _check(self.num_foreground_layers >= 0, "num_foreground_layers", self.num_foreground_layers, ">= 0")
        _check_range("depth_range_m", self.depth_range_m, low=0.0, strict=True)
        _check_range("intensity_range", self.intensity_range, low=0.0, strict=True)
        _check(self.intensity_range[1] <= 1.0, "intensity_range", self.intensity_range, "values in (0, 1]")
        _check_range("speed_range_px_s", self.speed_range_px_s, low=0.0)
        _check_range("velocity_period_range_s", self.velocity_period_range_s, low=0.0, strict=True)
        _check_range("forward_rate_range_per_s", self.forward_rate_range_per_s, low=0.0)
        _check(
            self.forward_rate_range_per_s[1] * self.duration_us / 1e6 < 1,
            "forward_rate_range_per_s",
            self.forward_rate_range_per_s,
            f"a largest rate below 1 / duration = {1e6 / self.duration_us:g}/s (the camera would reach the "
            "nearest layer within the recording)",
        )
        for name in (
            "rotation_max_deg_s",
            "rotation_min_deg_s",
            "scale_rate_max_per_s",
            "velocity_variation",
            "noise_rate_hz",
            "hot_pixel_rate_hz",
            "contrast_threshold_std",
        ):
            _check(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")
        _check(
            self.rotation_min_deg_s <= self.rotation_max_deg_s,
            "rotation_min_deg_s",
            self.rotation_min_deg_s,
            f"<= rotation_max_deg_s={self.rotation_max_deg_s}",
        )
        _check(self.contrast_threshold_min > 0, "contrast_threshold_min", self.contrast_threshold_min, "> 0")
        _check(
            self.contrast_threshold_mean >= self.contrast_threshold_min,
            "contrast_threshold_mean",
            self.contrast_threshold_mean,
            f">= contrast_threshold_min={self.contrast_threshold_min}",
        )
        _check(self.refractory_us >= 0, "refractory_us", self.refractory_us, ">= 0")
        _check(
            0 <= self.num_hot_pixels <= self.height * self.width,
            "num_hot_pixels",
            self.num_hot_pixels,
            "between 0 and the number of pixels",
        )
        _check(
            self.max_step_displacement_px > 0,
            "max_step_displacement_px",
            self.max_step_displacement_px,
            "> 0",
        )
        _check(self.max_render_step_us > 0, "max_render_step_us", self.max_render_step_us, "> 0")

    @property
    def sensor_size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (self.height, self.width)

    @property
    def num_gt_intervals(self) -> int:
        return self.duration_us // self.gt_interval_us


_RANGE_FIELDS = (
    "depth_range_m",
    "intensity_range",
    "speed_range_px_s",
    "velocity_period_range_s",
    "forward_rate_range_per_s",
)


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"SynthConfig.{name}={value!r}: expected {expected}")


def _check_range(name: str, value: tuple[float, float], low: float, strict: bool = False) -> None:
    lo, hi = value
    ok = (lo > low if strict else lo >= low) and hi >= lo
    _check(ok, name, value, f"(low, high) with {'>' if strict else '>='} {low} and low <= high")


SENSOR_FIELDS = (
    "contrast_threshold_mean",
    "contrast_threshold_std",
    "contrast_threshold_min",
    "refractory_us",
    "noise_rate_hz",
    "num_hot_pixels",
    "hot_pixel_rate_hz",
)


@dataclass(frozen=True)
class StereoConfig:
    """A second camera: the right camera of a rectified pair, rendering the same scene.

    Its events come from its own ESIM sensor: thresholds, reference levels, noise and hot pixels are
    drawn for it on their own, from the :class:`SynthConfig` sensor fields with ``right_sensor``
    overriding any of them (:data:`SENSOR_FIELDS`).

    Attributes:
        baseline_m: distance between the optical centres, metres (> 0).
        focal_px: focal length of both (rectified) cameras, pixels (> 0); disparity = focal_px * baseline_m / Z.
        right_sensor: sensor fields of the right camera that differ from the left one's.
    """

    baseline_m: float = 0.1
    focal_px: float = 226.0
    right_sensor: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_stereo(self.baseline_m > 0, "baseline_m", self.baseline_m, "> 0 metres")
        _check_stereo(self.focal_px > 0, "focal_px", self.focal_px, "> 0 pixels")
        unknown = sorted(set(self.right_sensor) - set(SENSOR_FIELDS))
        _check_stereo(
            not unknown, "right_sensor", dict(self.right_sensor), f"keys among {list(SENSOR_FIELDS)}"
        )
        object.__setattr__(self, "right_sensor", dict(sorted(self.right_sensor.items())))

    @property
    def focal_baseline_px_m(self) -> float:
        """f b (pixels x metres): the disparity of a point 1 m away."""
        return self.focal_px * self.baseline_m

    def right_config(self, config: SynthConfig) -> SynthConfig:
        """The right camera's sensor: ``config`` with ``right_sensor`` applied (checked as a SynthConfig)."""
        return replace(config, **self.right_sensor)

    def calib(self) -> dict[str, float]:
        """The stereo facts of a recording's ``/calib``."""
        return {"baseline_m": float(self.baseline_m), "focal_px": float(self.focal_px)}


def _check_stereo(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"StereoConfig.{name}={value!r}: expected {expected}")
