"""The event model: one container of (x, y, t, p) events used by every stage.

Conventions: ``x`` is the pixel column and ``y`` the pixel row (both integer pixel
coordinates), ``t_us`` is an integer timestamp in microseconds (non-decreasing), and
``p`` is the polarity, 0 = OFF and 1 = ON. Sensor sizes are always ``(height, width)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class EventDataError(ValueError):
    """Raised for malformed event data; the message names the source, the key and what was expected."""


def _where(source: str | None) -> str:
    return f"{source}: " if source else ""


@dataclass(frozen=True)
class Events:
    """A time-ordered set of events stored as parallel numpy arrays.

    Attributes:
        x: int array [N], pixel column.
        y: int array [N], pixel row.
        t_us: int64 array [N], microseconds, non-decreasing.
        p: uint8 array [N], polarity (0 = OFF, 1 = ON).
    """

    x: np.ndarray
    y: np.ndarray
    t_us: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:
        return int(self.t_us.shape[0])

    def __getitem__(self, index: slice | np.ndarray) -> Events:
        """Select events by a slice or an index/boolean mask (keeps time order for masks)."""
        return Events(self.x[index], self.y[index], self.t_us[index], self.p[index])

    @classmethod
    def empty(cls) -> Events:
        return cls(
            np.zeros(0, np.uint16), np.zeros(0, np.uint16), np.zeros(0, np.int64), np.zeros(0, np.uint8)
        )

    @classmethod
    def concatenate(cls, parts: list[Events]) -> Events:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(e, k) for e in parts]) for k in ("x", "y", "t_us", "p")))

    @property
    def polarity_sign(self) -> np.ndarray:
        """Polarity as float32 -1 (OFF) / +1 (ON)."""
        return self.p.astype(np.float32) * 2.0 - 1.0

    @property
    def duration_us(self) -> int:
        return int(self.t_us[-1] - self.t_us[0]) if len(self) else 0

    def validate(self, sensor_size: tuple[int, int] | None = None, source: str | None = None) -> Events:
        """Check shapes, dtypes, time order, coordinate range and polarity values.

        Args:
            sensor_size: ``(height, width)``; when given, coordinates must lie inside it.
            source: name of the file (or other origin) quoted in error messages.

        Returns:
            ``self``, so the call can be chained.

        Raises:
            EventDataError: naming the source, the offending key and what was expected.
        """
        where = _where(source)
        n = len(self)
        for key in ("x", "y", "t_us", "p"):
            arr = getattr(self, key)
            if not isinstance(arr, np.ndarray) or arr.ndim != 1:
                raise EventDataError(
                    f"{where}events key '{key}' must be a 1-D numpy array, got {type(arr).__name__} "
                    f"with shape {getattr(arr, 'shape', None)}"
                )
            if arr.shape[0] != n:
                raise EventDataError(
                    f"{where}events key '{key}' has {arr.shape[0]} entries, expected {n} (as 't_us')"
                )
            if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
                raise EventDataError(f"{where}events key '{key}' must have an integer dtype, got {arr.dtype}")
        if n == 0:
            return self
        if np.any(self.t_us[1:] < self.t_us[:-1]):
            i = int(np.argmax(self.t_us[1:] < self.t_us[:-1]))
            raise EventDataError(
                f"{where}events key 't' must be non-decreasing; t[{i + 1}]={self.t_us[i + 1]} < t[{i}]={self.t_us[i]}"
            )
        pmax = int(self.p.max())
        if int(self.p.min()) < 0 or pmax > 1:
            raise EventDataError(
                f"{where}events key 'p' must be 0 (OFF) or 1 (ON), got values in "
                f"[{int(self.p.min())}, {pmax}]"
            )
        if sensor_size is not None:
            height, width = sensor_size
            for key, limit in (("x", width), ("y", height)):
                arr = getattr(self, key)
                lo, hi = int(arr.min()), int(arr.max())
                if lo < 0 or hi >= limit:
                    raise EventDataError(
                        f"{where}events key '{key}' must lie in [0, {limit - 1}] for sensor_size (height, width)="
                        f"{tuple(sensor_size)}, got values in [{lo}, {hi}]"
                    )
        return self
