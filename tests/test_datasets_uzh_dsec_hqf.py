"""UZH-FPV, DSEC and HQF in their original layouts; the camera models; the DataModule over named recordings."""

from __future__ import annotations

import filecmp

import cv2
import h5py
import numpy as np
import pytest
from dataset_fixtures import (
    DSEC_SIZE,
    DSEC_T_OFFSET,
    UZH_CAMERA,
    UZH_SIZE,
    write_dsec,
    write_hqf,
    write_uzh_fpv,
)
from hydra.utils import instantiate

from tinyflow.data import DatasetDataModule, WindowDataset, Windowing
from tinyflow.events.camera import Camera, remap_events
from tinyflow.events.core import EventDataError, Events
from tinyflow.io import open_recording
from tinyflow.io.convert import convert_dataset
from tinyflow.io.dsec import (
    open_dsec,
    read_flow_png,
    read_submission_timestamps,
    write_flow_png,
    write_submission,
)
from tinyflow.io.uzh_fpv import open_uzh_fpv


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.mark.parametrize(
    "camera",
    [
        Camera(199.1, 198.8, 132.2, 110.7, (-0.368, 0.151, -0.0003, -0.0008, 0.0), "radtan"),
        Camera(223.9, 223.6, 170.8, 128.2, (-0.034, 0.077, -0.0001, 0.0002), "radtan"),
        UZH_CAMERA,
        Camera(100.0, 100.0, 50.0, 40.0),
    ],
    ids=["ecd", "mvsec", "uzh-equidistant", "pinhole"],
)
def test_undistortion_inverts_distortion_and_matches_opencv(camera):
    y, x = np.mgrid[0:180:7, 0:240:7].astype(np.float64)
    ux, uy = camera.undistort_pixels(x, y)
    rx, ry = camera.distort_pixels(ux, uy)
    assert np.abs(rx - x).max() < 1e-6 and np.abs(ry - y).max() < 1e-6
    matrix = np.array([[camera.fx, 0, camera.cx], [0, camera.fy, camera.cy], [0, 0, 1]])
    points = np.stack([x.ravel(), y.ravel()], -1)[:, None]
    if camera.model == "equidistant":
        reference = cv2.fisheye.undistortPoints(points, matrix, np.array(camera.distortion), P=matrix)
    else:
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12)
        coefficients = np.array(camera.distortion or (0.0,) * 4)
        reference = cv2.undistortPointsIter(points, matrix, coefficients, None, matrix, criteria)
    np.testing.assert_allclose(np.stack([ux.ravel(), uy.ravel()], -1), reference[:, 0], atol=1e-3)


def test_remap_events_rounds_and_drops_what_leaves_the_grid():
    xy_map = np.zeros((2, 3, 2), np.float32)
    xy_map[..., 0] = [[0.4, 1.6, 2.5], [-0.6, 2.49, 9.0]]
    xy_map[..., 1] = [[0.0, 0.2, 1.4], [1.0, 1.0, 1.0]]
    events = Events(
        np.array([0, 1, 2, 0, 1, 2], np.uint16),
        np.array([0, 0, 0, 1, 1, 1], np.uint16),
        np.arange(6, dtype=np.int64),
        np.array([1, 0, 1, 1, 0, 1], np.uint8),
    )
    moved = remap_events(events, xy_map, (2, 3))
    assert (
        moved.x.tolist() == [0, 2, 2, 2]
        and moved.y.tolist() == [0, 0, 1, 1]
        and moved.t_us.tolist() == [0, 1, 2, 4]
    )


def test_uzh_fpv_is_cut_to_its_airborne_span_with_maps_in_the_converted_file(tmp_path, rng):
    write_uzh_fpv(tmp_path / "src", "indoor_forward_7", rng)
    recording = open_uzh_fpv(tmp_path / "src", "indoor_forward_7")
    whole = open_uzh_fpv(tmp_path / "src", "indoor_forward_7", airborne_height_m=None)
    assert (recording.name, recording.sensor_size) == ("indoor_forward_7", UZH_SIZE)
    assert 0.3 * whole.num_events < recording.num_events < 0.36 * whole.num_events  # 1 s of 3 s
    assert recording.events(0, 1).t_us[0] == 0 and 0.97e6 < recording.t_end_us < 1.0e6
    assert abs(recording.t0_us - whole.t0_us - 1_005_000) < 10_000
    first = convert_dataset("uzh_fpv", tmp_path / "src", tmp_path / "a", log=lambda _: None)[0]
    second = convert_dataset("uzh_fpv", tmp_path / "src", tmp_path / "b", log=lambda _: None)[0]
    assert first.name == "indoor_forward_7.h5" and filecmp.cmp(first, second, shallow=False)
    calib = open_recording(first).calib()
    np.testing.assert_allclose(calib["distortion_equidistant"], UZH_CAMERA.distortion)
    undistort, distort = calib["undistort_map"], calib["distort_map"]
    assert undistort.shape == distort.shape == (*UZH_SIZE, 2)
    back = remap_events(
        Events(
            np.array([170], np.uint16),
            np.array([130], np.uint16),
            np.zeros(1, np.int64),
            np.ones(1, np.uint8),
        ),
        undistort,
        UZH_SIZE,
    )
    assert abs(distort[back.y[0], back.x[0], 0] - 170) < 1 and abs(distort[back.y[0], back.x[0], 1] - 130) < 1
    crop = WindowDataset([first], Windowing(mode="count", events_per_window=500), crop_size=(128, 128))
    assert crop[0]["input"].shape == (2, 128, 128)


def test_uzh_fpv_errors_name_the_file(tmp_path, rng):
    folder = write_uzh_fpv(tmp_path, "indoor_forward_3", rng)
    (next((tmp_path / "indoor_forward_calib_davis").glob("*.yaml"))).write_text(
        "cam0: {distortion_model: radtan}\n"
    )
    with pytest.raises(EventDataError, match=r"camchain-imucam-.*\.yaml: expected a 'cam0' entry with keys"):
        open_uzh_fpv(tmp_path, "indoor_forward_3")
    with pytest.raises(FileNotFoundError, match=r"no 'indoor_45_calib_davis/camchain-\*.yaml'"):
        (folder.parent / "indoor_45_2_davis").mkdir()
        (folder / "events.txt").rename(folder.parent / "indoor_45_2_davis" / "events.txt")
        open_uzh_fpv(tmp_path, "indoor_45_2")


def test_dsec_events_are_rectified_and_gt_pngs_decoded(tmp_path, rng):
    write_dsec(tmp_path, "zurich_city_11_c", rng)
    recording = open_dsec(tmp_path, "zurich_city_11_c")
    with h5py.File(tmp_path / "train_events/zurich_city_11_c/events/left/events.h5") as file:
        raw_x, raw_y = file["events/x"][:], file["events/y"][:]
    events = recording.events(0, recording.num_events)
    shifted = (np.rint(raw_x + 1.4) < 640) & (np.rint(raw_y - 0.6) >= 0)
    np.testing.assert_array_equal(events.x, np.rint(raw_x[shifted] + 1.4))
    assert (recording.name, recording.t0_us, recording.sensor_size) == (
        "zurich_city_11_c",
        DSEC_T_OFFSET,
        DSEC_SIZE,
    )
    t_start, t_end = recording.flow_intervals("forward")
    assert t_start.tolist() == [100_000, 200_000] and t_end.tolist() == [
        200_000,
        300_000,
    ]  # the first map is before t0
    flow, valid = recording.flow_map("forward", 0)
    assert not valid[:40].any() and valid[40:].all()
    np.testing.assert_array_equal(flow[:, valid], np.broadcast_to([[4.25], [-1.5]], (2, int(valid.sum()))))
    windows = Windowing(mode="gt", flow_name="forward").windows(recording)
    all_t_us = recording.timestamps_at(np.arange(recording.num_events))
    expected = [int(np.sum((all_t_us >= a) & (all_t_us < b))) for a, b in zip(t_start, t_end, strict=True)]
    assert [w.num_events for w in windows] == expected
    converted = open_recording(convert_dataset("dsec", tmp_path, tmp_path / "out", log=lambda _: None)[0])
    np.testing.assert_array_equal(converted.flow("forward").valid, recording.flow("forward").valid)
    assert converted.num_events == len(events)  # the events that stay on the rectified grid


def test_dsec_png_round_trip_and_submission_files(tmp_path):
    flow = np.stack([np.linspace(-200, 200, 640 * 480).reshape(480, 640), np.full((480, 640), 0.3)]).astype(
        np.float32
    )
    valid = np.ones((480, 640), bool)
    valid[0] = False
    decoded, decoded_valid = read_flow_png(write_flow_png(tmp_path / "f.png", flow, valid))
    assert np.abs(decoded[:, 1:] - flow[:, 1:]).max() <= 0.5 / 128 and (decoded_valid == valid).all()
    path = write_submission(tmp_path / "submission", "thun_01_a", 40, flow)
    assert path == tmp_path / "submission" / "thun_01_a" / "000040.png"
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    with pytest.raises(ValueError, match=r"must lie in \[-256, 256\)"):
        write_flow_png(tmp_path / "g.png", flow * 2)
    (tmp_path / "thun_01_a.csv").write_text(
        "# from_timestamp_us, to_timestamp_us, file_index\n100, 200, 40\n600, 700, 50\n"
    )
    assert read_submission_timestamps(tmp_path / "thun_01_a.csv").tolist() == [[100, 200, 40], [600, 700, 50]]


def test_hqf_files_read_windows_and_convert(tmp_path, rng):
    write_hqf(tmp_path / "src" / "boxes.h5", rng)
    recording = open_recording(tmp_path / "src" / "boxes.h5")
    assert recording.sensor_size == (180, 240) and recording.frames().images.shape == (10, 180, 240)
    converted = open_recording(
        convert_dataset("hqf", tmp_path / "src", tmp_path / "out", log=lambda _: None)[0]
    )
    windowing = Windowing(mode="count", events_per_window=5_000)
    a, b = WindowDataset([recording], windowing), WindowDataset([converted], windowing)
    assert a.window_counts == b.window_counts == [4]
    np.testing.assert_array_equal(a[3]["events"], b[3]["events"])
    np.testing.assert_array_equal(converted.frames().images, recording.frames().images)


def test_datamodule_opens_named_recordings_and_skips_absent_ones(compose_config, tmp_path, rng):
    write_hqf(tmp_path / "hqf" / "desk.h5", rng)
    cfg = compose_config("train", ["data=hqf", f"data.root={tmp_path / 'hqf'}"], tiny=False)
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, DatasetDataModule)
    with pytest.warns(UserWarning, match=r"hqf val recordings not found, skipped: \['bike_bay_hdr', 'boxes'"):
        datamodule.setup("validate")
    assert datamodule.val_set.recording_names == ["desk"] and datamodule.val_set.window_counts == [1]
    empty = DatasetDataModule("hqf", tmp_path / "hqf", train=["nope"], val=["nope"])
    missing = r"none of the hqf val recordings \['nope'\] is there \(found: \['desk'\]\)"
    with (
        pytest.warns(UserWarning, match=r"skipped: \['nope'\]"),
        pytest.raises(FileNotFoundError, match=missing),
    ):
        empty.val_paths()
    with pytest.raises(ValueError, match=r"unknown dataset 'kitti'"):
        DatasetDataModule("kitti", tmp_path, train=[], val=[])
