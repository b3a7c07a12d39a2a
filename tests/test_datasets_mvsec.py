"""MVSEC: the original HDF5 / npz layout, GT accumulation (dt1, dt4), the protocol view, conversion."""

from __future__ import annotations

import filecmp

import h5py
import numpy as np
import pytest
from dataset_fixtures import MVSEC_INVALID_ROWS, MVSEC_SIZE, MVSEC_T0_S, MVSEC_VELOCITY, write_mvsec

from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.events.core import EventDataError
from tinyflow.io import open_recording
from tinyflow.io.convert import convert_dataset
from tinyflow.io.datasets import open_dataset_recording
from tinyflow.io.mvsec import accumulate_gt_flow, open_mvsec


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


@pytest.mark.parametrize("gt", ["hdf5", "npz"])
def test_reader_gives_events_frames_and_gt_of_both_gt_files(tmp_path, rng, gt):
    write_mvsec(tmp_path / "indoor_flying", "indoor_flying1", rng, gt=gt)
    recording = open_mvsec(tmp_path, "indoor_flying1")
    with h5py.File(tmp_path / "indoor_flying" / "indoor_flying1_data.hdf5") as file:
        raw = file["davis/left/events"][:]
        frame_ts = file["davis/left/image_raw_ts"][:]
    assert (recording.name, recording.sensor_size, recording.num_events) == (
        "indoor_flying1",
        MVSEC_SIZE,
        len(raw),
    )
    assert recording.t0_us == round(raw[0, 2] * 1e6)
    events = recording.events(0, recording.num_events)
    np.testing.assert_array_equal(events.x, raw[:, 0])
    np.testing.assert_array_equal(events.p, raw[:, 3] > 0)
    assert np.abs(events.t_us - (raw[:, 2] - raw[0, 2]) * 1e6).max() <= 1
    assert recording.flow_names == ["dt1", "dt4", "gt"]
    for name, frames in (("dt1", 1), ("dt4", 4)):
        t_start, t_end = recording.flow_intervals(name)
        np.testing.assert_allclose(t_end - t_start, frames * 32_000, atol=2)
        np.testing.assert_allclose(t_start[0] * 1e-6 + MVSEC_T0_S, frame_ts[0], atol=1e-6)
        for k in range(len(t_start)):
            flow, valid = recording.flow_map(name, k)
            expected = MVSEC_VELOCITY * (t_end[k] - t_start[k]) * 1e-6
            np.testing.assert_allclose(
                flow[:, valid], np.broadcast_to(expected[:, None], (2, valid.sum())), atol=1e-4
            )
            assert not valid[MVSEC_INVALID_ROWS].any() and 0.9 < valid.mean() < 0.96
            assert np.all(flow[:, ~valid] == 0)
    assert recording.frames().images.shape == (len(frame_ts), *MVSEC_SIZE)
    assert (recording.depth() is None) == (gt == "npz")


def test_accumulation_propagates_through_the_gt_maps():
    """A field that doubles at each GT interval: a long interval sums the scaled steps along the path."""
    ts = np.array([0, 100, 200, 300], np.int64)
    maps = [np.ones((2, 4, 40)) * [[[1.0]], [[0.0]]] * (k + 1) for k in range(3)]
    flow, valid = accumulate_gt_flow(lambda m: maps[m], ts, 50, 250)
    assert np.allclose(flow[0, valid], 0.5 * 1 + 2 + 0.5 * 3) and np.allclose(flow[1], 0)
    assert valid[:, :30].all() and not valid[:, -2:].any()  # points that leave the image are invalid
    short, short_valid = accumulate_gt_flow(lambda m: maps[m], ts, 120, 170)
    assert np.allclose(short[0], 0.5 * 2) and short_valid.all()
    with pytest.raises(ValueError, match="outside the GT"):
        accumulate_gt_flow(lambda m: maps[m], ts, 250, 350)


def test_protocol_view_cuts_crops_and_masks(tmp_path, rng):
    write_mvsec(tmp_path, "outdoor_day1", rng)
    full = open_mvsec(tmp_path, "outdoor_day1")
    view = open_dataset_recording(
        "mvsec", tmp_path, "outdoor_day1", time_range_s=[0.1, 0.3], crop=[256, 256], valid_rows=[0, 190]
    )
    assert view.sensor_size == (256, 256) and view.name == "outdoor_day1"
    assert view.t0_us == full.t0_us + 100_000
    start, stop = full.index_at_time(np.array([100_000, 300_000]))
    assert view.num_events == stop - start
    events = view.events(0, view.num_events)
    assert events.t_us.min() >= 0 and events.t_us.max() < 200_000 and events.x.max() < 256
    inside = full.events(start, stop)
    inside = inside[(inside.x >= 45) & (inside.x < 301) & (inside.y >= 2) & (inside.y < 258)]
    np.testing.assert_array_equal(events.x, inside.x - 45)
    np.testing.assert_array_equal(events.y, inside.y - 2)
    t_start, t_end = view.flow_intervals("dt1")
    assert t_start.min() >= 0 and t_end.max() <= 200_000 and len(t_start) == 5
    flow, valid = view.flow_map("dt1", 0)
    assert flow.shape == (2, 256, 256) and not valid[190:].any() and valid[20:190].all()
    windows = Windowing(mode="gt", flow_name="dt1").windows(view)
    assert [w.t_start_us for w in windows] == list(t_start)
    all_t_us = view.timestamps_at(np.arange(view.num_events))  # cropped-out events keep their index
    np.testing.assert_array_equal(view.ms_to_idx(), np.searchsorted(all_t_us, np.arange(201) * 1000))
    by_gt_maps = open_dataset_recording("mvsec", tmp_path, "outdoor_day1", gt_map_range=[2, 7])
    gt_start, _ = full.flow_intervals("gt")
    assert by_gt_maps.t0_us == full.t0_us + gt_start[2] // 1000 * 1000
    with pytest.raises(EventDataError, match="does not overlap the recording"):
        open_dataset_recording("mvsec", tmp_path, "outdoor_day1", time_range_s=[222.4, 240.4])


def test_conversion_keeps_every_gt_set_and_is_deterministic(tmp_path, rng):
    write_mvsec(tmp_path / "src", "indoor_flying2", rng)
    first = convert_dataset("mvsec", tmp_path / "src", tmp_path / "a", log=lambda _: None)[0]
    second = convert_dataset("mvsec", tmp_path / "src", tmp_path / "b", log=lambda _: None)[0]
    assert filecmp.cmp(first, second, shallow=False)
    converted, original = open_recording(first), open_mvsec(tmp_path / "src", "indoor_flying2")
    assert converted.flow_names == original.flow_names == ["dt1", "dt4", "gt"]
    assert converted.depth() is not None and converted.frames().images.shape[0] == 13
    windowing = Windowing(mode="gt", flow_name="dt4")
    a, b = WindowDataset([converted], windowing), WindowDataset([original], windowing)
    assert a.window_counts == b.window_counts == [3]
    for index in range(3):
        for key in ("input", "flow_gt", "gt_valid", "events"):
            np.testing.assert_array_equal(a[index][key], b[index][key])
    protocol = {"gt_map_range": [1, 6], "crop": [256, 256]}
    from_converted = open_dataset_recording("mvsec", tmp_path / "a", "indoor_flying2", **protocol)
    from_original = open_dataset_recording("mvsec", tmp_path / "src", "indoor_flying2", **protocol)
    assert from_converted.num_events == from_original.num_events
    np.testing.assert_array_equal(from_converted.flow("dt1").flow, from_original.flow("dt1").flow)


def test_truncated_or_malformed_input_is_a_clear_error(tmp_path, rng):
    write_mvsec(tmp_path / "src", "indoor_flying3", rng)
    data = tmp_path / "src" / "indoor_flying3_data.hdf5"
    content = data.read_bytes()
    data.write_bytes(content[: len(content) // 2])
    with pytest.raises(EventDataError, match=r"indoor_flying3_data\.hdf5: HDF5 cannot read it \(.*truncated"):
        convert_dataset("mvsec", tmp_path / "src", tmp_path / "dst", log=lambda _: None)
    assert list((tmp_path / "dst").iterdir()) == []
    data.write_bytes(content)
    with h5py.File(data, "r+") as file:
        events = file["davis/left/events"][:]
        del file["davis/left/events"]
        file["davis/left/events"] = events[:, :3]
    with pytest.raises(
        EventDataError, match=r"key 'davis/left/events' must have shape \[N, 4\], got \[30000, 3\]"
    ):
        open_mvsec(tmp_path / "src", "indoor_flying3")
    with h5py.File(data, "r+") as file:
        del file["davis/left/events"]
        events[100, 2] = events[0, 2] - 1.0
        file["davis/left/events"] = events
    with pytest.raises(EventDataError, match=r"_data.hdf5: events key 't' must be non-decreasing; t\[100\]"):
        convert_dataset("mvsec", tmp_path / "src", tmp_path / "dst", log=lambda _: None)
    assert list((tmp_path / "dst").iterdir()) == []
