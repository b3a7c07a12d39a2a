"""The read interface shared by every on-disk layout.

A :class:`Recording` gives random access to a file's events by index and by time, and to
its ground truth, without loading the recording whole into memory.

Stereo recordings: the recording itself is the LEFT camera (its events, and the ground truth, which
belongs to the left camera); :meth:`Recording.camera` gives the other camera of a rectified pair as
a Recording of its own (events only, same sensor size and time base, no ground truth). Stereo facts
are in :meth:`Recording.calib`: ``baseline_m`` (metres) and ``focal_px`` (pixels).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, DisparityGT, FlowGT, Frames

TIMESTAMP_SPAN = 1 << 20  # events read at once by timestamps_at (8 MiB of int64)
LEFT, RIGHT = "left", "right"
CAMERAS = (LEFT, RIGHT)  # the cameras a recording may hold, in input order (the left camera first)


class Recording(abc.ABC):
    """One event recording on disk. Timestamps are microseconds since the file's ``t0_us``."""

    path: Path
    sensor_size: tuple[int, int]  # (height, width)
    t0_us: int

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    @abc.abstractmethod
    def num_events(self) -> int:
        """Number of events in the recording."""

    @abc.abstractmethod
    def events(self, start: int, stop: int) -> Events:
        """Events with indices in ``[start, stop)`` (validated against the sensor size)."""

    @abc.abstractmethod
    def ms_to_idx(self) -> np.ndarray:
        """uint64 [M]: index of the first event with ``t_us >= k * 1000`` for each k."""

    @abc.abstractmethod
    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        """Timestamps (int64 µs) of events ``[start, stop)``."""

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras whose events the recording holds (:data:`CAMERAS` order): ``("left",)`` or
        ``("left", "right")``."""
        return (LEFT,)

    def camera(self, name: str) -> Recording:
        """The events of camera ``name`` as a recording (``left``: this recording itself).

        The other camera shares the sensor size, ``t0_us`` and name, and carries no ground truth.
        """
        if name == LEFT:
            return self
        raise EventDataError(
            f"{self.path}: no '{name}' camera (cameras: {list(self.cameras)}); "
            f"expected one of {list(self.cameras)}"
        )

    @property
    def flow_names(self) -> list[str]:
        """Names of the ground-truth flow sets (e.g. ``dt1``, ``dt4``); empty without GT."""
        return []

    def flow(self, name: str) -> FlowGT:
        """Ground-truth flow set ``name``; maps are read lazily only where the layout allows."""
        raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(t_start_us, t_end_us)`` int64 [K] of the maps of GT flow set ``name`` (no maps read)."""
        gt = self.flow(name)
        return gt.t_start_us, gt.t_end_us

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """One GT flow map float32 [2, H, W] and its valid mask [H, W] (or None)."""
        gt = self.flow(name)
        return gt.flow[k], None if gt.valid is None else gt.valid[k]

    def depth(self) -> DepthGT | None:
        return None

    def depth_t_us(self) -> np.ndarray | None:
        """int64 [K] times of the depth maps, or None without depth GT (no maps read where the layout allows)."""
        depth = self.depth()
        return None if depth is None else np.asarray(depth.t_us, np.int64)

    def depth_map(self, k: int) -> np.ndarray:
        """Depth map ``k``, float32 [H, W] metres (NaN = invalid)."""
        depth = self.depth()
        if depth is None:
            raise KeyError(f"{self.path}: no depth ground truth")
        return np.asarray(depth.depth[k], np.float32)

    def disparity(self) -> DisparityGT | None:
        """Left-camera stereo disparity in pixels (NaN = seen by one camera only), or None."""
        return None

    def frames(self) -> Frames | None:
        return None

    def calib(self) -> dict[str, object]:
        """Calibration arrays (intrinsics, distortion, rectification maps, ...); empty if none."""
        return {}

    @property
    def t_end_us(self) -> int:
        """Timestamp of the last event (µs), 0 for an empty recording."""
        n = self.num_events
        return int(self._read_t_us(n - 1, n)[0]) if n else 0

    def timestamps_at(self, indices: np.ndarray) -> np.ndarray:
        """Timestamps (int64 µs) of the events at ``indices``, reading one span per group of nearby indices."""
        indices = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        order = np.argsort(indices, kind="stable")
        out = np.empty(len(indices), np.int64)
        group_start = 0
        while group_start < len(order):
            first = indices[order[group_start]]
            group_stop = int(np.searchsorted(indices[order], first + TIMESTAMP_SPAN, side="left"))
            members = order[group_start:group_stop]
            span = self._read_t_us(int(first), int(indices[members[-1]]) + 1)
            out[members] = span[indices[members] - first]
            group_start = group_stop
        return out

    def index_at_time(self, t_us: np.ndarray | int) -> np.ndarray:
        """Index of the first event with timestamp >= ``t_us`` (vectorised over ``t_us``).

        Uses the millisecond index to bracket each query, then reads only that bracket.
        """
        queries = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
        table = self.ms_to_idx().astype(np.int64)
        n = self.num_events
        out = np.empty(queries.shape, dtype=np.int64)
        for i, q in enumerate(queries):
            ms = q // 1000
            if q <= 0 or n == 0:
                out[i] = 0
                continue
            if ms >= len(table):
                out[i] = n
                continue
            lo = int(table[ms])
            hi = int(table[ms + 1]) if ms + 1 < len(table) else n
            if q % 1000 == 0 or hi <= lo:
                out[i] = lo
                continue
            out[i] = lo + int(np.searchsorted(self._read_t_us(lo, hi), q, side="left"))
        return out

    @abc.abstractmethod
    def close(self) -> None:
        """Release open file handles (reopened on the next access)."""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def seconds_to_us(seconds: np.ndarray | float, t0_s: float) -> np.ndarray:
    """Absolute float seconds -> int64 µs since ``t0_s``, rounded to the nearest µs."""
    return np.rint((np.asarray(seconds, np.float64) - t0_s) * 1e6).astype(np.int64)


def ms_to_idx_from_t(t_us: np.ndarray, duration_ms: int | None = None) -> np.ndarray:
    """Build the millisecond index for sorted timestamps: entry k = first index with t >= k ms."""
    last_ms = int(t_us[-1] // 1000) + 1 if len(t_us) else 0
    m = max(duration_ms if duration_ms is not None else 0, last_ms) + 1
    return np.searchsorted(t_us, np.arange(m, dtype=np.int64) * 1000, side="left").astype(np.uint64)


class MsIndexBuilder:
    """Builds ``ms_to_idx`` from consecutive chunks of timestamps (int64 µs since t0), in one pass.

    Each chunk is checked to be non-negative and non-decreasing, also across chunks, so a
    reader can build the index of a large file chunk by chunk without holding all timestamps.
    """

    def __init__(self, source: str, key: str) -> None:
        self._source, self._key = source, key
        self._parts: list[np.ndarray] = []
        self._num_events = 0
        self._next_ms = 0
        self._last_t_us: int | None = None

    def add(self, t_us: np.ndarray) -> None:
        """Index the next chunk of timestamps (int64 µs)."""
        if len(t_us) == 0:
            return
        steps = np.diff(t_us)
        if np.any(steps < 0):
            i = int(np.argmax(steps < 0))
            raise EventDataError(
                f"{self._source}: key '{self._key}' must be non-decreasing; event {self._num_events + i + 1} "
                f"has t={int(t_us[i + 1])} µs < t={int(t_us[i])} µs of the event before"
            )
        first = int(t_us[0])
        if self._last_t_us is None and first < 0:
            raise EventDataError(f"{self._source}: key '{self._key}' must be >= 0 µs since t0, got {first}")
        if self._last_t_us is not None and first < self._last_t_us:
            raise EventDataError(
                f"{self._source}: key '{self._key}' must be non-decreasing; event {self._num_events} has "
                f"t={first} µs < t={self._last_t_us} µs of the event before"
            )
        last_ms = int(t_us[-1]) // 1000
        ms = np.arange(self._next_ms, last_ms + 1, dtype=np.int64)
        self._parts.append(self._num_events + np.searchsorted(t_us, ms * 1000, side="left"))
        self._next_ms = last_ms + 1
        self._last_t_us = int(t_us[-1])
        self._num_events += len(t_us)

    def finish(self) -> np.ndarray:
        """The index, uint64 [last_ms + 2], equal to ``ms_to_idx_from_t`` of all chunks together."""
        return np.concatenate([*self._parts, [self._num_events]]).astype(np.uint64)


def ms_index_in_chunks(
    read_t_us: Callable[[int, int], np.ndarray], num_events: int, source: str, key: str, chunk: int
) -> np.ndarray:
    """``ms_to_idx`` of a file's timestamps, read ``chunk`` events at a time (checks time order)."""
    builder = MsIndexBuilder(source, key)
    for start in range(0, num_events, chunk):
        builder.add(read_t_us(start, min(start + chunk, num_events)))
    return builder.finish()
