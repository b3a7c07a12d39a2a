"""Windows of events over a recording: by event count, by duration, or aligned to ground truth (flow maps
or depth maps).

A window is a pair of event indices plus the time span it covers; it is computed from the
recording's time index only, so a recording is never read whole to build its windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TimeIndexed(Protocol):
    """What windowing reads of a recording: its time index (:class:`tinyflow.io.recording.Recording`)."""

    @property
    def num_events(self) -> int: ...

    @property
    def t_end_us(self) -> int: ...

    def timestamps_at(self, indices: np.ndarray) -> np.ndarray: ...

    def index_at_time(self, t_us: np.ndarray | int) -> np.ndarray: ...

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]: ...

    def depth_t_us(self) -> np.ndarray | None: ...


@dataclass(frozen=True)
class Window:
    """Events ``[start, stop)`` of a recording.

    Attributes:
        start, stop: event indices.
        t_start_us, t_end_us: the window's time span in µs (since the file's t0). For count
            windows it is the span of the window's own events.
        gt_index: index of the ground-truth flow map whose interval this window covers (whole, or as part
            ``gt_part`` of ``gt_parts`` consecutive windows splitting it), or -1.
        gt_part, gt_parts: this window is part ``gt_part`` (0-based) of the ``gt_parts`` windows that
            split GT interval ``gt_index`` (1 part: the window is the interval).
        query_index: index of the query interval (a prediction asked for, e.g. a DSEC test timestamp) this
            window answers, or -1.
    """

    start: int
    stop: int
    t_start_us: int
    t_end_us: int
    gt_index: int = -1
    query_index: int = -1
    gt_part: int = 0
    gt_parts: int = 1

    @property
    def num_events(self) -> int:
        return self.stop - self.start

    @property
    def duration_us(self) -> int:
        return self.t_end_us - self.t_start_us

    @property
    def starts_gt_interval(self) -> bool:
        """Whether this window begins a GT interval (or stands alone: no GT, or the whole interval)."""
        return self.gt_part == 0

    @property
    def ends_gt_interval(self) -> bool:
        """Whether this window ends GT interval ``gt_index`` (the GT map belongs to it); False without GT."""
        return self.gt_index >= 0 and self.gt_part == self.gt_parts - 1


def count_window_bounds(num_events: int, events_per_window: int) -> np.ndarray:
    """int64 [W, 2] ``[start, stop)`` index pairs of consecutive windows of ``events_per_window`` events.

    The trailing partial window is dropped (every window holds exactly that many events).
    """
    if events_per_window <= 0:
        raise ValueError(f"events_per_window must be > 0, got {events_per_window}")
    starts = np.arange(0, num_events - events_per_window + 1, events_per_window, dtype=np.int64)
    return np.stack([starts, starts + events_per_window], axis=1)


def windows_by_count(recording: TimeIndexed, events_per_window: int) -> list[Window]:
    """Consecutive windows of exactly ``events_per_window`` events."""
    bounds = count_window_bounds(recording.num_events, events_per_window)
    if len(bounds) == 0:
        return []
    t_first, t_last = recording.timestamps_at(np.concatenate([bounds[:, 0], bounds[:, 1] - 1])).reshape(2, -1)
    return [
        Window(a, b, t0, t1)
        for (a, b), t0, t1 in zip(bounds.tolist(), t_first.tolist(), t_last.tolist(), strict=True)
    ]


def windows_by_duration(
    recording: TimeIndexed, duration_us: int, t_begin_us: int = 0, t_stop_us: int | None = None
) -> list[Window]:
    """Consecutive windows of ``duration_us`` µs covering ``[t_begin_us, t_stop_us)`` (default: to the last event).

    Windows may be empty (zero events); the trailing partial window is dropped.
    """
    if duration_us <= 0:
        raise ValueError(f"duration_us must be > 0, got {duration_us}")
    stop = recording.t_end_us + 1 if t_stop_us is None else t_stop_us
    edges = np.arange(t_begin_us, stop - duration_us + 1, duration_us, dtype=np.int64)
    if len(edges) == 0:
        return []
    edges = np.append(edges, edges[-1] + duration_us)
    idx, edges = recording.index_at_time(edges).tolist(), edges.tolist()
    return [Window(idx[i], idx[i + 1], edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def gt_parts(interval_us: np.ndarray, model_window_us: int | None) -> np.ndarray:
    """int64 [K]: how many windows of about ``model_window_us`` split each GT interval: the nearest whole
    number, at least 1 (None: 1 each, the interval is the window)."""
    interval_us = np.asarray(interval_us, np.int64)
    if model_window_us is None:
        return np.ones(len(interval_us), np.int64)
    if model_window_us <= 0:
        raise ValueError(f"model_window_us must be > 0 µs or None, got {model_window_us}")
    return np.maximum(np.rint(interval_us / model_window_us), 1).astype(np.int64)


def windows_from_gt(
    recording: TimeIndexed, flow_name: str = "dt1", model_window_us: int | None = None
) -> list[Window]:
    """Windows aligned to the ground-truth flow maps of set ``flow_name``: the events in ``[t_start_us,
    t_end_us)`` of each map, as one window, or split into :func:`gt_parts` consecutive windows of equal
    duration (edges rounded to µs) near ``model_window_us``, the length the network predicts over; the
    evaluation composes their predictions over the interval.

    Use ``flow_name="dt4"`` for the dt=4 protocol (maps spanning four frame intervals): with the network's
    dt=1 window as ``model_window_us``, each map is predicted by four windows.
    """
    t_start_us, t_end_us = recording.flow_intervals(flow_name)
    t_start_us, t_end_us = np.asarray(t_start_us, np.int64), np.asarray(t_end_us, np.int64)
    parts = gt_parts(t_end_us - t_start_us, model_window_us)
    gt_index = np.repeat(np.arange(len(parts)), parts)
    part = np.arange(len(gt_index)) - np.repeat(np.cumsum(parts) - parts, parts)
    span = (t_end_us - t_start_us)[gt_index]
    begin = t_start_us[gt_index] + np.rint(span * part / parts[gt_index]).astype(np.int64)
    end = t_start_us[gt_index] + np.rint(span * (part + 1) / parts[gt_index]).astype(np.int64)
    starts, stops = recording.index_at_time(begin), recording.index_at_time(end)
    return [
        Window(int(a), int(b), int(t0), int(t1), gt_index=int(k), gt_part=int(i), gt_parts=int(n))
        for a, b, t0, t1, k, i, n in zip(
            starts, stops, begin, end, gt_index, part, parts[gt_index], strict=True
        )
    ]


def windows_for_queries(recording: TimeIndexed, t_end_us: np.ndarray, window_us: int) -> list[Window]:
    """Consecutive windows from t = 0 through the last query, so that query k is answered by the window
    ``[t_end_us[k] - window_us, t_end_us[k])`` (``query_index=k``; clipped at t = 0 and at the end of the
    window before it).

    The time between query windows is filled with windows of ``window_us`` (the last before a query window
    may be shorter), so a recurrent network carries its state through the whole recording up to each query.
    """
    if window_us <= 0:
        raise ValueError(f"window_us must be > 0, got {window_us}")
    edges: list[int] = []
    queries: list[int] = []
    cursor = 0
    for k in np.argsort(np.asarray(t_end_us), kind="stable"):
        end = int(t_end_us[k])
        begin = max(end - window_us, cursor)
        if end <= begin:
            raise ValueError(f"query {int(k)} ends at {end} µs, not after the window before it ({cursor} µs)")
        fill = list(range(cursor, begin, window_us))
        edges += [*fill, begin]
        queries += [*([-1] * len(fill)), int(k)]
        cursor = end
    if not queries:
        return []
    edges.append(cursor)
    idx = recording.index_at_time(np.asarray(edges, np.int64))
    return [
        Window(int(idx[i]), int(idx[i + 1]), edges[i], edges[i + 1], query_index=queries[i])
        for i in range(len(queries))
    ]


def windows_from_depth(recording: TimeIndexed, duration_us: int) -> list[Window]:
    """One window per depth map, ending at its time ``t_k``: the events in ``[t_k - duration_us, t_k)``,
    starting no earlier than the previous map (windows never overlap) nor than t = 0.

    The depth protocol of Tulyakov et al. (ICCV 2019) and StereoSpike: the events of the 50 ms before each
    LIDAR depth map. No windows without depth maps.
    """
    if duration_us <= 0:
        raise ValueError(f"duration_us must be > 0, got {duration_us}")
    t_us = recording.depth_t_us()
    if t_us is None or len(t_us) == 0:
        return []
    t_end = np.asarray(t_us, np.int64)
    t_start = np.maximum(t_end - duration_us, np.concatenate([[0], t_end[:-1]]))
    t_start = np.minimum(np.maximum(t_start, 0), t_end)
    starts, stops = recording.index_at_time(t_start), recording.index_at_time(t_end)
    return [
        Window(int(a), int(b), int(t0), int(t1))
        for a, b, t0, t1 in zip(starts, stops, t_start, t_end, strict=True)
    ]
