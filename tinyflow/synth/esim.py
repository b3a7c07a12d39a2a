"""ESIM-style event generation from log intensity sampled at render times.

Between two render times each pixel's log intensity is taken as linear in time; every
crossing of its reference level ± its contrast threshold emits one event at the interpolated
crossing time, and moves the reference level by one threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tinyflow.events.core import Events


@dataclass(frozen=True)
class ContrastThresholds:
    """Per-pixel log-intensity contrast thresholds, float64 [H, W] each (all > 0)."""

    on: np.ndarray
    off: np.ndarray

    @classmethod
    def sample(
        cls, sensor_size: tuple[int, int], mean: float, std: float, minimum: float, rng: np.random.Generator
    ) -> ContrastThresholds:
        """Draw ON and OFF thresholds independently per pixel from N(mean, std), clipped at ``minimum``."""
        on = np.maximum(rng.normal(mean, std, size=sensor_size), minimum)
        off = np.maximum(rng.normal(mean, std, size=sensor_size), minimum)
        return cls(on, off)

    def initial_reference(self, log_frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Reference levels uniformly placed so that ``log_frame`` sits strictly between two crossings."""
        return log_frame - self.on + rng.uniform(size=log_frame.shape) * (self.on + self.off)


def threshold_crossing_events(
    log_frames: Iterable[tuple[float, np.ndarray]], thresholds: ContrastThresholds, reference: np.ndarray
) -> Events:
    """Events of every threshold crossing, sorted by time (ties keep pixel order).

    Args:
        log_frames: (t_us, log intensity float [H, W]) pairs at increasing times; the first pair is
            the starting state and emits nothing.
        thresholds: per-pixel ON/OFF thresholds.
        reference: float [H, W] reference levels at the first frame, with
            ``reference - off < log_frame < reference + on``.
    Returns:
        Events with integer-µs timestamps (crossing times rounded to the nearest µs), x = column,
        y = row, p = 1 for a rise (ON) and 0 for a fall (OFF).
    """
    frames = iter(log_frames)
    t_prev, log_prev = next(frames)
    width = log_prev.shape[1]
    reference = reference.astype(np.float64).ravel()
    on, off = thresholds.on.ravel(), thresholds.off.ravel()
    log_prev = log_prev.astype(np.float64).ravel()
    pixels: list[np.ndarray] = []
    times: list[np.ndarray] = []
    rising: list[np.ndarray] = []
    for t_now, log_frame in frames:
        log_now = log_frame.astype(np.float64).ravel()
        num_on = np.floor((log_now - reference) / on)
        num_off = np.floor((reference - log_now) / off)
        active = np.flatnonzero((num_on > 0) | (num_off > 0))
        if active.size:
            is_on = num_on[active] > 0
            count = np.where(is_on, num_on[active], num_off[active]).astype(np.int64)
            step = np.where(is_on, on[active], -off[active])
            first = np.cumsum(count) - count
            k = np.arange(int(count.sum())) - np.repeat(first, count) + 1
            pixel = np.repeat(active, count)
            level = reference[pixel] + k * np.repeat(step, count)
            start = log_prev[pixel]
            fraction = np.clip((level - start) / (log_now[pixel] - start), 0.0, 1.0)
            times.append(np.rint(t_prev + fraction * (t_now - t_prev)).astype(np.int64))
            pixels.append(pixel)
            rising.append(np.repeat(is_on, count))
            reference[active] += count * step
        t_prev, log_prev = t_now, log_now
    if not times:
        return Events.empty()
    t_us = np.concatenate(times)
    order = np.argsort(t_us, kind="stable")
    pixel = np.concatenate(pixels)[order]
    return Events(
        (pixel % width).astype(np.uint16),
        (pixel // width).astype(np.uint16),
        t_us[order],
        np.concatenate(rising)[order].astype(np.uint8),
    )
