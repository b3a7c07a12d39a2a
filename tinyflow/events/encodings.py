"""Encodings of a window of events into network inputs and loss inputs.

All image encodings are float32 (C, H, W) numpy arrays; pixel (x, y) = (column, row).
"""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events

EVENT_LIST_COLUMNS = ("x", "y", "t_norm", "p_sign")


ENCODINGS = ("counts", "voxel")
COUNT_LIMIT = 1 << 24  # float32 counts are exact integers below 2**24
DENSE_WINDOW = 16  # a window with more events than 1/16 of its grid's entries is handled plane by plane


class _Scratch:
    """Named work arrays, kept from call to call and grown when a window is longer (a stream's encoder
    allocates nothing per window; a fresh instance allocates as plain numpy does)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, size: int, dtype: type) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or len(array) < size:
            array = self._arrays[name] = np.empty(size, dtype)
        return array[:size]


def _pixel_index(events: Events, width: int, scratch: _Scratch) -> np.ndarray:
    """intp [N] flat pixel index ``y * width + x`` (in scratch ``"index"``)."""
    index = scratch("index", len(events), np.intp)
    np.multiply(events.y, width, out=index, dtype=np.intp)
    index += events.x
    return index


Written = list[tuple[np.ndarray, np.ndarray]]
"""The entries a window wrote: ``(view, index)`` pairs, ``view[index]`` for each (None: all of them)."""


def _add_counts(
    grid: np.ndarray, events: Events, sensor_size: tuple[int, int], scratch: _Scratch, clear: bool = False
) -> Written | None:
    """Add the per-pixel counts of ``events`` to the flat float32 [2 * H * W] ``grid`` (``clear``: zero it
    first; ON events in channel 0, OFF in channel 1); return the entries written (None: all of them)."""
    if clear:
        grid.fill(0.0)
    height, width = sensor_size
    # Row y of channel 1 - p (OFF events one plane on), in uint16 where rows fit, then the flat index.
    narrow = events.y.dtype == np.uint16 and 2 * height <= 1 << 16
    row_dtype = np.uint16 if narrow else np.intp
    row = np.subtract(
        1, events.p, out=scratch(f"row_{row_dtype.__name__}", len(events), row_dtype), dtype=row_dtype
    )
    np.multiply(row, height, out=row)
    np.add(row, events.y, out=row)
    index = np.multiply(row, width, out=scratch("index", len(events), np.intp), dtype=np.intp)
    np.add(index, events.x, out=index)
    if len(index) >= COUNT_LIMIT:  # a pixel could pass 2**24: count in integers, round once
        grid += np.bincount(index, minlength=grid.size).astype(np.float32)
        return None
    np.add.at(grid, index, np.float32(1))
    return [(grid, index)]


def event_counts(events: Events, sensor_size: tuple[int, int]) -> np.ndarray:
    """Per-pixel event counts, float32 [2, H, W]: channel 0 = ON events, channel 1 = OFF events."""
    height, width = sensor_size
    counts = np.zeros(2 * height * width, np.float32)
    _add_counts(counts, events, sensor_size, _Scratch())
    return counts.reshape(2, height, width)


def normalised_time(events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
    """Event timestamps mapped to ``t_norm`` in [0, 1] over ``[t_start_us, t_end_us]`` (float64).

    A zero-length span maps every event to 0.
    """
    span = t_end_us - t_start_us
    if span <= 0:
        return np.zeros(len(events), np.float64)
    return (events.t_us - t_start_us).astype(np.float64) / span


def _add_voxels(
    grid: np.ndarray,
    events: Events,
    sensor_size: tuple[int, int],
    num_bins: int,
    t_start_us: int,
    t_end_us: int,
    scratch: _Scratch,
    clear: bool = False,
) -> Written:
    """Add the voxel grid of ``events`` to the flat float32 [num_bins * H * W] ``grid`` (``clear``: zero it
    first); return the entries written.

    The additions into each entry are in the order of :func:`voxel_grid`'s definition (every event's lower
    temporal neighbour, then every event's upper one), so the float32 sums are the same to the bit. A
    window of many events (see :data:`DENSE_WINDOW`) is added plane by plane, so that one plane at a time
    is in the caches: the events are time-ordered, so those of bin k (lower neighbour k) are contiguous,
    and plane k takes the lower weights of bin k's events, then the upper weights of bin k - 1's. The
    arithmetic is :func:`normalised_time`'s and the bilinear weights', step for step, in the work arrays of
    ``scratch``."""
    n = len(events)
    height, width = sensor_size
    plane = height * width
    if n == 0:
        if clear:
            grid.fill(0.0)
        return []
    b = scratch("b", n, np.float64)  # bin coordinate, non-decreasing with time
    span = t_end_us - t_start_us
    if span <= 0:
        b.fill(0.0)
    else:  # t - t_start is an integer below 2**53: subtracting in float64 is exact
        np.subtract(events.t_us, t_start_us, out=b, dtype=np.float64)
        b /= span
    b *= num_bins - 1
    # Bin k = clip(floor(b)): events [cuts[k], cuts[k + 1]) (b < 1 in bin 0, b >= num_bins - 1 in the last).
    cuts = [0, *np.searchsorted(b, np.arange(1, num_bins), side="left").tolist(), n]
    pixel = _pixel_index(events, width, scratch)
    sign = np.multiply(events.p, np.float32(2), out=scratch("sign", n, np.float32), dtype=np.float32)
    sign -= 1  # polarity sign: -1 OFF, +1 ON
    for k in range(1, num_bins):  # b becomes its fraction, b - floor(b), bin by bin
        b[cuts[k] : cuts[k + 1]] -= k
    # Weights sign * (1 - frac) and sign * frac: rounded to float32, then times the sign (exact).
    lower_weight = np.subtract(1.0, b, out=scratch("lower_weight", n, np.float32), casting="same_kind")
    lower_weight *= sign
    upper_weight = scratch("upper_weight", n, np.float32)
    np.copyto(upper_weight, b, casting="same_kind")
    upper_weight *= sign
    if n * DENSE_WINDOW <= grid.size:  # few events: two scatters into the whole grid
        if clear:
            grid.fill(0.0)
        with_upper = cuts[num_bins - 1]  # the last bin's upper neighbours lie beyond the grid
        lower = scratch("lower", n, np.intp)
        for k in range(num_bins):
            np.add(pixel[cuts[k] : cuts[k + 1]], k * plane, out=lower[cuts[k] : cuts[k + 1]])
        upper = np.add(lower[:with_upper], plane, out=scratch("upper", with_upper, np.intp))
        np.add.at(grid, lower, lower_weight)
        np.add.at(grid, upper, upper_weight[:with_upper])
        return [(grid, lower), (grid, upper)]
    written: Written = []
    for k in range(num_bins):  # plane k: bin k's lower weights, then bin k - 1's upper ones
        target = grid[k * plane : (k + 1) * plane]
        if clear:
            target.fill(0.0)
        parts = [(cuts[k], cuts[k + 1], lower_weight)] + ([(cuts[k - 1], cuts[k], upper_weight)] if k else [])
        for lo, hi, weight in parts:
            if hi > lo:
                np.add.at(target, pixel[lo:hi], weight[lo:hi])
                written.append((target, pixel[lo:hi]))
    return written


def _check_num_bins(num_bins: int) -> None:
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")


def voxel_grid(
    events: Events, sensor_size: tuple[int, int], num_bins: int, t_start_us: int, t_end_us: int
) -> np.ndarray:
    """Voxel grid float32 [num_bins, H, W]: polarity (+1 ON / -1 OFF) spread bilinearly in time.

    The window ``[t_start_us, t_end_us]`` is mapped to bin coordinates ``[0, num_bins - 1]``; an
    event at bin coordinate b adds ``(1 - frac(b))`` to bin ``floor(b)`` and ``frac(b)`` to the next.
    """
    _check_num_bins(num_bins)
    height, width = sensor_size
    grid = np.zeros(num_bins * height * width, np.float32)
    _add_voxels(grid, events, sensor_size, num_bins, t_start_us, t_end_us, _Scratch())
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


def _check_encoding(encoding: str) -> None:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding '{encoding}'; expected 'counts' or 'voxel'")


def encode(
    events: Events, sensor_size: tuple[int, int], encoding: str, num_bins: int, t_start_us: int, t_end_us: int
) -> np.ndarray:
    """Network input of a window by name: ``counts`` ([2, H, W]) or ``voxel`` ([num_bins, H, W])."""
    _check_encoding(encoding)
    if encoding == "counts":
        return event_counts(events, sensor_size)
    return voxel_grid(events, sensor_size, num_bins, t_start_us, t_end_us)


class WindowEncoder:
    """:func:`encode` of one window after another into one reused float32 array, for a stream.

    Equal value for value to :func:`encode`, without a full-sensor allocation per window: each call
    clears only the entries the previous window wrote (or the whole array when that is cheaper; a voxel
    grid plane by plane as it is filled), then adds the new window's events. The returned array is
    read-only and is overwritten by the next call: copy it to keep it.
    """

    def __init__(self, sensor_size: tuple[int, int], encoding: str, num_bins: int) -> None:
        _check_encoding(encoding)
        if encoding == "voxel":
            _check_num_bins(num_bins)
        self.sensor_size, self.encoding, self.num_bins = tuple(sensor_size), encoding, num_bins
        channels = 2 if encoding == "counts" else num_bins
        self._shape = (channels, *self.sensor_size)
        self._grid = np.zeros(int(np.prod(self._shape)), np.float32)
        self._written: Written | None = []  # views into _grid and _scratch, valid until the next call
        self._scratch = _Scratch()

    def _clear_written(self) -> bool:
        """Zero the entries the previous window wrote, if that is cheaper than zeroing the whole grid."""
        written = self._written
        if written is None or sum(len(index) for _, index in written) * DENSE_WINDOW > self._grid.size:
            return False
        for view, index in written:
            view[index] = 0.0
        return True

    def __call__(self, events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
        """The encoding of one window, float32 [C, H, W] (read-only; valid until the next call)."""
        cleared = self._clear_written()
        if self.encoding == "counts":
            self._written = _add_counts(
                self._grid, events, self.sensor_size, self._scratch, clear=not cleared
            )
        else:
            self._written = _add_voxels(
                self._grid,
                events,
                self.sensor_size,
                self.num_bins,
                t_start_us,
                t_end_us,
                self._scratch,
                clear=not cleared,
            )
        out = self._grid.reshape(self._shape)
        out.flags.writeable = False
        return out
