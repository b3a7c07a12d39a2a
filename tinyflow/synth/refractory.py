"""Per-pixel refractory period applied to a time-sorted event stream."""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events


def apply_refractory(events: Events, width: int, refractory_us: int) -> Events:
    """Drop every event that comes less than ``refractory_us`` after the last kept event of its pixel.

    Equivalent to scanning the events in time order with one "last kept time" per pixel. An event
    whose gap to the previous event of its pixel is at least ``refractory_us`` is always kept; the
    rest are decided in rounds, each settling at least the earliest undecided event of every pixel.

    Args:
        events: sorted by time.
        width: sensor width, to index pixels as ``y * width + x``.
    Returns:
        The kept events, in the input order.
    """
    n = len(events)
    if n == 0 or refractory_us <= 0:
        return events
    pixel = events.y.astype(np.int64) * width + events.x.astype(np.int64)
    order = np.argsort(pixel, kind="stable")
    t_us = events.t_us[order]
    pixel = pixel[order]
    new_pixel = np.ones(n, bool)
    new_pixel[1:] = pixel[1:] != pixel[:-1]
    gap = np.diff(t_us, prepend=t_us[0])
    keep = new_pixel | (gap >= refractory_us)
    undecided = ~keep
    while undecided.any():
        last_kept = _last_kept_time(t_us, keep)
        drop = undecided & (t_us - last_kept < refractory_us)
        undecided &= ~drop
        previous_undecided = np.zeros(n, bool)
        previous_undecided[1:] = _run_has_undecided_before(undecided, new_pixel)[:-1]
        settle = undecided & ~previous_undecided
        keep |= settle
        undecided &= ~settle
    kept = np.sort(order[keep])
    return events[kept]


def _last_kept_time(t_us: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """For each event, the time of the latest kept event before it (pixel runs start with a kept event)."""
    index = np.where(keep, np.arange(len(t_us)), 0)
    np.maximum.accumulate(index, out=index)
    shifted = np.empty_like(index)
    shifted[0] = 0
    shifted[1:] = index[:-1]
    return t_us[shifted]


def _run_has_undecided_before(undecided: np.ndarray, new_pixel: np.ndarray) -> np.ndarray:
    """Whether an undecided event occurs at or before each position within its pixel run."""
    run = np.cumsum(new_pixel)
    count = np.cumsum(undecided)
    start = np.flatnonzero(new_pixel)
    before_run = count[start] - undecided[start]
    return count - before_run[run - 1] > 0
