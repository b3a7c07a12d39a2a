"""One synthetic recording: events from the ESIM model plus exact ground truth; optionally a stereo pair."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from tinyflow.events.core import Events
from tinyflow.events.groundtruth import DepthGT, DisparityGT, FlowGT, Frames
from tinyflow.synth.config import StereoConfig, SynthConfig
from tinyflow.synth.esim import ContrastThresholds, threshold_crossing_events
from tinyflow.synth.groundtruth import (
    ground_truth_depth,
    ground_truth_disparity,
    ground_truth_flow,
    intensity_frames,
    right_camera_scene,
)
from tinyflow.synth.noise import background_activity_events, hot_pixel_events
from tinyflow.synth.refractory import apply_refractory
from tinyflow.synth.render import render
from tinyflow.synth.scene import Scene, sample_scene
from tinyflow.synth.stepping import render_times_us

FLOW_SPANS: dict[str, int] = {"dt1": 1, "dt4": 4}
_RENDER_CHUNK = 2


@dataclass(frozen=True)
class SyntheticRecording:
    """A generated recording with its ground truth.

    Attributes:
        events: sorted by time, t_us in [0, duration_us] (the left camera of a stereo pair).
        flows: ``dt1`` (one GT interval) and ``dt4`` (four GT intervals) flow sets.
        depth: metres of the visible layer at each GT time.
        frames: uint8 intensity at each GT time.
        sensor_size: (height, width).
        render_times_us: float64 render times used by the event model.
        right_events: the right camera's events (same time base), or None without a stereo camera.
        disparity: the left camera's disparity at each GT time (pixels, NaN = occluded), or None.
        stereo: the stereo camera, or None.
    """

    events: Events
    flows: dict[str, FlowGT]
    depth: DepthGT
    frames: Frames
    sensor_size: tuple[int, int]
    render_times_us: np.ndarray
    right_events: Events | None = None
    disparity: DisparityGT | None = None
    stereo: StereoConfig | None = None


def generate_recording(
    config: SynthConfig, scene: Scene | None = None, stereo: StereoConfig | None = None
) -> SyntheticRecording:
    """Generate events and ground truth, deterministically from ``config.seed``.

    Args:
        config: all parameters; ``config.seed`` seeds one numpy Generator drawing the scene (unless
            given), the thresholds, the initial reference levels and the noise, in that order; then the
            right camera's sensor, in the same order. The left camera of a stereo recording is thus the
            mono recording of the same config.
        scene: a ready scene (e.g. with analytic motion); drawn from ``config`` when None.
        stereo: a second camera to the right (:class:`~tinyflow.synth.config.StereoConfig`), or None.
    """
    rng = np.random.default_rng(config.seed)
    if scene is None:
        scene = sample_scene(config, rng)
    elif scene.sensor_size != config.sensor_size:
        raise ValueError(
            f"scene.sensor_size={scene.sensor_size} differs from config.sensor_size={config.sensor_size}"
        )
    events, times_us = camera_events(scene, config, rng)
    gt_us = np.arange(config.num_gt_intervals + 1, dtype=np.int64) * config.gt_interval_us
    intensity, top_layer = render(scene, gt_us / 1e6)
    flows = {name: ground_truth_flow(scene, gt_us, top_layer, span) for name, span in FLOW_SPANS.items()}
    recording = SyntheticRecording(
        events=events,
        flows=flows,
        depth=ground_truth_depth(scene, gt_us, top_layer),
        frames=intensity_frames(intensity, gt_us),
        sensor_size=config.sensor_size,
        render_times_us=times_us,
    )
    if stereo is None:
        return recording
    right = right_camera_scene(scene, stereo.focal_baseline_px_m)
    disparity = ground_truth_disparity(scene, right, gt_us, top_layer, stereo.focal_baseline_px_m)
    right_events, _ = camera_events(right, stereo.right_config(config), rng)
    return replace(recording, right_events=right_events, disparity=disparity, stereo=stereo)


def camera_events(scene: Scene, config: SynthConfig, rng: np.random.Generator) -> tuple[Events, np.ndarray]:
    """One camera's events of ``scene`` (ESIM crossings, noise, hot pixels, refractory period) and its
    render times (float64 µs); the sensor (thresholds, reference levels, noise) is drawn from ``rng``."""
    times_us = render_times_us(
        scene, config.duration_us, config.max_step_displacement_px, config.max_render_step_us
    )
    thresholds = ContrastThresholds.sample(
        config.sensor_size,
        config.contrast_threshold_mean,
        config.contrast_threshold_std,
        config.contrast_threshold_min,
        rng,
    )
    frames = _log_frames(scene, times_us)
    first = next(frames)
    reference = thresholds.initial_reference(first[1], rng)
    signal = threshold_crossing_events(itertools.chain([first], frames), thresholds, reference)
    noise = Events.concatenate(
        [
            background_activity_events(config.sensor_size, config.duration_us, config.noise_rate_hz, rng),
            hot_pixel_events(
                config.sensor_size, config.duration_us, config.num_hot_pixels, config.hot_pixel_rate_hz, rng
            ),
        ]
    )
    merged = Events.concatenate([signal, noise])
    events = apply_refractory(
        merged[np.argsort(merged.t_us, kind="stable")], config.width, config.refractory_us
    )
    return events, times_us


def _log_frames(scene: Scene, times_us: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
    """(t_us, log intensity [H, W]) at every render time, rendered in chunks."""
    for begin in range(0, len(times_us), _RENDER_CHUNK):
        chunk = times_us[begin : begin + _RENDER_CHUNK]
        intensity, _ = render(scene, chunk / 1e6)
        yield from zip(chunk.tolist(), np.log(intensity), strict=True)
