"""Encodings of a window of events into network inputs and loss inputs.

All image encodings are float32 (C, H, W) numpy arrays; pixel (x, y) = (column, row).
"""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events

EVENT_LIST_COLUMNS = ("x", "y", "t_norm", "p_sign")


def _linear_pixel(events: Events, width: int) -> np.ndarray:
    return events.y.astype(np.int64) * width + events.x.astype(np.int64)


def event_counts(events: Events, sensor_size: tuple[int, int]) -> np.ndarray:
    """Per-pixel event counts, float32 [2, H, W]: channel 0 = ON events, channel 1 = OFF events."""
    height, width = sensor_size
    # One bincount over (polarity, pixel): OFF (p=0) goes to channel 1, ON (p=1) to channel 0.
    flat = (1 - events.p.astype(np.int64)) * (height * width) + _linear_pixel(events, width)
    counts = np.bincount(flat, minlength=2 * height * width)
    return counts.astype(np.float32).reshape(2, height, width)


def normalised_time(events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
    """Event timestamps mapped to ``t_norm`` in [0, 1] over ``[t_start_us, t_end_us]`` (float64).

    A zero-length span maps every event to 0.
    """
    span = t_end_us - t_start_us
    if span <= 0:
        return np.zeros(len(events), np.float64)
    return (events.t_us - t_start_us).astype(np.float64) / span


def voxel_grid(
    events: Events, sensor_size: tuple[int, int], num_bins: int, t_start_us: int, t_end_us: int
) -> np.ndarray:
    """Voxel grid float32 [num_bins, H, W]: polarity (+1 ON / -1 OFF) spread bilinearly in time.

    The window ``[t_start_us, t_end_us]`` is mapped to bin coordinates ``[0, num_bins - 1]``; an
    event at bin coordinate b adds ``(1 - frac(b))`` to bin ``floor(b)`` and ``frac(b)`` to the next.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    height, width = sensor_size
    plane = height * width
    grid = np.zeros(num_bins * plane, np.float32)
    if len(events) == 0:
        return grid.reshape(num_bins, height, width)
    b = normalised_time(events, t_start_us, t_end_us) * (num_bins - 1)
    lower = np.clip(np.floor(b).astype(np.int64), 0, num_bins - 1)
    frac = b - lower
    pixel = _linear_pixel(events, width)
    sign = events.polarity_sign
    upper = lower + 1
    has_upper = upper < num_bins
    # One scatter of both temporal neighbours (float32 accumulation; np.add.at is unbuffered).
    index = np.concatenate([lower * plane + pixel, (upper * plane + pixel)[has_upper]])
    weight = np.concatenate([sign * (1.0 - frac), (sign * frac)[has_upper]]).astype(np.float32)
    np.add.at(grid, index, weight)
    return grid.reshape(num_bins, height, width)


def event_list(events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
    """Event list float32 [N, 4] with columns ``(x, y, t_norm, p_sign)`` (see :data:`EVENT_LIST_COLUMNS`)."""
    out = np.empty((len(events), 4), np.float32)
    out[:, 0] = events.x
    out[:, 1] = events.y
    out[:, 2] = normalised_time(events, t_start_us, t_end_us)
    out[:, 3] = events.polarity_sign
    return out


def pad_event_lists(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack event lists of different lengths: float32 [B, N_max, 4] zero-padded, and bool mask [B, N_max]."""
    n_max = max((len(a) for a in lists), default=0)
    padded = np.zeros((len(lists), n_max, 4), np.float32)
    mask = np.zeros((len(lists), n_max), bool)
    for i, a in enumerate(lists):
        padded[i, : len(a)] = a
        mask[i, : len(a)] = True
    return padded, mask


def encode(
    events: Events, sensor_size: tuple[int, int], encoding: str, num_bins: int, t_start_us: int, t_end_us: int
) -> np.ndarray:
    """Network input of a window by name: ``counts`` ([2, H, W]) or ``voxel`` ([num_bins, H, W])."""
    if encoding == "counts":
        return event_counts(events, sensor_size)
    if encoding == "voxel":
        return voxel_grid(events, sensor_size, num_bins, t_start_us, t_end_us)
    raise ValueError(f"unknown encoding '{encoding}'; expected 'counts' or 'voxel'")
