"""Browse a dataset in Rerun without a model: events (both cameras of a stereo pair), frames, ground-truth
flow, depth and disparity over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rerun as rr

from tinyflow.data.dataset import Windowing
from tinyflow.events.core import Events
from tinyflow.events.encodings import event_list
from tinyflow.events.windows import Window
from tinyflow.io import open_recording
from tinyflow.io.recording import RIGHT, Recording
from tinyflow.viz.entities import log_colour_wheel, log_depth, log_events, log_flow, log_frame, log_scalar_map
from tinyflow.viz.images import event_counts

TIMELINE = "time"  # seconds since the recording's t0


def log_recording(
    stream: rr.RecordingStream,
    recording: Recording,
    windowing: Windowing,
    max_windows: int | None = None,
    arrow_stride: int = 8,
) -> int:
    """Log a recording's windows (as the data config cuts them) and its frames, depth and disparity maps in
    the same time span, under ``<recording name>/`` (see :mod:`tinyflow.viz.blueprint`); the right camera
    of a stereo recording under ``<recording name>/right/events``.

    GT flow is shown for windows that coincide with a GT map (``gt`` windowing), in pixels over the
    window. Returns the number of windows logged.
    """
    name = recording.name
    windows = windowing.windows(recording)[:max_windows]
    flow_name = windowing.flow_name if windowing.flow_name in recording.flow_names else None
    right = recording.camera(RIGHT) if RIGHT in recording.cameras else None
    for window in windows:
        stream.set_time(TIMELINE, duration=window.t_start_us * 1e-6)
        events = recording.events(window.start, window.stop)
        _log_window_events(stream, f"{name}/events", events, window, recording.sensor_size)
        if right is not None:
            start, stop = right.index_at_time(np.array([window.t_start_us, window.t_end_us]))
            _log_window_events(
                stream, f"{name}/right/events", right.events(int(start), int(stop)), window, right.sensor_size
            )
        rate_mev_s = len(events) / max(window.duration_us, 1)  # events per µs
        stream.log(f"{name}/event_rate", rr.Scalars(rate_mev_s))
        if flow_name is not None and window.gt_index >= 0:
            flow, valid = recording.flow_map(flow_name, window.gt_index)
            log_flow(stream, f"{name}/flow_gt", flow, arrow_stride, valid)
    if windows:
        _log_maps(stream, recording, windows[0].t_start_us, windows[-1].t_end_us)
    return len(windows)


def _log_window_events(
    stream: rr.RecordingStream, path: str, events: Events, window: Window, sensor_size: tuple[int, int]
) -> None:
    listed = event_list(events, window.t_start_us, max(window.t_end_us, window.t_start_us + 1))
    log_events(stream, path, event_counts(listed, np.ones(len(listed), bool), sensor_size))


def _log_maps(stream: rr.RecordingStream, recording: Recording, t_start_us: int, t_end_us: int) -> None:
    """Frames, depth and disparity maps with timestamps in ``[t_start_us, t_end_us]``."""
    disparity = recording.disparity()
    if disparity is not None:
        for k in np.flatnonzero((disparity.t_us >= t_start_us) & (disparity.t_us <= t_end_us)):
            stream.set_time(TIMELINE, duration=int(disparity.t_us[k]) * 1e-6)
            maps = np.asarray(disparity.disparity[k])
            log_scalar_map(stream, f"{recording.name}/disparity", maps, np.isfinite(maps))
    frames, depth = recording.frames(), recording.depth()
    if frames is not None:
        for k in np.flatnonzero((frames.t_us >= t_start_us) & (frames.t_us <= t_end_us)):
            stream.set_time(TIMELINE, duration=int(frames.t_us[k]) * 1e-6)
            log_frame(stream, f"{recording.name}/frames", frames.images[k])
    if depth is not None:
        for k in np.flatnonzero((depth.t_us >= t_start_us) & (depth.t_us <= t_end_us)):
            stream.set_time(TIMELINE, duration=int(depth.t_us[k]) * 1e-6)
            log_depth(stream, f"{recording.name}/depth", depth.depth[k])


def as_recordings(sources: Sequence[Path | Recording]) -> list[Recording]:
    """Recordings of a DataModule's paths or open recordings, each once (by name), in order."""
    recordings: dict[str, Recording] = {}
    for source in sources:
        recording = source if isinstance(source, Recording) else open_recording(source)
        recordings.setdefault(recording.name, recording)
    return list(recordings.values())


def show_recordings(
    stream: rr.RecordingStream,
    recordings: Sequence[Recording],
    windowing: Windowing,
    max_windows: int | None = None,
    arrow_stride: int = 8,
) -> dict[str, int]:
    """Log every recording; returns the windows logged per recording."""
    log_colour_wheel(stream)
    return {r.name: log_recording(stream, r, windowing, max_windows, arrow_stride) for r in recordings}
