"""Sensor noise events: background activity and hot pixels (Poisson in time)."""

from __future__ import annotations

import numpy as np

from tinyflow.events.core import Events


def background_activity_events(
    sensor_size: tuple[int, int], duration_us: int, rate_hz: float, rng: np.random.Generator
) -> Events:
    """Events at ``rate_hz`` per pixel, uniform over pixels and times in [0, duration_us), random polarity.

    Unsorted; the count over the whole sensor is Poisson.
    """
    height, width = sensor_size
    count = int(rng.poisson(rate_hz * height * width * duration_us / 1e6))
    return Events(
        rng.integers(0, width, size=count).astype(np.uint16),
        rng.integers(0, height, size=count).astype(np.uint16),
        rng.integers(0, duration_us, size=count).astype(np.int64),
        rng.integers(0, 2, size=count).astype(np.uint8),
    )


def hot_pixel_events(
    sensor_size: tuple[int, int], duration_us: int, num_pixels: int, rate_hz: float, rng: np.random.Generator
) -> Events:
    """Events of ``num_pixels`` distinct random pixels each firing at ``rate_hz`` with random polarity.

    Unsorted.
    """
    height, width = sensor_size
    chosen = rng.choice(height * width, size=num_pixels, replace=False)
    counts = rng.poisson(rate_hz * duration_us / 1e6, size=num_pixels)
    pixel = np.repeat(chosen, counts)
    return Events(
        (pixel % width).astype(np.uint16),
        (pixel // width).astype(np.uint16),
        rng.integers(0, duration_us, size=pixel.size).astype(np.int64),
        rng.integers(0, 2, size=pixel.size).astype(np.uint8),
    )
