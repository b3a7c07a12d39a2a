"""Stereo items: both cameras' encodings along channels (left first), one crop and flip for both, the
configs that ask for them."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hydra.utils import instantiate

from tinyflow.app.checks import ConfigError, check_config
from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.data.sampler import WindowKey
from tinyflow.data.targets import DepthTarget, FlowTarget
from tinyflow.events.core import EventDataError, Events
from tinyflow.events.encodings import encode
from tinyflow.events.groundtruth import DisparityGT
from tinyflow.events.transforms import FlowAugmentation, WindowSample, crop, flip_vertical
from tinyflow.io import CanonicalWriter, open_recording, write_canonical
from tinyflow.io.recording import ms_to_idx_from_t
from tinyflow.synth import StereoConfig, SynthConfig, ensure_synthetic_dataset

CONFIG = SynthConfig(height=32, width=40, duration_us=120_000, gt_interval_us=20_000, num_hot_pixels=0)
STEREO = StereoConfig(baseline_m=0.1, focal_px=20.0)
WINDOWING = Windowing(mode="gt", flow_name="dt1")


@pytest.fixture(scope="module")
def stereo_files(tmp_path_factory) -> dict[str, list]:
    root = tmp_path_factory.mktemp("stereo")
    return {
        "stereo": ensure_synthetic_dataset(root, CONFIG, {"train": 2}, seed=0, stereo=STEREO)["train"],
        "mono": ensure_synthetic_dataset(root, CONFIG, {"train": 1}, seed=0)["train"],
    }


def _right_encoding(dataset: WindowDataset, rec: int, win: int, view) -> np.ndarray:
    """The right camera's events of the window's time span, under the episode view, encoded by hand."""
    recording, window = dataset.recordings[rec], dataset.windows[rec][win]
    right = recording.camera("right")
    all_events = right.events(0, right.num_events)
    inside = (all_events.t_us >= window.t_start_us) & (all_events.t_us < window.t_end_us)
    sample = view(WindowSample(all_events[inside], right.sensor_size, window.t_start_us, window.t_end_us))
    return encode(sample.events, sample.sensor_size, "voxel", 3, window.t_start_us, window.t_end_us)


def test_stereo_input_is_left_then_right_encoding_under_one_crop_and_flip(stereo_files):
    paths = stereo_files["stereo"]
    targets = [DepthTarget(), FlowTarget()]
    mono = WindowDataset(paths, WINDOWING, "voxel", 3, targets=targets)
    augmentation = FlowAugmentation(p_flip_x=0.0, p_flip_y=1.0)
    stereo = WindowDataset(
        paths,
        WINDOWING,
        "voxel",
        3,
        augmentation,
        (24, 16),
        seed=2,
        targets=targets,
        cameras=("left", "right"),
    )
    plain = WindowDataset(paths, WINDOWING, "voxel", 3, targets=targets, cameras=["left", "right"])
    for rec, win in ((0, 1), (1, 4)):
        key = WindowKey(rec, win, episode=3, end_of_recording=False)
        item, reference = plain[key], mono[key]
        assert item["input"].shape == (6, 32, 40) and item["input"].dtype == np.float32
        np.testing.assert_array_equal(item["input"][:3], reference["input"])
        np.testing.assert_array_equal(
            item["input"][3:], _right_encoding(plain, rec, win, plain.episode_view(key))
        )
        np.testing.assert_array_equal(item["events"], reference["events"])  # the event list: left camera
        for name in ("depth_gt", "has_depth", "flow_gt", "gt_valid", "has_gt"):
            np.testing.assert_array_equal(item[name], reference[name])
        assert item["has_depth"] and item["has_gt"]
        view = stereo.episode_view(key)
        assert view.crop is not None and view.transforms == ("flip_y",)
        augmented = stereo[key]
        assert augmented["input"].shape == (6, 24, 16) and augmented["depth_gt"].shape == (24, 16)
        np.testing.assert_array_equal(augmented["input"][3:], _right_encoding(stereo, rec, win, view))
        top, left, height, width = view.crop
        left_sample = WindowSample(
            stereo.recordings[rec].events(*stereo.camera_bounds[rec][0][win]),
            (32, 40),
            stereo.windows[rec][win].t_start_us,
            stereo.windows[rec][win].t_end_us,
        )
        expected = flip_vertical(crop(left_sample, top, left, height, width))
        np.testing.assert_array_equal(
            augmented["input"][:3],
            encode(expected.events, (24, 16), "voxel", 3, expected.t_start_us, expected.t_end_us),
        )
        depth = reference["depth_gt"][top : top + height, left : left + width][::-1]
        np.testing.assert_array_equal(augmented["depth_gt"], depth)
    padding = plain[WindowKey(-1, -1, -1, True, active=False)]
    assert padding["input"].shape == (6, 32, 40) and not padding["has_depth"]


def test_stereo_cameras_are_checked(stereo_files):
    paths = stereo_files["stereo"]
    with pytest.raises(ValueError, match=r"p_flip_x=0.5: a horizontal flip of a stereo pair"):
        WindowDataset(paths, WINDOWING, augmentation=FlowAugmentation(), cameras=("left", "right"))
    for cameras in (("right",), ("right", "left"), ("left", "left"), ()):
        with pytest.raises(ValueError, match=r"expected one of \[\['left'\], \['left', 'right'\]\]"):
            WindowDataset(paths, WINDOWING, cameras=cameras)
    with pytest.raises(EventDataError, match=r"train_000\.h5: no 'right' camera \(cameras: \['left'\]\)"):
        WindowDataset(stereo_files["mono"], WINDOWING, cameras=("left", "right"))


def test_synthetic_stereo_config_gives_stereo_batches(compose_config):
    cfg = compose_config("train", ["data=synthetic_stereo"])
    check_config(cfg)
    assert list(cfg.data.cameras) == ["left", "right"] and cfg.data.augmentation.p_flip_x == 0
    datamodule = instantiate(cfg.data)
    assert datamodule.stereo == StereoConfig(baseline_m=0.1, focal_px=41.8)
    assert datamodule.target_names == ["depth", "flow"]
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    crop_h, crop_w = cfg.data.crop_size
    assert batch["input"].shape == (
        cfg.data.seq_len,
        cfg.data.batch_size,
        2 * cfg.data.num_bins,
        crop_h,
        crop_w,
    )
    assert batch["depth_gt"].shape == (cfg.data.seq_len, cfg.data.batch_size, crop_h, crop_w)
    assert batch["has_depth"].all()  # duration windows end at the GT times
    recording = datamodule.val_set.recordings[0]
    assert recording.cameras == ("left", "right") and recording.calib() == {
        "baseline_m": 0.1,
        "focal_px": 41.8,
    }
    assert recording.disparity().disparity.shape == recording.depth().depth.shape


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.cameras=[right]"], r"data\.cameras=\['right'\]: expected \[left\] or \[left, right\]"),
        (["data.cameras=[left,left]"], r"data\.cameras=\['left', 'left'\]: expected"),
        (["data.cameras=[left,right]"], r"data\.augmentation\.p_flip_x=0\.5: expected 0 with data\.cameras"),
        (["data=synthetic_stereo", "data.augmentation.p_flip_x=0.2"], r"p_flip_x=0\.2: expected 0"),
    ],
)
def test_camera_config_mistakes_are_caught_before_anything_is_built(compose_config, overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config("train", overrides))


def test_mono_data_configs_keep_one_camera(compose_config):
    for data in ("synthetic", "h5dir", "mvsec", "dsec", "ecd", "hqf", "uzh_fpv"):
        assert list(compose_config("train", [f"data={data}"], tiny=False).data.cameras) == ["left"]


def test_canonical_stereo_round_trip_and_a_broken_right_camera(tmp_path):
    rng = np.random.default_rng(0)

    def events(n: int) -> Events:
        t_us = np.sort(rng.integers(0, 50_000, n))
        return Events(rng.integers(0, 40, n).astype(np.uint16), rng.integers(0, 32, n).astype(np.uint16), t_us,
                      rng.integers(0, 2, n).astype(np.uint8))  # fmt: skip

    left, right = events(500), events(700)
    disparity = DisparityGT(rng.uniform(1, 3, (2, 32, 40)).astype(np.float32), np.array([0, 25_000]))
    path = write_canonical(tmp_path / "pair.h5", left, (32, 40), right_events=right, disparity=disparity,
                           calib={"baseline_m": 0.1, "focal_px": 20.0})  # fmt: skip
    recording = open_recording(path)
    right_camera = recording.camera("right")
    np.testing.assert_array_equal(right_camera.events(0, 700).t_us, right.t_us)
    np.testing.assert_array_equal(right_camera.ms_to_idx(), ms_to_idx_from_t(right.t_us))
    np.testing.assert_array_equal(recording.disparity().disparity, disparity.disparity)
    assert recording.calib() == {"baseline_m": 0.1, "focal_px": 20.0}
    right_camera.close()
    recording.close()
    with h5py.File(path, "r+") as file:
        file["right/events/x"][17] = 45
    with pytest.raises(EventDataError, match=r"pair\.h5: .*key 'right/events/x', event 17"):
        open_recording(path).camera("right")
    with (
        pytest.raises(ValueError, match="'middle'"),
        CanonicalWriter(tmp_path / "bad.h5", (32, 40)) as writer,
    ):
        writer.append(left, camera="middle")
    assert not (tmp_path / "bad.h5").exists()
