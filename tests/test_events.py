"""Events container, encodings and flow-aware transforms against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from tinyflow.cmax.sharpness import sharpness_gain, warped_event_image
from tinyflow.events.core import EventDataError, Events
from tinyflow.events.encodings import event_counts, event_list, pad_event_lists, voxel_grid
from tinyflow.events.transforms import (
    FlowAugmentation,
    WindowSample,
    apply_transforms,
    crop,
    downsample,
    flip_horizontal,
    flip_polarity,
    flip_vertical,
    hot_pixel_mask,
    remove_pixels,
    reverse_time,
)

SENSOR = (12, 16)


def random_events(rng: np.random.Generator, n: int, sensor=SENSOR, t_span_us: int = 10_000) -> Events:
    height, width = sensor
    t = np.sort(rng.integers(0, t_span_us, n)).astype(np.int64)
    return Events(
        rng.integers(0, width, n).astype(np.uint16),
        rng.integers(0, height, n).astype(np.uint16),
        t,
        rng.integers(0, 2, n).astype(np.uint8),
    )


def translating_edges(
    rng: np.random.Generator, sensor=(32, 40), velocity_px=(6.0, -3.0), t_span_us=10_000, n=4000
) -> WindowSample:
    """Events of random texture points moving with constant velocity (pixels per window)."""
    height, width = sensor
    anchors = rng.uniform([4, 4], [width - 10, height - 8], size=(60, 2))
    which = rng.integers(0, len(anchors), n)
    t = np.sort(rng.integers(0, t_span_us, n)).astype(np.int64)
    tau = t / t_span_us
    x = np.rint(anchors[which, 0] + velocity_px[0] * tau).astype(np.int64)
    y = np.rint(anchors[which, 1] + velocity_px[1] * tau).astype(np.int64)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    events = Events(
        x[inside].astype(np.uint16),
        y[inside].astype(np.uint16),
        t[inside],
        rng.integers(0, 2, inside.sum()).astype(np.uint8),
    )
    flow = np.zeros((2, height, width), np.float32)
    flow[0], flow[1] = velocity_px
    # A non-uniform field outside the texture's reach checks that maps are mirrored, not only negated.
    flow[:, :2, :] = rng.normal(size=(2, 2, width))
    valid = rng.random((height, width)) > 0.1
    return WindowSample(events, sensor, 0, t_span_us, flow, valid)


def test_validate_names_key_and_expectation() -> None:
    rng = np.random.default_rng(0)
    ev = random_events(rng, 50)
    ev.validate(SENSOR, source="a.h5")
    bad_t = Events(ev.x, ev.y, ev.t_us[::-1].copy(), ev.p)
    with pytest.raises(EventDataError, match=r"a\.h5: events key 't' must be non-decreasing"):
        bad_t.validate(SENSOR, source="a.h5")
    with pytest.raises(EventDataError, match=r"key 'x' must lie in \[0, 7\]"):
        ev.validate((12, 8), source="a.h5")
    with pytest.raises(EventDataError, match="key 'p' must be 0"):
        Events(ev.x, ev.y, ev.t_us, ev.p + 1).validate(SENSOR)
    with pytest.raises(EventDataError, match="key 'x' must have an integer dtype"):
        Events(ev.x.astype(np.float32), ev.y, ev.t_us, ev.p).validate(SENSOR)
    with pytest.raises(EventDataError, match="key 'y' has 49 entries, expected 50"):
        Events(ev.x, ev.y[:-1], ev.t_us, ev.p).validate(SENSOR)
    Events.empty().validate(SENSOR)


def test_counts_match_loop() -> None:
    rng = np.random.default_rng(1)
    ev = random_events(rng, 500)
    expected = np.zeros((2, *SENSOR), np.float32)
    for x, y, p in zip(ev.x, ev.y, ev.p, strict=True):
        expected[0 if p == 1 else 1, y, x] += 1
    np.testing.assert_array_equal(event_counts(ev, SENSOR), expected)


@pytest.mark.parametrize("num_bins", [1, 2, 5])
def test_voxel_grid_matches_loop(num_bins: int) -> None:
    rng = np.random.default_rng(2)
    ev = random_events(rng, 300)
    t0, t1 = 100, 9_900
    inside = (ev.t_us >= t0) & (ev.t_us <= t1)
    expected = _loop_voxel(ev[inside], num_bins, t0, t1)
    np.testing.assert_allclose(voxel_grid(ev[inside], SENSOR, num_bins, t0, t1), expected, atol=1e-5)
    np.testing.assert_allclose(
        voxel_grid(ev, SENSOR, num_bins, 0, 10_000).sum(), ev.polarity_sign.sum(), atol=1e-3
    )


def _loop_voxel(ev: Events, num_bins: int, t0: int, t1: int) -> np.ndarray:
    grid = np.zeros((num_bins, *SENSOR), np.float64)
    for x, y, t, p in zip(ev.x, ev.y, ev.t_us, ev.p, strict=True):
        b = (t - t0) / (t1 - t0) * (num_bins - 1)
        for k in range(num_bins):
            weight = 1.0 if num_bins == 1 else max(0.0, 1.0 - abs(b - k))
            grid[k, y, x] += (1.0 if p else -1.0) * weight
    return grid


def test_empty_window_encodes_to_zeros() -> None:
    empty = Events.empty()
    assert not np.isnan(voxel_grid(empty, SENSOR, 5, 0, 0)).any()
    assert voxel_grid(empty, SENSOR, 5, 0, 1000).sum() == 0
    assert event_counts(empty, SENSOR).sum() == 0
    assert event_list(empty, 0, 1000).shape == (0, 4)
    padded, mask = pad_event_lists([event_list(empty, 0, 1), np.ones((3, 4), np.float32)])
    assert padded.shape == (2, 3, 4) and mask.sum() == 3 and not mask[0].any()


def test_event_list_columns() -> None:
    ev = Events(
        np.array([3, 5], np.uint16),
        np.array([1, 2], np.uint16),
        np.array([100, 300]),
        np.array([0, 1], np.uint8),
    )
    np.testing.assert_allclose(event_list(ev, 100, 500), [[3, 1, 0.0, -1], [5, 2, 0.5, 1]])


def _gain(sample: WindowSample) -> float:
    return sharpness_gain(
        sample.events, sample.flow, sample.t_start_us, sample.t_end_us, sample.sensor_size, bilinear=True
    )


@pytest.mark.parametrize("transform", [flip_horizontal, flip_vertical, flip_polarity])
def test_spatial_transforms_keep_sharpness(transform) -> None:
    sample = translating_edges(np.random.default_rng(3))
    before = _gain(sample)
    assert before > 1.2
    assert _gain(transform(sample)) == pytest.approx(before, rel=1e-9)


def test_flips_are_involutions_and_consistent() -> None:
    sample = translating_edges(np.random.default_rng(4))
    for transform in (flip_horizontal, flip_vertical, reverse_time):
        twice = transform(transform(sample))
        np.testing.assert_array_equal(twice.events.x, sample.events.x)
        np.testing.assert_array_equal(twice.events.t_us, sample.events.t_us)
        np.testing.assert_array_equal(twice.events.p, sample.events.p)
        np.testing.assert_array_equal(twice.flow, sample.flow)
        np.testing.assert_array_equal(twice.valid, sample.valid)
    flipped = flip_horizontal(sample)
    width = sample.sensor_size[1]
    assert flipped.flow[0, 0, 0] == -sample.flow[0, 0, width - 1]
    assert flipped.flow[1, 1, 2] == sample.flow[1, 1, width - 3]


def test_time_reversal_mirrors_the_reference_time() -> None:
    sample = translating_edges(np.random.default_rng(5))
    reversed_sample = reverse_time(sample)
    assert np.all(np.diff(reversed_sample.events.t_us) >= 0)
    at_end = warped_event_image(
        sample.events, sample.flow, 0, sample.t_end_us, sample.sensor_size, sample.t_end_us
    )
    reversed_at_start = warped_event_image(
        reversed_sample.events, reversed_sample.flow, 0, sample.t_end_us, sample.sensor_size, 0
    )
    np.testing.assert_allclose(np.sort(reversed_at_start.ravel()), np.sort(at_end.ravel()), atol=1e-9)
    np.testing.assert_allclose(reversed_at_start, at_end, atol=1e-9)
    assert _gain(reversed_sample) > 1.2


def test_crop_and_downsample_keep_flow_consistent() -> None:
    sample = translating_edges(np.random.default_rng(6), sensor=(32, 40), velocity_px=(12.0, -8.0))
    cropped = crop(sample, 4, 8, 24, 24)
    assert cropped.sensor_size == (24, 24)
    assert cropped.events.x.max() < 24 and cropped.events.y.max() < 24
    np.testing.assert_array_equal(cropped.flow, sample.flow[:, 4:28, 8:32])
    assert _gain(cropped) > 1.2
    small = downsample(sample, 2)
    assert small.sensor_size == (16, 20)
    np.testing.assert_allclose(small.flow[:, 5, 5], np.array([12.0, -8.0]) / 2, atol=1e-6)
    assert _gain(small) > 1.2
    with pytest.raises(ValueError, match="does not fit"):
        crop(sample, 10, 0, 30, 10)
    with pytest.raises(ValueError, match="divide sensor_size"):
        downsample(sample, 3)


def test_augmentation_draw_is_seeded() -> None:
    aug = FlowAugmentation(0.5, 0.5, 0.5, 0.5)
    draws = {aug.draw(np.random.default_rng(s)) for s in range(64)}
    assert len(draws) > 4
    assert aug.draw(np.random.default_rng(7)) == aug.draw(np.random.default_rng(7))
    sample = translating_edges(np.random.default_rng(8))
    assert _gain(apply_transforms(sample, ("flip_x", "flip_y", "polarity"))) == pytest.approx(
        _gain(sample), rel=1e-9
    )
    with pytest.raises(ValueError, match="unknown transform 'spin'"):
        apply_transforms(sample, ("spin",))


def test_hot_pixels_are_found_and_removed() -> None:
    rng = np.random.default_rng(9)
    ev = random_events(rng, 2000, t_span_us=1_000_000)
    hot = Events(
        np.full(500, 3, np.uint16),
        np.full(500, 7, np.uint16),
        np.sort(rng.integers(0, 1_000_000, 500)),
        np.ones(500, np.uint8),
    )
    merged = Events.concatenate([ev, hot])
    order = np.argsort(merged.t_us, kind="stable")
    merged = merged[order]
    counts = event_counts(merged, SENSOR).sum(0)
    mask = hot_pixel_mask(counts, 1_000_000, num_std=5.0)
    assert mask[7, 3] and mask.sum() == 1
    assert hot_pixel_mask(counts, 1_000_000, max_rate_hz=100.0, num_std=None).sum() == 1
    cleaned = remove_pixels(merged, mask)
    assert len(cleaned) == len(merged) - ((merged.x == 3) & (merged.y == 7)).sum()
