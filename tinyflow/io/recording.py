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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, DisparityGT, FlowGT, Frames

TIMESTAMP_SPAN = 1 << 20  # events read at once by timestamps_at and index_at_time (8 MiB of int64)
TIMESTAMP_GAP = 1 << 13  # indices further apart are read separately (a read costs about this many events)
READ_SPAN = 1 << 17  # events read at once by window_events (1.6 MiB of x, y, t, p: fits the caches)
LEFT, RIGHT = "left", "right"
CAMERAS = (LEFT, RIGHT)  # the cameras a recording may hold, in input order (the left camera first)


@dataclass(frozen=True)
class QueryIntervals:
    """Intervals at which predictions are asked for, without ground truth (e.g. DSEC's test timestamps).

    Attributes:
        t_start_us, t_end_us: int64 [K], µs since the recording's ``t0_us``: flow is asked for as the
            displacement from ``t_start_us[k]`` to ``t_end_us[k]``.
        ids: int64 [K], the name of each prediction in its benchmark (DSEC: the file index).
    """

    t_start_us: np.ndarray
    t_end_us: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.t_start_us)


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

    def query_intervals(self) -> QueryIntervals | None:
        """Intervals at which a benchmark asks for predictions (no ground truth), or None."""
        return None

    def tables(self) -> dict[str, dict[str, np.ndarray]]:
        """Side streams kept from a camera file (``imu``, ``triggers``): ``{name: {column: [K, ...]}}`` with a
        ``t_us`` column (µs since ``t0_us``); empty if none."""
        return {}

    @property
    def t_end_us(self) -> int:
        """Timestamp of the last event (µs), 0 for an empty recording."""
        n = self.num_events
        return int(self._read_t_us(n - 1, n)[0]) if n else 0

    def timestamps_at(self, indices: np.ndarray) -> np.ndarray:
        """Timestamps (int64 µs) of the events at ``indices``: one read per group of nearby indices (at most
        ``TIMESTAMP_GAP`` events apart, spanning at most ``TIMESTAMP_SPAN``)."""
        indices = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        order = np.argsort(indices, kind="stable")
        ordered = indices[order]
        out = np.empty(len(indices), np.int64)
        gaps = np.flatnonzero(np.diff(ordered) > TIMESTAMP_GAP) + 1  # where a new group must start
        group_start = 0
        while group_start < len(order):
            first = int(ordered[group_start])
            next_gap = int(np.searchsorted(gaps, group_start, side="right"))
            group_stop = min(
                int(np.searchsorted(ordered, first + TIMESTAMP_SPAN, side="left")),
                int(gaps[next_gap]) if next_gap < len(gaps) else len(order),
            )
            span = self._read_t_us(first, int(ordered[group_stop - 1]) + 1)
            out[order[group_start:group_stop]] = span[ordered[group_start:group_stop] - first]
            group_start = group_stop
        return out

    def index_at_time(self, t_us: np.ndarray | int) -> np.ndarray:
        """Index of the first event with timestamp >= ``t_us`` (vectorised over ``t_us``).

        Uses the millisecond index to bracket each query, then reads only the brackets, nearby brackets
        together (one span of at most ``TIMESTAMP_SPAN`` events, unless one bracket is longer).
        """
        shaped = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
        queries, n = shaped.ravel(), self.num_events
        out = np.zeros(queries.shape, dtype=np.int64)
        if n == 0:
            return out.reshape(shaped.shape)
        table = self.ms_to_idx().astype(np.int64)
        ms = queries // 1000
        beyond = (ms >= len(table)) & (queries > 0)
        out[beyond] = n
        inside = np.flatnonzero((queries > 0) & ~beyond)
        lo = table[ms[inside]]
        nxt = ms[inside] + 1
        hi = np.where(nxt < len(table), table[np.minimum(nxt, len(table) - 1)], n)
        out[inside] = lo
        search = (queries[inside] % 1000 != 0) & (hi > lo)
        members, lo, hi = inside[search], lo[search], hi[search]
        order = np.argsort(lo, kind="stable")
        members, lo, hi = members[order], lo[order], hi[order]
        reach = np.maximum.accumulate(hi) if len(hi) else hi
        group_start = 0
        while group_start < len(members):
            first = lo[group_start]
            group_stop = max(
                group_start + 1, int(np.searchsorted(reach, first + TIMESTAMP_SPAN, side="right"))
            )
            span = self._read_t_us(int(first), int(reach[group_stop - 1]))
            group = members[group_start:group_stop]
            out[group] = first + np.searchsorted(span, queries[group], side="left")
            group_start = group_stop
        return out.reshape(shaped.shape)

    def window_events(self, bounds: np.ndarray, span: int = READ_SPAN) -> Iterator[Events]:
        """The events of each ``[start, stop)`` pair of ``bounds`` (int [W, 2]), in order: each equal to
        ``events(start, stop)``, read together with nearby windows (one read of at most ``span`` events,
        unless one window is longer), as views into that read."""
        pairs = window_bounds(bounds, self.num_events, self.path).tolist()
        i = 0
        while i < len(pairs):
            first, last = pairs[i]
            j = i + 1
            while j < len(pairs) and first <= pairs[j][0] and max(last, pairs[j][1]) - first <= span:
                last = max(last, pairs[j][1])
                j += 1
            block = self.events(first, last) if j > i + 1 else None
            for start, stop in pairs[i:j]:
                yield self.events(start, stop) if block is None else block[start - first : stop - first]
            i = j

    @abc.abstractmethod
    def close(self) -> None:
        """Release open file handles (reopened on the next access)."""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def window_bounds(bounds: np.ndarray, num_events: int, path: Path) -> np.ndarray:
    """``bounds`` as int64 [W, 2] ``[start, stop)`` pairs, checked to lie in ``[0, num_events]``."""
    bounds = np.asarray(bounds, np.int64).reshape(-1, 2)
    bad = (bounds[:, 0] < 0) | (bounds[:, 0] > bounds[:, 1]) | (bounds[:, 1] > num_events)
    if bad.any():
        start, stop = bounds[np.argmax(bad)].tolist()
        raise IndexError(f"{path}: event range [{start}, {stop}) is outside [0, {num_events})")
    return bounds


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
