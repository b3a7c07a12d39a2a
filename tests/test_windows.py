"""Windows over recordings against brute force, and the same windows from both HDF5 layouts."""

from __future__ import annotations

import numpy as np
import pytest
from test_io import SENSOR, H, W, random_events, write_event_flow_file

from tinyflow.events.core import Events
from tinyflow.events.groundtruth import FlowGT
from tinyflow.events.windows import (
    count_window_bounds,
    windows_by_count,
    windows_by_duration,
    windows_from_gt,
)
from tinyflow.io import open_recording, write_canonical


@pytest.fixture
def recording_pair(tmp_path):
    """The same events and GT flow as an event_flow-layout file and as a canonical file."""
    rng = np.random.default_rng(11)
    events = random_events(rng, n=3000, t_start_us=0)
    clock_us = np.arange(10, dtype=np.int64) * (int(events.t_us[-1]) // 10) + 500
    maps = {g: rng.normal(size=(10, 2, H, W)).astype(np.float32) for g in ("flow_dt1", "flow_dt4")}
    t0_s = 1234.5
    write_event_flow_file(
        tmp_path / "ef.h5", events, t0_s, clock_us, maps, images=None, t0_attr=True, polarity="bool"
    )
    flows = {
        "dt1": FlowGT(maps["flow_dt1"][1:], clock_us[:-1], clock_us[1:]),
        "dt4": FlowGT(maps["flow_dt4"][4:], clock_us[:-4], clock_us[4:]),
    }
    write_canonical(tmp_path / "canon.h5", events, SENSOR, t0_us=round(t0_s * 1e6), flows=flows)
    return events, open_recording(tmp_path / "ef.h5"), open_recording(tmp_path / "canon.h5")


def test_count_windows_match_brute_force(recording_pair) -> None:
    events, _, canon = recording_pair
    windows = windows_by_count(canon, 256)
    assert len(windows) == len(events) // 256
    for k, w in enumerate(windows):
        assert (w.start, w.stop) == (256 * k, 256 * (k + 1))
        assert (w.t_start_us, w.t_end_us) == (events.t_us[w.start], events.t_us[w.stop - 1])
    assert count_window_bounds(10, 20).shape == (0, 2)
    with pytest.raises(ValueError, match="events_per_window must be > 0"):
        count_window_bounds(10, 0)


def test_duration_windows_match_brute_force(recording_pair) -> None:
    events, _, canon = recording_pair
    duration = 1_337
    windows = windows_by_duration(canon, duration, t_begin_us=100)
    for k, w in enumerate(windows):
        t0 = 100 + k * duration
        inside = np.flatnonzero((events.t_us >= t0) & (events.t_us < t0 + duration))
        assert (w.t_start_us, w.t_end_us) == (t0, t0 + duration)
        if len(inside):
            assert (w.start, w.stop) == (inside[0], inside[-1] + 1)
        else:
            assert w.start == w.stop
    assert windows[-1].t_end_us <= events.t_us[-1] + 1


def test_gt_windows_hold_the_events_of_each_interval(recording_pair) -> None:
    events, _, canon = recording_pair
    for name, span in (("dt1", 1), ("dt4", 4)):
        windows = windows_from_gt(canon, name)
        gt = canon.flow(name)
        assert len(windows) == len(gt) == 10 - span
        for k, w in enumerate(windows):
            assert w.gt_index == k and (w.t_start_us, w.t_end_us) == (gt.t_start_us[k], gt.t_end_us[k])
            inside = (events.t_us >= w.t_start_us) & (events.t_us < w.t_end_us)
            assert w.num_events == inside.sum() and inside[w.start : w.stop].all()


def test_event_flow_and_canonical_layouts_give_identical_windows_and_gt(recording_pair) -> None:
    _, ef, canon = recording_pair
    makers = {
        "count": lambda r: windows_by_count(r, 300),
        "duration": lambda r: windows_by_duration(r, 2_000),
        "dt1": lambda r: windows_from_gt(r, "dt1"),
        "dt4": lambda r: windows_from_gt(r, "dt4"),
    }
    for kind, make in makers.items():
        ef_windows, canon_windows = make(ef), make(canon)
        assert ef_windows == canon_windows and ef_windows, kind
        for w in ef_windows:
            a, b = ef.events(w.start, w.stop), canon.events(w.start, w.stop)
            for key in ("x", "y", "t_us", "p"):
                np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
            if kind in ("dt1", "dt4"):
                np.testing.assert_array_equal(
                    ef.flow_map(kind, w.gt_index)[0], canon.flow_map(kind, w.gt_index)[0]
                )


def test_empty_recording_range_gives_empty_windows(tmp_path) -> None:
    events = Events(
        np.array([1], np.uint16), np.array([1], np.uint16), np.array([5_000]), np.array([1], np.uint8)
    )
    write_canonical(tmp_path / "one.h5", events, SENSOR)
    recording = open_recording(tmp_path / "one.h5")
    windows = windows_by_duration(recording, 1_000)
    assert [w.num_events for w in windows] == [0, 0, 0, 0, 0]
