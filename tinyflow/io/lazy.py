"""Stacks of maps (GT flow, frames, depth) read one map at a time, for streaming large recordings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np


class ArrayLike(Protocol):
    """What the canonical writer needs of a stack of maps: shape, dtype and slicing on the first axis."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __getitem__(self, index: slice) -> np.ndarray: ...


class LazyMaps:
    """A read-only stack of K maps whose map k is computed (or read) by ``read(k)`` when indexed.

    Args:
        read: map k -> array of shape ``map_shape``.
        count: number of maps K.
        map_shape: shape of one map, e.g. ``(2, H, W)`` for flow.
        dtype: dtype of the maps.
    """

    def __init__(
        self, read: Callable[[int], np.ndarray], count: int, map_shape: tuple[int, ...], dtype: type
    ) -> None:
        self._read = read
        self.shape = (count, *map_shape)
        self.dtype = np.dtype(dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | slice) -> np.ndarray:
        if isinstance(index, slice):
            maps = [self[k] for k in range(*index.indices(len(self)))]
            return np.stack(maps) if maps else np.zeros((0, *self.shape[1:]), self.dtype)
        if not -len(self) <= index < len(self):
            raise IndexError(f"map {index} of a stack of {len(self)}")
        return np.asarray(self._read(index % len(self)), self.dtype)

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


def as_maps(maps: ArrayLike | np.ndarray | list) -> ArrayLike:
    """``maps`` itself when it is array-like (numpy, HDF5 dataset, :class:`LazyMaps`), else a numpy array."""
    return maps if hasattr(maps, "shape") and hasattr(maps, "dtype") else np.asarray(maps)
