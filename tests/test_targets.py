"""Window targets: flow and depth follow crop and augmentation with the events; absent windows; configs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinyflow.cmax.sharpness import sharpness_gain
from tinyflow.data import DepthTarget, EpisodeView, FlowTarget, H5DirDataModule, build_targets
from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.data.sampler import WindowKey
from tinyflow.events.core import Events
from tinyflow.events.transforms import FlowAugmentation, WindowSample, crop
from tinyflow.io import open_recording, write_canonical
from tinyflow.synth import SynthConfig, generate_recording

SENSOR = (32, 40)
CROP = (28, 32)
CONFIG = SynthConfig(
    height=SENSOR[0],
    width=SENSOR[1],
    duration_us=200_000,
    gt_interval_us=20_000,
    camera_mode="objects",
    speed_range_px_s=(150.0, 300.0),
    velocity_variation=0.0,
    num_hot_pixels=0,
    seed=3,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two synthetic recordings with GT flow (dt1, dt4) and depth at every 20 ms."""
    root = tmp_path_factory.mktemp("targets")
    for seed in (3, 4):
        recording = generate_recording(SynthConfig(**{**CONFIG.__dict__, "seed": seed}))
        write_canonical(
            root / f"rec_{seed}.h5",
            recording.events,
            recording.sensor_size,
            flows=recording.flows,
            depth=recording.depth,
        )
    return root


def _paths(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.h5"))


def _events(item: dict) -> Events:
    """The item's event list back as events, timestamps in µs from the window start."""
    x, y, t_norm, p_sign = item["events"].T
    return Events(
        x.astype(np.uint16),
        y.astype(np.uint16),
        np.rint(t_norm.astype(np.float64) * item["dt_us"]).astype(np.int64),
        (p_sign > 0).astype(np.uint8),
    )


def _gain(item: dict, flow: np.ndarray, bilinear: bool = False) -> float:
    return sharpness_gain(_events(item), flow, 0, item["dt_us"], flow.shape[1:], bilinear=bilinear)


def test_flow_target_follows_crop_and_augmentation_with_the_events(folder) -> None:
    """Warping an augmented, cropped window by its flow target is exactly as sharp as the same crop of the
    plain window (bilinear images: flips are mirror-symmetric), and a flow only mirrored is not."""
    augmentation = FlowAugmentation(p_flip_x=0.5, p_flip_y=0.5, p_polarity=0.5)
    dataset = WindowDataset(
        _paths(folder), Windowing(mode="gt"), augmentation=augmentation, crop_size=CROP, seed=1
    )
    plain = WindowDataset(_paths(folder), Windowing(mode="gt"))
    views, sharp = set(), []
    for episode in range(8):
        for window in (1, 6):
            key = WindowKey(episode % 2, window, episode, False)
            item, view = dataset[key], dataset.episode_view(key)
            views.add(view.transforms)
            whole = plain[WindowKey(key.recording, window, 0, False)]
            reference = crop(
                WindowSample(_events(whole), SENSOR, 0, whole["dt_us"], whole["flow_gt"], whole["gt_valid"]),
                *view.crop,
            )
            assert item["has_gt"] and item["flow_gt"].shape == (2, *CROP) and item["gt_valid"].shape == CROP
            assert item["gt_valid"].sum() == reference.valid.sum()
            expected = sharpness_gain(
                reference.events, reference.flow, 0, whole["dt_us"], CROP, bilinear=True
            )
            assert _gain(item, item["flow_gt"], bilinear=True) == pytest.approx(expected, rel=1e-9)
            if "flip_x" in view.transforms:  # the map mirrored without negating its x component
                unsigned = item["flow_gt"] * np.array([-1, 1], np.float32)[:, None, None]
                assert _gain(item, unsigned, bilinear=True) != pytest.approx(expected, rel=1e-3)
            sharp.append(_gain(item, item["flow_gt"]))
    assert len(views) >= 4, views
    assert min(sharp) > 1.1 and np.median(sharp) > 1.4, sharp


def test_time_reversed_flow_target_still_sharpens_its_events(folder) -> None:
    augmentation = FlowAugmentation(p_flip_x=0.0, p_flip_y=0.0, p_time_reversal=1.0)
    dataset = WindowDataset(_paths(folder), Windowing(mode="gt"), augmentation=augmentation)
    plain = WindowDataset(_paths(folder), Windowing(mode="gt"))
    for window in (2, 7):
        item, whole = dataset[WindowKey(0, window, 0, False)], plain[WindowKey(0, window, 0, False)]
        np.testing.assert_array_equal(item["flow_gt"], -whole["flow_gt"])
        assert _gain(item, item["flow_gt"]) > max(1.2, _gain(item, whole["flow_gt"]) + 0.2)


def test_absent_windows_give_the_zero_arrays(folder) -> None:
    targets = [FlowTarget(), DepthTarget()]
    padding = WindowKey(-1, -1, -1, True, active=False)
    dataset = WindowDataset(_paths(folder), Windowing(mode="gt"), crop_size=CROP, targets=targets)
    pad = dataset[padding]
    assert set(pad) == {
        "input",
        "events",
        "t_start_us",
        "dt_us",
        "query",
        "gt_first",
        "recording",
        "end_of_recording",
        "active",
    } | {
        "flow_gt",
        "gt_valid",
        "has_gt",
        "depth_gt",
        "has_depth",
    }
    assert (
        pad["flow_gt"].dtype == np.float32 and pad["flow_gt"].shape == (2, *CROP) and not pad["flow_gt"].any()
    )
    assert pad["gt_valid"].dtype == bool and pad["gt_valid"].shape == CROP and not pad["gt_valid"].any()
    assert pad["depth_gt"].dtype == np.float32 and np.isnan(pad["depth_gt"]).all()
    assert not pad["has_gt"] and not pad["has_depth"] and not pad["active"]
    for target in targets:
        for name, value in target.absent(CROP).items():
            np.testing.assert_array_equal(pad[name], value)

    # Count windows hold no GT flow: the flow target's absent arrays, at the crop's size.
    counted = WindowDataset(
        _paths(folder), Windowing(mode="count", events_per_window=500), crop_size=CROP, targets=targets
    )
    item = counted[WindowKey(0, 3, 0, False)]
    assert not item["has_gt"] and item["flow_gt"].shape == (2, *CROP) and not item["flow_gt"].any()
    assert item["has_depth"] and np.isfinite(item["depth_gt"]).all()


def test_depth_target_reads_the_map_nearest_the_window_end_and_follows_the_view(folder) -> None:
    recording = open_recording(_paths(folder)[0])
    depth = recording.depth()
    augmentation = FlowAugmentation(p_flip_x=0.5, p_flip_y=0.5)
    windowing = Windowing(mode="duration", duration_us=15_000)
    dataset = WindowDataset(
        [recording], windowing, augmentation=augmentation, crop_size=CROP, targets=[DepthTarget()], seed=2
    )
    assert "flow_gt" not in dataset[WindowKey(0, 0, 0, False)]
    for episode in range(6):
        for index in (0, 3, 8):
            key = WindowKey(0, index, episode, False)
            window, view = dataset.windows[0][index], dataset.episode_view(key)
            nearest = int(np.argmin(np.abs(depth.t_us - window.t_end_us)))
            top, left, height, width = view.crop
            expected = depth.depth[nearest][top : top + height, left : left + width]
            if "flip_x" in view.transforms:
                expected = expected[:, ::-1]
            if "flip_y" in view.transforms:
                expected = expected[::-1]
            item = dataset[key]
            assert item["has_depth"]
            np.testing.assert_array_equal(item["depth_gt"], expected)

    # 10 ms windows: every second one ends 10 ms from the nearest map (maps every 20 ms).
    assert np.array_equal(depth.t_us[:3], [0, 20_000, 40_000])
    every_10ms = Windowing(mode="duration", duration_us=10_000)
    strict = WindowDataset([recording], every_10ms, targets=[DepthTarget(max_offset_us=4_000)])
    assert [strict[WindowKey(0, i, 0, False)]["has_depth"] for i in range(4)] == [False, True, False, True]
    reversing = WindowDataset(
        [recording],
        windowing,
        augmentation=FlowAugmentation(0.0, 0.0, 0.0, 1.0),
        targets=[DepthTarget()],
    )
    with pytest.raises(ValueError, match="DepthTarget: augmentation 'time_reversal' is not supported"):
        reversing[WindowKey(0, 0, 0, False)]


def test_depth_target_is_absent_without_depth_gt(tmp_path) -> None:
    rng = np.random.default_rng(0)
    events = Events(
        rng.integers(0, 8, 300).astype(np.uint16),
        rng.integers(0, 6, 300).astype(np.uint16),
        np.sort(rng.integers(0, 10_000, 300)).astype(np.int64),
        rng.integers(0, 2, 300).astype(np.uint8),
    )
    write_canonical(tmp_path / "plain.h5", events, (6, 8))
    dataset = WindowDataset([tmp_path / "plain.h5"], Windowing("count", 100), targets=[DepthTarget()])
    item = dataset[0]
    assert not item["has_depth"] and np.isnan(item["depth_gt"]).all() and item["depth_gt"].shape == (6, 8)


def test_default_targets_are_the_flow_of_the_windowing(folder) -> None:
    """The default FlowTarget reads the windowing's flow set; an explicit one gives the same items."""
    windowing = Windowing(mode="gt", flow_name="dt4")
    default = WindowDataset(_paths(folder), windowing)
    explicit = WindowDataset(_paths(folder), windowing, targets=[FlowTarget(flow_name="dt4")])
    assert default.targets == explicit.targets == (FlowTarget(flow_name="dt4"),)
    recording = default.recordings[1]
    for index in (0, 3):
        a, b = default[WindowKey(1, index, 0, False)], explicit[WindowKey(1, index, 0, False)]
        np.testing.assert_array_equal(a["flow_gt"], recording.flow_map("dt4", index)[0])
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(
        ValueError, match=r"FlowTarget\(flow_name='dt1'\) reads the maps .* aligns them to GT flow 'dt4'"
    ):
        WindowDataset(_paths(folder), windowing, targets=[FlowTarget(flow_name="dt1")])
    assert WindowDataset(_paths(folder), windowing, targets=[]).target_names == []


def test_datamodule_takes_its_targets_from_the_config(folder) -> None:
    module = H5DirDataModule(
        root=folder,
        batch_size=2,
        seq_len=2,
        train_windowing={"mode": "duration", "duration_us": 20_000},
        val_windowing={"mode": "gt", "flow_name": "dt4"},
        crop_size=CROP,
        targets=[{"_target_": "tinyflow.data.FlowTarget"}, "depth"],
    )
    assert module.target_names == ["flow", "depth"]
    module.require_targets(["depth", "flow"])
    module.setup("fit")
    assert module.val_set.targets == (FlowTarget(flow_name="dt4"), DepthTarget())
    batch = next(iter(module.train_dataloader()))
    assert batch["depth_gt"].shape == (2, 2, *CROP) and batch["has_depth"].all()
    assert batch["flow_gt"].shape == (2, 2, 2, *CROP) and not batch["has_gt"].any()
    val = next(iter(module.val_dataloader()))
    assert val["has_gt"].all() and val["has_depth"].all() and val["flow_gt"].shape[-2:] == SENSOR

    by_name = H5DirDataModule(root=folder, targets={"flow": None, "depth": {"max_offset_us": 1000}})
    assert by_name.targets == (FlowTarget(), DepthTarget(max_offset_us=1000))
    default = H5DirDataModule(root=folder)
    assert default.targets == build_targets(None) == build_targets(["flow"]) == (FlowTarget(),)
    with pytest.raises(
        ValueError,
        match=r"the task needs target\(s\) \['depth'\], but the data config \(H5DirDataModule\) declares "
        r"targets \['flow'\]; .* data.targets=\[flow,depth\]",
    ):
        default.require_targets(["flow", "depth"])


@dataclass(frozen=True)
class _Clash(FlowTarget):
    """A target whose keys are the dataset's own."""

    name = "clash"

    def absent(self, sensor_size: tuple[int, int]) -> dict:
        return {"input": np.zeros(sensor_size, np.float32)}


def test_unknown_or_conflicting_targets_are_clear_errors(folder) -> None:
    with pytest.raises(ValueError, match=r"unknown target 'optical'; expected one of \['depth', 'flow'\]"):
        H5DirDataModule(root=folder, targets=["flow", "optical"])
    with pytest.raises(ValueError, match=r"unknown target 'disparity'"):
        build_targets({"disparity": {}})
    with pytest.raises(ValueError, match=r"each target may appear once, got \['flow', 'flow'\]"):
        build_targets(["flow", {"_target_": "tinyflow.data.FlowTarget", "flow_name": "dt4"}])
    with pytest.raises(ValueError, match="expected a target name"):
        build_targets([3])
    with pytest.raises(ValueError, match="expected a list or a mapping"):
        build_targets("flow")
    with pytest.raises(
        ValueError, match="target 'clash' adds item key 'input', which the dataset already adds"
    ):
        WindowDataset(_paths(folder), Windowing(mode="gt"), targets=[_Clash()])


def test_episode_view_applies_crop_then_transforms() -> None:
    events = Events(
        np.array([0, 5], np.uint16),
        np.array([1, 3], np.uint16),
        np.array([0, 10]),
        np.array([0, 1], np.uint8),
    )
    flow = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    sample = EpisodeView((1, 2, 3, 4), ("flip_x",))(WindowSample(events, (4, 6), 0, 10, flow))
    assert sample.sensor_size == (3, 4)
    np.testing.assert_array_equal(sample.events.x, [0]) and np.testing.assert_array_equal(
        sample.events.y, [2]
    )
    np.testing.assert_array_equal(sample.flow[0], -flow[0, 1:4, 2:6][:, ::-1])
    np.testing.assert_array_equal(sample.flow[1], flow[1, 1:4, 2:6][:, ::-1])
