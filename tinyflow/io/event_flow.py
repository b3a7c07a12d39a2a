"""Reader for the HDF5 layout of event_flow / event_utils (and HQF), read unchanged.

Layout::

    /events/xs, ys  integer [N]   column, row in pixels
    /events/ts      float [N]     absolute seconds
    /events/ps      bool or {0, 1} or {-1, 1} integers [N]
    /images/<name>  uint8 [H, W], attribute ``timestamp`` (s)
    /flow_dt<N>/<name>  float [2, H, W] or [H, W, 2], attribute ``timestamp`` (s); HQF: /flow/<name> (dt1)
    root attributes: sensor_resolution = (height, width), t0 (s, optional), num_events, ...

Times become integer µs since ``t0`` (the root attribute, else the first event), rounded.
Flow map k of ``flow_dt<N>`` covers the interval that ends at its timestamp and starts N
frames earlier on the frame clock: the sorted image timestamps if the file has images, else
the dt1 maps' timestamps. Maps with no frame N frames earlier are skipped. Flow sets are
named ``dt1``, ``dt4``, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import FlowGT, Frames
from tinyflow.io.checks import EventKeys
from tinyflow.io.h5 import (
    H5Recording,
    check_event_columns,
    check_sensor_size,
    column_reader,
    hdf5_errors,
    open_hdf5,
    polarity_to_uint8,
    require_attr,
)
from tinyflow.io.recording import ms_index_in_chunks, seconds_to_us

_FLOW_GROUP = re.compile(r"flow_dt(\d+)")
EVENT_FLOW_KEYS = EventKeys(
    "events/xs",
    "events/ys",
    "events/ts",
    "events/ps",
    polarities=(-1, 1),
    polarity_words="0/1 or -1/+1 (OFF/ON)",
    t_unit="s",
)


@dataclass(frozen=True)
class _FlowMapRef:
    """Where one GT flow map lives and the interval (µs since t0) it covers."""

    key: str
    channels_last: bool  # stored [H, W, 2] instead of [2, H, W]
    t_start_us: int
    t_end_us: int


class EventFlowRecording(H5Recording):
    """An event_flow / event_utils / HQF HDF5 file read lazily in place.

    Args:
        path: the ``.h5`` file.
        sensor_size: ``(height, width)``; overrides the root attribute ``sensor_resolution``
            and is required when the file lacks it.
    """

    ms_index_chunk = 1_000_000  # events per read while building ms_to_idx

    def __init__(self, path: str | Path, sensor_size: tuple[int, int] | None = None) -> None:
        super().__init__(path)
        src = str(self.path)
        with open_hdf5(self.path) as file, hdf5_errors(self.path):
            self._num_events = check_event_columns(
                file, ["events/xs", "events/ys", "events/ts", "events/ps"], src, time_kinds="f"
            )
            self.sensor_size = self._sensor_size(file, sensor_size)
            first_s = float(file["events/ts"][0])
            self._t0_s = float(file.attrs["t0"]) if "t0" in file.attrs else first_s
            if seconds_to_us(first_s, self._t0_s) < 0:
                raise EventDataError(
                    f"{src}: key 'events/ts' starts at {first_s} s, before the root attribute "
                    f"t0={self._t0_s} s; expected t0 <= every event timestamp"
                )
            self.t0_us = round(self._t0_s * 1e6)
            self._images = self._timed_datasets(file, "images") if "images" in file else []
            self._flows = self._flow_refs(file)
            self._ms_table: np.ndarray | None = self._check_once(lambda: self._check_contents(file))

    @property
    def check_spec(self) -> str:
        return f"{super().check_spec} t0_s={self._t0_s!r}"

    def _check_contents(self, file: h5py.File) -> np.ndarray:
        """The whole-file pass over every event; returns the 'ms_to_idx' it builds on the way."""
        return self._scan(file, EVENT_FLOW_KEYS, column_reader(file, EVENT_FLOW_KEYS, self._to_us))

    def _to_us(self, seconds: np.ndarray) -> np.ndarray:
        return seconds_to_us(seconds, self._t0_s)

    def _sensor_size(self, file: h5py.File, sensor_size: tuple[int, int] | None) -> tuple[int, int]:
        if sensor_size is not None:
            return check_sensor_size(sensor_size, "sensor_size", str(self.path))
        if "sensor_resolution" not in file.attrs:
            raise EventDataError(
                f"{self.path}: root attribute 'sensor_resolution' (height, width) is missing; pass "
                f"sensor_size=(height, width). Attributes found: {sorted(file.attrs)}"
            )
        return check_sensor_size(file.attrs["sensor_resolution"], "sensor_resolution", str(self.path))

    def _timed_datasets(self, file: h5py.File, group_key: str) -> list[tuple[str, int]]:
        """``(key, timestamp µs)`` of every dataset in a group, in name order."""
        group = file[group_key]
        return [
            (
                f"{group_key}/{name}",
                int(seconds_to_us(require_attr(group[name], "timestamp", str(self.path)), self._t0_s)),
            )
            for name in sorted(group)
            if isinstance(group[name], h5py.Dataset)
        ]

    def _flow_refs(self, file: h5py.File) -> dict[str, list[_FlowMapRef]]:
        src = str(self.path)
        groups: dict[str, tuple[str, int]] = {}
        for key, item in file.items():
            match = _FLOW_GROUP.fullmatch(key)
            if not isinstance(item, h5py.Group) or (match is None and key != "flow"):
                continue
            frames_apart = int(match[1]) if match else 1
            name = f"dt{frames_apart}"
            if name in groups:
                raise EventDataError(f"{src}: keys '{groups[name][0]}' and '{key}' both hold flow '{name}'")
            groups[name] = (key, frames_apart)
        if not groups:
            return {}
        maps = {name: self._timed_datasets(file, key) for name, (key, _) in groups.items()}
        if self._images:
            clock = np.sort([t_us for _, t_us in self._images])
        elif "dt1" in maps:
            clock = np.sort([t_us for _, t_us in maps["dt1"]])
        else:
            raise EventDataError(
                f"{src}: flow groups {sorted(key for key, _ in groups.values())} need a frame clock; "
                "expected 'images/' or a dt1 flow group ('flow_dt1/' or 'flow/')"
            )
        refs: dict[str, list[_FlowMapRef]] = {}
        for name, (_, frames_apart) in groups.items():
            refs[name] = []
            for key, t_end_us in maps[name]:
                j = int(np.searchsorted(clock, t_end_us))
                if j == len(clock) or clock[j] != t_end_us:
                    raise EventDataError(
                        f"{src}: key '{key}' has timestamp {t_end_us} µs since t0, which is not on the frame "
                        f"clock (the {'image' if self._images else 'dt1 flow'} timestamps)"
                    )
                if j >= frames_apart:
                    channels_last = self._check_flow_map(file[key], key)
                    refs[name].append(_FlowMapRef(key, channels_last, int(clock[j - frames_apart]), t_end_us))
        return refs

    def _check_flow_map(self, dataset: h5py.Dataset, key: str) -> bool:
        """Whether a map is stored [H, W, 2] (else [2, H, W]); raises for any other shape or dtype."""
        height, width = self.sensor_size
        if dataset.dtype.kind != "f" or dataset.shape not in ((2, height, width), (height, width, 2)):
            raise EventDataError(
                f"{self.path}: key '{key}' must be a float flow map of shape [2, {height}, {width}] or "
                f"[{height}, {width}, 2], got {dataset.dtype} {list(dataset.shape)}"
            )
        return dataset.shape != (2, height, width)

    def _read_events(self, start: int, stop: int) -> Events:
        events = self._file["events"]
        return Events(
            events["xs"][start:stop],
            events["ys"][start:stop],
            self._read_t_us(start, stop),
            polarity_to_uint8(events["ps"][start:stop], "events/ps", str(self.path)),
        )

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return seconds_to_us(self._file["events/ts"][start:stop], self._t0_s)

    def ms_to_idx(self) -> np.ndarray:
        """Built by the check at open, or on first use by one chunked pass when the check's verdict was cached."""
        if self._ms_table is None:
            self._ms_table = ms_index_in_chunks(
                self._read_t_us, self._num_events, str(self.path), "events/ts", self.ms_index_chunk
            )
        return self._ms_table

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._flows, key=lambda name: int(name.removeprefix("dt")))

    def _refs(self, name: str) -> list[_FlowMapRef]:
        if name not in self._flows:
            raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")
        return self._flows[name]

    def _read_map(self, ref: _FlowMapRef) -> np.ndarray:
        with hdf5_errors(self.path):
            flow = self._file[ref.key][()].astype(np.float32)
        return np.ascontiguousarray(np.moveaxis(flow, -1, 0)) if ref.channels_last else flow

    def flow(self, name: str) -> FlowGT:
        refs = self._refs(name)
        maps = np.array([self._read_map(ref) for ref in refs], np.float32).reshape(
            len(refs), 2, *self.sensor_size
        )
        return FlowGT(maps, *self.flow_intervals(name))

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        refs = self._refs(name)
        return np.array([r.t_start_us for r in refs], np.int64), np.array(
            [r.t_end_us for r in refs], np.int64
        )

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        refs = self._refs(name)
        if not 0 <= k < len(refs):
            raise IndexError(f"{self.path}: flow '{name}' has {len(refs)} maps, asked for map {k}")
        return self._read_map(refs[k]), None

    def frames(self) -> Frames | None:
        """The ``images/`` frames in name order, or None without images."""
        if not self._images:
            return None
        height, width = self.sensor_size
        images = []
        for key, _ in self._images:
            image = self._file[key]
            if image.dtype != np.uint8 or image.shape != (height, width):
                raise EventDataError(
                    f"{self.path}: key '{key}' must be a uint8 [{height}, {width}] image, "
                    f"got {image.dtype} {list(image.shape)}"
                )
            images.append(image[()])
        return Frames(np.stack(images), np.array([t_us for _, t_us in self._images], np.int64))
