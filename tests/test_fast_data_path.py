"""The optimised data path equals the implementation it replaced, bit for bit.

The reference functions below are the previous implementations (encodings, time look-ups, per-window
reads), kept here verbatim in substance; each optimised function is compared with them on the real ECD
slices in ../shared/data/ecd (as read and as a canonical file, through a cropped view) and on random
events with the edge cases (events outside the window span, at its ends, zero-length spans, empty windows).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyflow.events import encodings
from tinyflow.events.core import Events
from tinyflow.events.encodings import WindowEncoder, encode, event_counts, voxel_grid
from tinyflow.events.windows import windows_by_count, windows_by_duration
from tinyflow.io import open_recording, recording, write_canonical
from tinyflow.io.ecd import open_ecd
from tinyflow.io.encoded import encoded_windows
from tinyflow.io.view import RecordingView

ECD_SLICES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ecd"
REAL = ["boxes_rotation", "shapes_rotation", "slider_depth_head"]
SENSOR = (24, 32)


def reference_counts(events: Events, sensor_size: tuple[int, int]) -> np.ndarray:
    height, width = sensor_size
    pixel = events.y.astype(np.int64) * width + events.x.astype(np.int64)
    flat = (1 - events.p.astype(np.int64)) * (height * width) + pixel
    return np.bincount(flat, minlength=2 * height * width).astype(np.float32).reshape(2, height, width)


def reference_voxel(
    events: Events, sensor_size: tuple[int, int], num_bins: int, t_start_us: int, t_end_us: int
) -> np.ndarray:
    height, width = sensor_size
    plane = height * width
    grid = np.zeros(num_bins * plane, np.float32)
    if len(events) == 0:
        return grid.reshape(num_bins, height, width)
    span = t_end_us - t_start_us
    t_norm = np.zeros(len(events)) if span <= 0 else (events.t_us - t_start_us).astype(np.float64) / span
    b = t_norm * (num_bins - 1)
    lower = np.clip(np.floor(b).astype(np.int64), 0, num_bins - 1)
    frac = b - lower
    pixel = events.y.astype(np.int64) * width + events.x.astype(np.int64)
    sign = events.polarity_sign
    upper = lower + 1
    has_upper = upper < num_bins
    index = np.concatenate([lower * plane + pixel, (upper * plane + pixel)[has_upper]])
    weight = np.concatenate([sign * (1.0 - frac), (sign * frac)[has_upper]]).astype(np.float32)
    np.add.at(grid, index, weight)
    return grid.reshape(num_bins, height, width)


def reference_index_at_time(rec: recording.Recording, t_us: np.ndarray) -> np.ndarray:
    queries = np.atleast_1d(np.asarray(t_us, dtype=np.int64))
    table = rec.ms_to_idx().astype(np.int64)
    n = rec.num_events
    out = np.empty(queries.shape, dtype=np.int64)
    for i, q in enumerate(queries):
        ms = q // 1000
        if q <= 0 or n == 0:
            out[i] = 0
        elif ms >= len(table):
            out[i] = n
        else:
            lo = int(table[ms])
            hi = int(table[ms + 1]) if ms + 1 < len(table) else n
            if q % 1000 == 0 or hi <= lo:
                out[i] = lo
            else:
                out[i] = lo + int(np.searchsorted(rec._read_t_us(lo, hi), q, side="left"))
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shapes, dtypes and bits (so -0.0 differs from 0.0)."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def random_events(n: int, rng: np.random.Generator, sensor_size: tuple[int, int] = SENSOR) -> Events:
    t_us = np.sort(rng.integers(0, 50_000, n)).astype(np.int64)
    return Events(
        rng.integers(0, sensor_size[1], n).astype(np.uint16),
        rng.integers(0, sensor_size[0], n).astype(np.uint16),
        t_us,
        rng.integers(0, 2, n).astype(np.uint8),
    )


@pytest.fixture(scope="module", params=REAL)
def real(request, tmp_path_factory) -> tuple[recording.Recording, recording.Recording, RecordingView]:
    """A real ECD slice: in memory, as a canonical HDF5 file, and as a cropped time slice of that file."""
    folder = ECD_SLICES / request.param
    if not folder.is_dir():
        pytest.skip(f"the real ECD slices are not at {ECD_SLICES} (see shared/data/README.md)")
    memory = open_ecd(ECD_SLICES, request.param, undistort=False)
    path = tmp_path_factory.mktemp("canonical") / f"{request.param}.h5"
    write_canonical(path, memory.events(0, memory.num_events), memory.sensor_size)
    canonical = open_recording(path)
    view = RecordingView(canonical, time_range_us=(2000, canonical.t_end_us - 1000), crop=(120, 160))
    return memory, canonical, view


def test_encodings_equal_the_reference_on_real_windows(real) -> None:
    for rec in real:
        for window in windows_by_count(rec, 997) + windows_by_duration(rec, 1500):
            events, span = rec.events(window.start, window.stop), (window.t_start_us, window.t_end_us)
            assert same_bits(event_counts(events, rec.sensor_size), reference_counts(events, rec.sensor_size))
            for num_bins in (1, 2, 5):
                expected = reference_voxel(events, rec.sensor_size, num_bins, *span)
                assert same_bits(voxel_grid(events, rec.sensor_size, num_bins, *span), expected)


@pytest.mark.parametrize("num_bins", [1, 2, 3, 5, 9])
def test_voxel_grid_equals_the_reference_on_edge_spans(num_bins: int) -> None:
    """Events before, at and after the span's ends, a zero-length span, a reversed span, no events."""
    rng = np.random.default_rng(num_bins)
    events = random_events(3000, rng)
    for span in [
        (0, 50_000),
        (10_000, 20_000),
        (20_000, 20_000),
        (30_000, 10_000),
        (-7, 3),
        (49_999, 60_000),
    ]:
        expected = reference_voxel(events, SENSOR, num_bins, *span)
        assert same_bits(voxel_grid(events, SENSOR, num_bins, *span), expected)
        assert same_bits(encode(events, SENSOR, "voxel", num_bins, *span), expected)
    empty = events[:0]
    assert same_bits(
        voxel_grid(empty, SENSOR, num_bins, 0, 10), reference_voxel(empty, SENSOR, num_bins, 0, 10)
    )


@pytest.mark.parametrize("coordinates, polarity", [(np.int64, np.uint8), (np.int32, np.bool_)])
def test_encodings_equal_the_reference_for_other_event_dtypes(coordinates: type, polarity: type) -> None:
    """Coordinates wider than uint16 and boolean polarities take the same arithmetic, also in a stream."""
    base = random_events(5000, np.random.default_rng(5))
    events = Events(
        base.x.astype(coordinates), base.y.astype(coordinates), base.t_us, base.p.astype(polarity)
    )
    encoders = {encoding: WindowEncoder(SENSOR, encoding, 5) for encoding in ("counts", "voxel")}
    for stop in (len(events), 40, len(events)):  # cleared whole, then entry by entry
        window, span = events[:stop], (int(events.t_us[0]), int(events.t_us[stop - 1]))
        expected = {
            "counts": reference_counts(base[:stop], SENSOR),
            "voxel": reference_voxel(base[:stop], SENSOR, 5, *span),
        }
        for encoding, encoder in encoders.items():
            assert same_bits(encode(window, SENSOR, encoding, 5, *span), expected[encoding])
            assert same_bits(encoder(window, *span), expected[encoding])


def test_counts_past_float32_integers_count_in_integers(monkeypatch) -> None:
    """Above COUNT_LIMIT events a window is counted in integers and rounded once, as before."""
    monkeypatch.setattr(encodings, "COUNT_LIMIT", 16)
    events = random_events(4000, np.random.default_rng(3), (2, 2))
    assert same_bits(event_counts(events, (2, 2)), reference_counts(events, (2, 2)))
    encoder = WindowEncoder((2, 2), "counts", 2)
    assert same_bits(encoder(events, 0, 1), reference_counts(events, (2, 2)))
    assert same_bits(encoder(events[:5], 0, 1), reference_counts(events[:5], (2, 2)))


@pytest.mark.parametrize("encoding", ["counts", "voxel"])
def test_the_reused_encoder_equals_encode_window_after_window(encoding: str) -> None:
    """Large windows (cleared whole) and small ones (cleared entry by entry) in any order."""
    rng = np.random.default_rng(11)
    events = random_events(20_000, rng)
    encoder = WindowEncoder(SENSOR, encoding, 5)
    for size in [5000, 3, 0, 12_000, 40, 1, 2500, 7]:
        start = int(rng.integers(0, len(events) - size + 1))
        window = events[start : start + size]
        span = (int(window.t_us[0]), int(window.t_us[-1])) if size else (0, 0)
        out = encoder(window, *span)
        assert same_bits(out, encode(window, SENSOR, encoding, 5, *span))
        assert not out.flags.writeable
    with pytest.raises(ValueError, match="unknown encoding 'histogram'"):
        WindowEncoder(SENSOR, "histogram", 5)
    with pytest.raises(ValueError, match="num_bins must be >= 1"):
        WindowEncoder(SENSOR, "voxel", 0)


@pytest.mark.parametrize("span", [1, 500, 4096, recording.READ_SPAN])
def test_window_events_equal_events_of_each_window(real, span: int) -> None:
    """Consecutive, overlapping, out-of-order and empty windows, read in spans of every size."""
    for rec in real:
        n = rec.num_events
        bounds = np.array([(0, 10), (10, 10), (10, 700), (650, 900), (300, 400), (900, n), (n, n), (0, n)])
        got = list(rec.window_events(bounds, span))
        assert len(got) == len(bounds)
        for (start, stop), events in zip(bounds, got, strict=True):
            expected = rec.events(int(start), int(stop))
            for key in ("x", "y", "t_us", "p"):
                np.testing.assert_array_equal(getattr(events, key), getattr(expected, key))
                assert getattr(events, key).dtype == getattr(expected, key).dtype
        with pytest.raises(IndexError, match=r"event range \[5, 4\) is outside"):
            list(rec.window_events(np.array([(0, 3), (5, 4)]), span))
        with pytest.raises(IndexError, match="is outside"):
            list(rec.window_events(np.array([(0, n + 1)]), span))


@pytest.mark.parametrize("encoding", ["counts", "voxel"])
def test_encoded_windows_equal_encode_of_each_window(real, encoding: str) -> None:
    for rec in real:
        windows = windows_by_count(rec, 1000)
        got = [(w, x.copy()) for w, x in encoded_windows(rec, windows, encoding, 5, span=4000)]
        assert [w for w, _ in got] == windows
        for window, x in got:
            events = rec.events(window.start, window.stop)
            expected = encode(events, rec.sensor_size, encoding, 5, window.t_start_us, window.t_end_us)
            assert same_bits(x, expected)


@pytest.mark.parametrize("span, gap", [(recording.TIMESTAMP_SPAN, recording.TIMESTAMP_GAP), (64, 8), (1, 1)])
def test_time_look_ups_equal_the_reference(real, monkeypatch, span: int, gap: int) -> None:
    """index_at_time against the per-query loop it replaced, timestamps_at against plain indexing, with
    reads grouped in spans and gaps of every size."""
    monkeypatch.setattr(recording, "TIMESTAMP_SPAN", span)
    monkeypatch.setattr(recording, "TIMESTAMP_GAP", gap)
    rng = np.random.default_rng(5)
    for rec in real:
        t_all = rec._read_t_us(0, rec.num_events)
        end = int(t_all[-1])
        queries = np.concatenate(
            [
                rng.integers(-2000, end + 3000, 300),
                t_all[rng.integers(0, len(t_all), 50)],
                np.arange(-1000, end + 2001, 1000),
                [0, 1, end, end + 1, -1],
            ]
        )
        np.testing.assert_array_equal(rec.index_at_time(queries), reference_index_at_time(rec, queries))
        np.testing.assert_array_equal(rec.index_at_time(17), reference_index_at_time(rec, 17))
        indices = np.concatenate([rng.integers(0, len(t_all), 200), [0, len(t_all) - 1, 5, 5]])
        np.testing.assert_array_equal(rec.timestamps_at(indices), t_all[indices])
        assert rec.timestamps_at(np.zeros(0, np.int64)).shape == (0,)


def test_count_windows_equal_their_definition(real) -> None:
    for rec in real:
        t_all = rec._read_t_us(0, rec.num_events)
        windows = windows_by_count(rec, 1234)
        assert len(windows) == rec.num_events // 1234
        for k, w in enumerate(windows):
            assert (w.start, w.stop) == (k * 1234, (k + 1) * 1234)
            assert (w.t_start_us, w.t_end_us) == (int(t_all[w.start]), int(t_all[w.stop - 1]))
            assert all(type(v) is int for v in (w.start, w.stop, w.t_start_us, w.t_end_us))
