"""Encodings of a window of events into network inputs and loss inputs.

All image encodings are float32 (C, H, W) numpy arrays; pixel (x, y) = (column, row).
"""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events

EVENT_LIST_COLUMNS = ("x", "y", "t_norm", "p_sign")


ENCODINGS = ("counts", "voxel")
COUNT_LIMIT = 1 << 24  # float32 counts are exact integers below 2**24
_SIGNS = np.array([-1.0, 1.0], np.float32)  # polarity sign by p


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


def _add_counts(
    grid: np.ndarray, events: Events, sensor_size: tuple[int, int], scratch: _Scratch
) -> list[np.ndarray] | None:
    """Add the per-pixel counts of ``events`` to the flat float32 [2 * H * W] ``grid`` (ON events in channel 0,
    OFF in channel 1); return the flat indices written (None: all of them)."""
    height, width = sensor_size
    index = _pixel_index(events, width, scratch)
    offset = scratch("offset", len(events), np.intp)  # the channel: OFF events one plane on
    np.take(np.array([height * width, 0], np.intp), events.p, out=offset, mode="clip")
    index += offset
    if len(index) >= COUNT_LIMIT:  # a pixel could pass 2**24: count in integers, round once
        grid += np.bincount(index, minlength=grid.size).astype(np.float32)
        return None
    np.add.at(grid, index, np.float32(1))
    return [index]


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
) -> list[np.ndarray]:
    """Add the voxel grid of ``events`` to the flat float32 ``grid`` of ``num_bins + 1`` planes of H * W (the
    last one a spill plane, discarded: it takes the upper neighbours beyond the last bin); return the flat
    indices written. Float32 accumulation in a fixed order (np.add.at is unbuffered and sequential): every
    event's lower temporal neighbour, then every event's upper one. The arithmetic is
    :func:`normalised_time`'s and the bilinear weights', step for step, in the work arrays of ``scratch``."""
    n = len(events)
    if n == 0:
        return []
    height, width = sensor_size
    plane = height * width
    b = scratch("b", n, np.float64)  # bin coordinate, then its fraction
    span = t_end_us - t_start_us
    if span <= 0:
        b.fill(0.0)
    else:
        offset = scratch("lower", n, np.int64)
        np.subtract(events.t_us, t_start_us, out=offset)
        np.copyto(b, offset, casting="same_kind")
        b /= span
    b *= num_bins - 1
    # Truncation equals floor wherever the clip leaves it (b >= 0); below 0 both clip to bin 0.
    lower = scratch("lower", n, np.int64)
    np.copyto(lower, b, casting="unsafe")
    np.maximum(lower, 0, out=lower)
    np.minimum(lower, num_bins - 1, out=lower)
    b -= lower
    lower *= plane
    lower += _pixel_index(events, width, scratch)
    upper = np.add(lower, plane, out=scratch("upper", n, np.int64))
    # Weights sign * (1 - frac) and sign * frac: rounded to float32, then times the sign (exact).
    sign = np.take(_SIGNS, events.p, out=scratch("sign", n, np.float32), mode="clip")
    lower_weight = np.subtract(1.0, b, out=scratch("lower_weight", n, np.float32), casting="same_kind")
    lower_weight *= sign
    upper_weight = scratch("upper_weight", n, np.float32)
    np.copyto(upper_weight, b, casting="same_kind")
    upper_weight *= sign
    np.add.at(grid, lower, lower_weight)
    np.add.at(grid, upper, upper_weight)
    return [lower, upper]


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
    grid = np.zeros((num_bins + 1) * height * width, np.float32)
    _add_voxels(grid, events, sensor_size, num_bins, t_start_us, t_end_us, _Scratch())
    return grid[: num_bins * height * width].reshape(num_bins, height, width)


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
    clears only the entries the previous window wrote (or the whole array when that is cheaper), then adds
    the new window's events. The returned array is read-only and is overwritten by the next call: copy it
    to keep it.
    """

    def __init__(self, sensor_size: tuple[int, int], encoding: str, num_bins: int) -> None:
        _check_encoding(encoding)
        if encoding == "voxel":
            _check_num_bins(num_bins)
        self.sensor_size, self.encoding, self.num_bins = tuple(sensor_size), encoding, num_bins
        channels = 2 if encoding == "counts" else num_bins
        self._shape = (channels, *self.sensor_size)
        spill = 0 if encoding == "counts" else 1  # the voxel grid's spill plane
        self._grid = np.zeros((channels + spill) * self.sensor_size[0] * self.sensor_size[1], np.float32)
        self._written: list[np.ndarray] | None = []  # views into _scratch, valid until the next call
        self._scratch = _Scratch()

    def _clear(self) -> None:
        written = self._written
        if written is None or sum(len(index) for index in written) * 16 > self._grid.size:
            self._grid.fill(0.0)
        else:
            for index in written:
                self._grid[index] = 0.0

    def __call__(self, events: Events, t_start_us: int, t_end_us: int) -> np.ndarray:
        """The encoding of one window, float32 [C, H, W] (read-only; valid until the next call)."""
        self._clear()
        if self.encoding == "counts":
            self._written = _add_counts(self._grid, events, self.sensor_size, self._scratch)
        else:
            self._written = _add_voxels(
                self._grid, events, self.sensor_size, self.num_bins, t_start_us, t_end_us, self._scratch
            )
        out = self._grid[: int(np.prod(self._shape))].reshape(self._shape)
        out.flags.writeable = False
        return out
