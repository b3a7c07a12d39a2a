"""The window dataset, its collation, and the DataModule over a folder of HDF5 files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_io import SENSOR, random_events
from torch.utils.data import DataLoader

from tinyflow.data.datamodule import H5DirDataModule, find_recordings
from tinyflow.data.dataset import HotPixelFilter, SequenceCollate, WindowDataset, Windowing
from tinyflow.data.sampler import SequentialBatchSampler, WindowKey
from tinyflow.events.encodings import event_counts, event_list
from tinyflow.events.groundtruth import FlowGT
from tinyflow.events.transforms import FlowAugmentation
from tinyflow.io import write_canonical


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(5)
    for i in range(3):
        events = random_events(rng, n=1500 + 300 * i)
        edges = np.linspace(0, int(events.t_us[-1]), 6).astype(np.int64)
        flow = FlowGT(rng.normal(size=(5, 2, *SENSOR)).astype(np.float32), edges[:-1], edges[1:])
        write_canonical(tmp_path / f"rec_{i}.h5", events, SENSOR, flows={"dt1": flow})
    (tmp_path / "notes.txt").write_text("not a recording")
    return tmp_path


def test_items_match_direct_encoding(folder) -> None:
    paths = find_recordings(folder)
    assert [p.name for p in paths] == ["rec_0.h5", "rec_1.h5", "rec_2.h5"]
    dataset = WindowDataset(paths, Windowing(mode="gt"), encoding="counts")
    assert dataset.window_counts == [5, 5, 5] and len(dataset) == 15
    recording = dataset.recordings[1]
    window = dataset.windows[1][2]
    item = dataset[WindowKey(1, 2, episode=0, end_of_recording=False)]
    events = recording.events(window.start, window.stop)
    np.testing.assert_array_equal(item["input"], event_counts(events, SENSOR))
    np.testing.assert_array_equal(item["events"], event_list(events, window.t_start_us, window.t_end_us))
    np.testing.assert_array_equal(item["flow_gt"], recording.flow_map("dt1", 2)[0])
    assert item["has_gt"] and item["gt_valid"].all() and item["dt_us"] == window.duration_us
    assert dataset[7]["recording"] == 1 and dataset[9]["end_of_recording"]


def test_count_windows_have_no_gt_and_padding_is_zero(folder) -> None:
    dataset = WindowDataset(
        find_recordings(folder), Windowing(mode="count", events_per_window=200), encoding="voxel", num_bins=3
    )
    item = dataset[0]
    assert item["input"].shape == (3, *SENSOR) and not item["has_gt"] and item["events"].shape == (200, 4)
    pad = dataset[WindowKey(-1, -1, -1, True, active=False)]
    assert not pad["active"] and pad["input"].shape == (3, *SENSOR) and pad["input"].sum() == 0


def test_episode_augmentation_is_shared_by_the_windows_of_a_visit(folder) -> None:
    aug = FlowAugmentation(p_flip_x=0.5, p_flip_y=0.5)
    dataset = WindowDataset(
        find_recordings(folder), Windowing(mode="gt"), augmentation=aug, crop_size=(4, 6), seed=3
    )
    plain = WindowDataset(find_recordings(folder), Windowing(mode="gt"))
    flips_by_episode = {}
    for episode in range(12):
        items = [dataset[WindowKey(0, w, episode, False)] for w in range(5)]
        assert all(i["input"].shape == (2, 4, 6) for i in items)
        signature = []
        for w, item in enumerate(items):
            full = plain[WindowKey(0, w, 0, False)]["flow_gt"]
            # Find the crop and flips that reproduce the item's GT from the unaugmented map.
            matches = {
                (top, left, fx, fy)
                for top in range(SENSOR[0] - 3)
                for left in range(SENSOR[1] - 5)
                for fx in (False, True)
                for fy in (False, True)
                if np.array_equal(_view(full, top, left, fx, fy), item["flow_gt"])
            }
            assert len(matches) == 1
            signature.append(matches.pop())
        assert len(set(signature)) == 1, "one crop and flip for the whole visit"
        flips_by_episode[episode] = signature[0][2:]
    assert len(set(flips_by_episode.values())) > 1


def _view(flow: np.ndarray, top: int, left: int, flip_x: bool, flip_y: bool) -> np.ndarray:
    out = flow[:, top : top + 4, left : left + 6]
    if flip_x:
        out = out[:, :, ::-1] * np.array([-1, 1], np.float32)[:, None, None]
    if flip_y:
        out = out[:, ::-1, :] * np.array([1, -1], np.float32)[:, None, None]
    return out


def test_collation_is_time_major_and_workers_give_the_same_batches(folder) -> None:
    dataset = WindowDataset(find_recordings(folder), Windowing(mode="count", events_per_window=100))
    sampler = SequentialBatchSampler(dataset.window_counts, batch_size=2, seq_len=3, shuffle=True, seed=0)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=SequenceCollate(2), num_workers=workers
        )
        batches[workers] = list(loader)
    first = batches[0][0]
    assert first["input"].shape == (3, 2, 2, *SENSOR)
    assert first["events"].shape[:2] == (3, 2) and first["event_mask"].shape == first["events"].shape[:3]
    keys = next(iter(sampler))
    expected = dataset[keys[1 * 2 + 1]]["input"]  # t = 1, b = 1
    np.testing.assert_array_equal(first["input"][1, 1].numpy(), expected)
    assert len(batches[0]) == len(batches[2]) == len(sampler)
    for a, b in zip(batches[0], batches[2], strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_hot_pixel_filter_drops_a_hot_pixel(tmp_path) -> None:
    rng = np.random.default_rng(2)
    events = random_events(rng, n=3000)
    events.x[::3] = 4
    events.y[::3] = 5
    write_canonical(tmp_path / "hot.h5", events, SENSOR)
    dataset = WindowDataset(
        [tmp_path / "hot.h5"], Windowing(mode="count", events_per_window=500), hot_pixels=HotPixelFilter()
    )
    assert dataset.hot_masks[0][0][5, 4] and dataset.hot_masks[0][0].sum() == 1
    assert dataset[0]["input"][:, 5, 4].sum() == 0


def test_h5dir_datamodule_uses_train_and_val_subfolders(folder, tmp_path_factory) -> None:
    module = H5DirDataModule(
        root=folder, batch_size=2, seq_len=2, train_windowing={"mode": "count", "events_per_window": 100}
    )
    assert module.train_paths() == module.val_paths() == find_recordings(folder)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["input"].shape[:2] == (2, 2)
    val = list(module.val_dataloader())
    assert sum(int(b["active"].sum()) for b in val) == 15 and all(b["has_gt"].all() for b in val)
    with pytest.raises(FileNotFoundError, match="holds no HDF5 recordings"):
        find_recordings(tmp_path_factory.mktemp("empty"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_recordings(folder / "missing")
