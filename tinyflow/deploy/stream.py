"""Stream a recording through an exported ONNX step graph: window, encode, step with the state carried.

The model's ``manifest.json`` (beside it) says how a window is cut and encoded; the recording is read by
tinyflow's readers (any layout :func:`tinyflow.io.open_recording` knows), cut by the functions of
:mod:`tinyflow.events.windows` and encoded by :func:`tinyflow.events.encodings.encode`. The manifest's hot-pixel
filter is not applied: it needs the rate of every pixel over the whole recording before the first window.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tinyflow.events.windows import Window, windows_by_count, windows_by_duration, windows_from_gt
from tinyflow.export.manifest import MANIFEST_NAME
from tinyflow.export.runtime import OnnxStep
from tinyflow.io import open_recording
from tinyflow.io.encoded import encoded_windows
from tinyflow.io.recording import Recording

ONNX_FORMATS = ("onnx", "onnx_int8")
FLOW_GROUP = "flow/predicted"


class DeployError(ValueError):
    """A model, manifest, recording or option the stream runner cannot use; the message names it."""


@dataclass(frozen=True)
class StreamSpec:
    """How the stream is cut and encoded (from the manifest, the window length possibly overridden)."""

    encoding: str
    num_bins: int
    sensor_size: tuple[int, int]
    windowing: dict[str, Any]

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any], path: Path) -> StreamSpec:
        if manifest.get("format") not in ONNX_FORMATS:
            raise DeployError(
                f"{path}: format {manifest.get('format')!r}: the stream runner runs {' and '.join(ONNX_FORMATS)} "
                f"exports (ONNX Runtime)"
            )
        if manifest.get("prediction", "flow") != "flow":
            raise DeployError(
                f"{path}: a {manifest.get('prediction')!r} model: the stream runner runs flow models (one camera, "
                f"flow out); run this export with ONNX Runtime as its manifest describes (inputs, state, readout)"
            )
        try:
            window = manifest["window"]
            return cls(
                window["encoding"], int(window["num_bins"]), tuple(window["sensor_size"]), window["windowing"]
            )
        except (KeyError, TypeError) as error:
            raise DeployError(
                f"{path}: no window encoding ({error}): expected window.encoding, num_bins, "
                f"sensor_size and windowing, as export.py writes them"
            ) from None

    def windows(self, recording: Recording) -> list[Window]:
        mode = self.windowing.get("mode")
        if mode == "duration":
            return windows_by_duration(recording, int(self.windowing["duration_us"]))
        if mode == "count":
            return windows_by_count(recording, int(self.windowing["events_per_window"]))
        if mode == "gt":
            name = self.windowing["flow_name"]
            if name not in recording.flow_names:
                raise DeployError(
                    f"{recording.path}: the model's windows follow GT flow '{name}', which this recording lacks; "
                    f"pass --duration-us or --events-per-window"
                )
            return windows_from_gt(recording, name)
        raise DeployError(f"windowing mode {mode!r}: expected duration, count or gt")


def read_manifest(model: Path) -> dict[str, Any]:
    """The ``manifest.json`` beside ``model``."""
    path = model.parent / MANIFEST_NAME
    if not model.is_file():
        raise FileNotFoundError(f"{model}: no such model file")
    if not path.is_file():
        raise DeployError(f"{model}: no {MANIFEST_NAME} beside it (export.py writes one with every model)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DeployError(f"{path}: not JSON ({error})") from None


@dataclass(frozen=True)
class StreamStats:
    """What a stream took: windows, their events and the recording time they cover, wall time in total and
    in ONNX Runtime."""

    windows: int
    events: int
    span_s: float
    wall_s: float
    inference_s: float

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.wall_s

    @property
    def real_time_factor(self) -> float:
        """Recording time over processing time: above 1 the runner keeps up with the camera."""
        return self.span_s / self.wall_s

    @property
    def event_rate_mev_s(self) -> float:
        return self.events / self.span_s / 1e6 if self.span_s > 0 else float("nan")

    def lines(self) -> list[str]:
        return [
            f"windows: {self.windows} ({self.span_s:.3f} s of recording, {self.events} events, "
            f"{self.event_rate_mev_s:.3f} Mev/s)",
            f"windows/s: {self.windows_per_s:.1f} (reading, encoding and inference; inference alone "
            f"{1e3 * self.inference_s / self.windows:.2f} ms / window)",
            f"real-time factor: {self.real_time_factor:.2f} (recording time / processing time)",
        ]


class FlowWriter:
    """Predicted flow written to ``<path>`` (HDF5) as it comes, appearing at ``path`` only when complete.

    Layout: ``/flow/predicted/flow`` float32 [K, 2, H, W] ((x, y) displacement in pixels over each window,
    as the canonical GT flow), ``t_start_us`` / ``t_end_us`` int64 [K]; root attributes ``model`` and
    ``recording``.
    """

    def __init__(
        self, path: Path, sensor_size: tuple[int, int], model: Path, recording: Path, overwrite: bool
    ):
        if path.exists() and not overwrite:
            raise DeployError(f"{path}: exists; pass --overwrite to replace it")
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.file = h5py.File(self.temporary, "w")
        self.file.attrs.update({"model": str(model), "recording": str(recording)})
        group = self.file.create_group(FLOW_GROUP)
        self.flow = group.create_dataset(
            "flow",
            (0, 2, *sensor_size),
            np.float32,
            maxshape=(None, 2, *sensor_size),
            chunks=(1, 2, *sensor_size),
        )
        self.t_start = group.create_dataset("t_start_us", (0,), np.int64, maxshape=(None,))
        self.t_end = group.create_dataset("t_end_us", (0,), np.int64, maxshape=(None,))

    def append(self, flow: np.ndarray, window: Window) -> None:
        k = len(self.t_start)
        for dataset in (self.flow, self.t_start, self.t_end):
            dataset.resize(k + 1, axis=0)
        self.flow[k] = flow
        self.t_start[k], self.t_end[k] = window.t_start_us, window.t_end_us

    def close(self, complete: bool) -> None:
        self.file.close()
        if complete:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)


def _override_windowing(
    windowing: dict[str, Any], duration_us: int | None, events: int | None
) -> dict[str, Any]:
    if duration_us is not None and events is not None:
        raise DeployError("--duration-us and --events-per-window: give one")
    if duration_us is not None:
        return {"mode": "duration", "duration_us": duration_us}
    if events is not None:
        return {"mode": "count", "events_per_window": events}
    return windowing


def stream(
    model: str | Path,
    recording: str | Path,
    *,
    output: str | Path | None = None,
    overwrite: bool = False,
    threads: int = 1,
    max_windows: int | None = None,
    duration_us: int | None = None,
    events_per_window: int | None = None,
    on_flow: Callable[[np.ndarray, Window], None] | None = None,
) -> StreamStats:
    """Run ``model`` over ``recording`` window by window; write the flow to ``output`` (HDF5) if given.

    Args:
        threads: ONNX Runtime's intra-op threads.
        max_windows: stop after this many windows.
        duration_us, events_per_window: cut windows of this length instead of the manifest's windowing (the
            network saw windows of the manifest's length in training).
        on_flow: called with each window's flow [2, H, W] and the window.
    """
    model, recording = Path(model), Path(recording)
    spec = StreamSpec.from_manifest(read_manifest(model), model)
    spec = StreamSpec(
        spec.encoding,
        spec.num_bins,
        spec.sensor_size,
        _override_windowing(spec.windowing, duration_us, events_per_window),
    )
    source = open_recording(recording)
    if tuple(source.sensor_size) != spec.sensor_size:
        raise DeployError(
            f"{recording}: sensor {source.sensor_size[0]}x{source.sensor_size[1]} (height x width); {model.name} "
            f"takes {spec.sensor_size[0]}x{spec.sensor_size[1]}: export it with data of this sensor size"
        )
    step = OnnxStep(model, threads)
    windows = spec.windows(source)[:max_windows]
    if not windows:
        raise DeployError(f"{recording}: no window of {spec.windowing} in {source.num_events} events")
    writer = FlowWriter(Path(output), spec.sensor_size, model, recording, overwrite) if output else None
    complete, events, inference = False, 0, 0.0
    start = time.perf_counter()
    try:
        for window, x in _encoded(source, windows, spec):
            begin = time.perf_counter()
            flow = step(x)[0]
            inference += time.perf_counter() - begin
            events += window.num_events
            if writer is not None:
                writer.append(flow, window)
            if on_flow is not None:
                on_flow(flow, window)
        complete = True
    finally:
        if writer is not None:
            writer.close(complete)
    wall = time.perf_counter() - start
    span = (windows[-1].t_end_us - windows[0].t_start_us) / 1e6
    return StreamStats(len(windows), events, span, wall, inference)


def _encoded(
    recording: Recording, windows: list[Window], spec: StreamSpec
) -> Iterator[tuple[Window, np.ndarray]]:
    for window, x in encoded_windows(recording, windows, spec.encoding, spec.num_bins):
        yield window, x[None]


__all__ = ["DeployError", "FlowWriter", "StreamSpec", "StreamStats", "read_manifest", "stream"]
