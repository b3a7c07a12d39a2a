"""A recording held in memory: what the readers of text layouts (ECD, UZH-FPV) return."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.io.h5 import check_sensor_size
from tinyflow.io.recording import MsIndexBuilder, Recording


class ArrayRecording(Recording):
    """Events and ground truth as numpy arrays (µs since ``t0_us``), behind the :class:`Recording` API.

    Args:
        path: where the recording came from (its ``stem`` is the recording's name).
        events: all events, validated against ``sensor_size``.
        sensor_size: ``(height, width)``.
        t0_us: absolute time (µs) of the time origin.
        flows, depth, frames: ground truth, times in µs since ``t0_us``.
        calib: calibration arrays (as the canonical ``/calib`` group).
        tables: side streams (``{name: {column: array}}`` with ``t_us``, see :meth:`Recording.tables`).
    """

    def __init__(
        self,
        path: str | Path,
        events: Events,
        sensor_size: tuple[int, int],
        t0_us: int = 0,
        *,
        flows: Mapping[str, FlowGT] | None = None,
        depth: DepthGT | None = None,
        frames: Frames | None = None,
        calib: Mapping[str, object] | None = None,
        tables: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        self.path = Path(path)
        source = str(self.path)
        self.sensor_size = check_sensor_size(sensor_size, "sensor_size", source)
        if len(events) == 0:
            raise EventDataError(f"{source}: recording has no events")
        self._events = events.validate(self.sensor_size, source=source)
        builder = MsIndexBuilder(source, "t")
        builder.add(events.t_us)
        self._ms_table = builder.finish()
        self.t0_us = int(t0_us)
        self._flows = dict(flows or {})
        self._depth, self._frames = depth, frames
        self._calib = dict(calib or {})
        self._tables = {name: dict(columns) for name, columns in (tables or {}).items()}

    @property
    def num_events(self) -> int:
        return len(self._events)

    def events(self, start: int, stop: int) -> Events:
        if not 0 <= start <= stop <= self.num_events:
            raise IndexError(f"{self.path}: event range [{start}, {stop}) is outside [0, {self.num_events})")
        return self._events[start:stop]

    def ms_to_idx(self) -> np.ndarray:
        return self._ms_table

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return self._events.t_us[start:stop]

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._flows)

    def flow(self, name: str) -> FlowGT:
        if name not in self._flows:
            return super().flow(name)
        return self._flows[name]

    def depth(self) -> DepthGT | None:
        return self._depth

    def frames(self) -> Frames | None:
        return self._frames

    def calib(self) -> dict[str, object]:
        return self._calib

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        return self._tables

    def close(self) -> None:
        """Nothing to release: the data lives in memory."""
