"""MVSEC depth from stereo: both rectified DAVIS cameras, depth_image_rect, StereoSpike's split 1 through
the real config (data=mvsec_depth), on fixtures in MVSEC's original layout."""

from __future__ import annotations

import numpy as np
import pytest
from dataset_fixtures import (
    MVSEC_BASELINE_M,
    MVSEC_FILL_DEPTH_M,
    MVSEC_FOCAL_PX,
    MVSEC_RECTIFY_SHIFT,
    MVSEC_SIZE,
    write_mvsec_calibration,
    write_mvsec_stereo,
)
from hydra.utils import instantiate

from tinyflow.data.sampler import WindowKey
from tinyflow.events.core import Events
from tinyflow.events.encodings import event_counts
from tinyflow.io import open_recording
from tinyflow.io.convert import convert_dataset
from tinyflow.io.datasets import open_dataset_recording
from tinyflow.io.mvsec import DEPTH_LABEL_SETS, open_mvsec
from tinyflow.io.recording import seconds_to_us


def _marked_map(value: float) -> np.ndarray:
    """A depth map of ``value`` m with MVSEC's kinds of invalid pixels: NaN, 0 and inf rows."""
    depth = np.full(MVSEC_SIZE, value, np.float32)
    depth[:3], depth[3:5], depth[5] = np.nan, 0.0, np.inf
    return depth


def _rectified(raw: np.ndarray, camera: str, t0_s: float) -> Events:
    """The fixture's rectification by hand: a shift, rounded; events landing outside drop."""
    dx, dy = MVSEC_RECTIFY_SHIFT[camera]
    raw = raw[raw[:, 2] >= t0_s]
    x, y = np.rint(raw[:, 0] + dx), np.rint(raw[:, 1] + dy)
    inside = (x >= 0) & (x < MVSEC_SIZE[1]) & (y >= 0) & (y < MVSEC_SIZE[0])
    return Events(
        x[inside].astype(np.uint16),
        y[inside].astype(np.uint16),
        seconds_to_us(raw[inside, 2], t0_s),
        (raw[inside, 3] > 0).astype(np.uint8),
    )


def test_rectified_reader_gives_both_cameras_and_rectified_depth(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "indoor_flying"
    raw = write_mvsec_stereo(folder, "indoor_flying1", rng, 30, {7: _marked_map(3.25)})
    write_mvsec_calibration(folder, "indoor_flying")
    recording = open_mvsec(tmp_path, "indoor_flying1", rectify=True)
    t0_s = raw["left"][0, 2]
    assert recording.cameras == ("left", "right") and recording.t0_us == round(t0_s * 1e6)
    right = recording.camera("right")
    assert (right.t0_us, right.sensor_size, right.name) == (recording.t0_us, MVSEC_SIZE, "indoor_flying1")
    assert right.num_events == int((raw["right"][:, 2] >= t0_s).sum())  # events before the left's first skip
    for camera, view in (("left", recording), ("right", right)):
        events, expected = view.events(0, view.num_events), _rectified(raw[camera], camera, t0_s)
        for key in ("x", "y", "t_us", "p"):
            np.testing.assert_array_equal(getattr(events, key), getattr(expected, key))
        assert len(events) < view.num_events  # the shift moves a border's events off the grid
    np.testing.assert_array_equal(recording.depth_t_us(), seconds_to_us(raw["depth_ts"], t0_s))
    marked = recording.depth_map(7)
    assert np.isnan(marked[:6]).all() and (marked[6:] == 3.25).all()
    assert (recording.depth_map(8) == MVSEC_FILL_DEPTH_M).all()
    assert recording.calib() == pytest.approx({"focal_px": MVSEC_FOCAL_PX, "baseline_m": MVSEC_BASELINE_M})
    assert recording.flow_names == [] and recording.frames() is None  # the distorted grid's GT is not offered
    unrectified = open_mvsec(tmp_path, "indoor_flying1")
    assert unrectified.flow_names == ["dt1", "dt4", "gt"] and unrectified.frames() is not None
    raw_right = unrectified.camera("right").events(0, 10)
    np.testing.assert_array_equal(raw_right.x, raw["right"][raw["right"][:, 2] >= t0_s][:10, 0])


def test_missing_calibration_and_label_sets_are_clear_errors(tmp_path):
    write_mvsec_stereo(tmp_path, "indoor_flying1", np.random.default_rng(1), 12, {})
    with pytest.raises(
        FileNotFoundError, match=r"no 'indoor_flying_left_x_map\.txt'.*unzip indoor_flying_calib\.zip"
    ):
        open_mvsec(tmp_path, "indoor_flying1", rectify=True)
    write_mvsec_calibration(tmp_path, "indoor_flying")
    with pytest.raises(
        ValueError, match=r"unknown depth label set 'split9_val'; expected one of \['split1_test'"
    ):
        open_dataset_recording(
            "mvsec",
            tmp_path,
            "indoor_flying1",
            {"rectify": True},
            depth_map_range=[2, 9],
            depth_labels="split9_val",
        )
    with pytest.raises(ValueError, match=r"depth_map_range \[2, 40\] is outside its 12 depth maps"):
        open_dataset_recording(
            "mvsec", tmp_path, "indoor_flying1", {"rectify": True}, depth_map_range=[2, 40]
        )


def test_conversion_carries_the_right_camera(tmp_path):
    raw = write_mvsec_stereo(
        tmp_path / "src", "indoor_flying2", np.random.default_rng(2), 12, {3: _marked_map(4.0)}
    )
    target = convert_dataset("mvsec", tmp_path / "src", tmp_path / "dst", log=lambda _: None)[0]
    converted = open_recording(target)
    assert converted.cameras == ("left", "right")
    right = converted.camera("right")
    kept = raw["right"][raw["right"][:, 2] >= raw["left"][0, 2]]
    np.testing.assert_array_equal(right.events(0, right.num_events).x, kept[:, 0])
    depth = converted.depth_map(3)
    assert np.isnan(depth[:6]).all() and (depth[6:] == 4.0).all()


SPLIT_MAPS = {"indoor_flying1": 1206, "indoor_flying2": 1585, "indoor_flying3": 1820}  # >= each split's stop
WRITTEN = {"indoor_flying1": {140: 1.5, 141: 1.75, 151: 2.0}, "indoor_flying2": {160: 3.0}}


@pytest.fixture(scope="module")
def mvsec_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mvsec")
    rng = np.random.default_rng(3)
    folder = root / "indoor_flying"
    for name, count in SPLIT_MAPS.items():
        maps = {k: _marked_map(value) for k, value in WRITTEN.get(name, {}).items()}
        write_mvsec_stereo(folder, name, rng, count, maps)
    write_mvsec_calibration(folder, "indoor_flying")
    return root


def test_stereospike_split1_through_the_config(mvsec_root, compose_config):
    """data=mvsec_depth: training maps 160-1579 and 125-1814, validation maps 140-1200 of indoor_flying1 of
    which exactly the 200 held-out ones are targets, one window of the 50 ms before each map."""
    cfg = compose_config("train", ["data=mvsec_depth", f"data.root={mvsec_root}"], tiny=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    train, val = datamodule.train_set, datamodule.val_set
    assert train.recording_names == ["indoor_flying2", "indoor_flying3"] and val.recording_names == [
        "indoor_flying1"
    ]
    assert train.window_counts == [1580 - 160, 1815 - 125] and val.window_counts == [1201 - 140]
    view = val.recordings[0]
    base = open_mvsec(mvsec_root, "indoor_flying1", rectify=True)
    np.testing.assert_array_equal(view.depth_t_us() + view.t0_us, base.depth_t_us()[140:1201] + base.t0_us)
    windows = val.windows[0]
    np.testing.assert_array_equal([w.t_end_us for w in windows], view.depth_t_us())
    spans = np.array([w.duration_us for w in windows])
    assert spans.max() <= 50_000 and spans.min() >= 47_000  # the previous map bounds a window
    labelled = np.array([np.isfinite(view.depth_map(k)).any() for k in range(len(windows))])
    np.testing.assert_array_equal(np.flatnonzero(labelled), DEPTH_LABEL_SETS["split1_val"])
    # Label 1 is map 141 (written as 1.75 m); label 0 (map 140) is held in the test set: no target.
    item = val[WindowKey(0, 1, episode=1, end_of_recording=False)]
    assert item["input"].shape == (4, *MVSEC_SIZE) and item["has_depth"]
    depth = item["depth_gt"]
    assert np.isnan(depth[:6]).all() and (depth[6:] == 1.75).all()
    window = windows[1]
    for camera, channels in (("left", slice(0, 2)), ("right", slice(2, 4))):
        events = base.camera(camera).events(0, base.camera(camera).num_events)
        t_us = events.t_us - (view.t0_us - base.t0_us)
        inside = (t_us >= window.t_start_us) & (t_us < window.t_end_us)
        np.testing.assert_array_equal(item["input"][channels], event_counts(events[inside], MVSEC_SIZE))
    assert not val[WindowKey(0, 0, episode=1, end_of_recording=False)]["has_depth"]
    first_train = train[WindowKey(0, 0, episode=1, end_of_recording=False)]
    train_depth = first_train["depth_gt"]  # map 160, maybe flipped upside down (p_flip_y)
    assert first_train["has_depth"] and np.isnan(train_depth).sum() == 6 * MVSEC_SIZE[1]
    assert np.nanmin(train_depth) == np.nanmax(train_depth) == 3.0


def test_the_test_set_is_the_other_861_labels(mvsec_root, compose_config):
    overrides = [
        "data=mvsec_depth",
        f"data.root={mvsec_root}",
        "data.val.indoor_flying1.depth_labels=split1_test",
    ]
    datamodule = instantiate(compose_config("validate", [*overrides, "runid=x"]).data)
    datamodule.setup("validate")
    view = datamodule.val_set.recordings[0]
    labelled = [k for k in range(1061) if np.isfinite(view.depth_map(k)).any()]
    assert len(labelled) == 861 and set(labelled).isdisjoint(DEPTH_LABEL_SETS["split1_val"])
