"""scripts/flow_vs_gt.py: the scale / residual split of a prediction, and its pairing with the GT intervals."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from tinyflow.io import open_recording
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.dataset import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("flow_vs_gt", ROOT / "scripts" / "flow_vs_gt.py")
flow_vs_gt = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(flow_vs_gt)


def test_a_scaled_prediction_has_no_residual_and_a_turned_one_no_slope() -> None:
    gt = np.random.default_rng(0).normal(size=(500, 2))
    scaled = flow_vs_gt.decompose(0.5 * gt, gt)
    assert scaled["slope"] == pytest.approx(0.5) and scaled["residual_px"] == pytest.approx(0, abs=1e-12)
    assert scaled["aee"] == pytest.approx(0.5 * scaled["mean_gt_px"])
    turned = flow_vs_gt.decompose(np.stack((-gt[:, 1], gt[:, 0]), axis=1), gt)  # 90 degrees off
    assert turned["slope"] == pytest.approx(0, abs=1e-12)
    assert turned["residual_px"] == pytest.approx(turned["mean_gt_px"])


def test_windows_pair_with_their_gt_interval_at_the_pixels_with_events(tmp_path: Path) -> None:
    config = SynthConfig(height=24, width=32, duration_us=100_000, gt_interval_us=20_000)
    (path,) = write_synthetic_dataset(tmp_path / "set", config, 1, "val", seed=3)
    with open_recording(path) as recording:
        starts, ends = recording.flow_intervals("dt1")
        flows = np.stack([0.5 * recording.flow_map("dt1", k)[0] for k in range(len(starts))])
    half = (starts[0] + ends[0]) // 2  # one more window that spans no whole interval
    flow_file = tmp_path / "flow.h5"
    with h5py.File(flow_file, "w") as file:
        group = file.create_group(path.stem)
        group["flow"] = np.concatenate([flows, flows[:1]])
        group["t_start_us"] = np.append(starts, starts[0])
        group["t_end_us"] = np.append(ends, half)
    pred, gt, left_out = flow_vs_gt.paired_flows(flow_file, path.parent)
    assert left_out == 1 and len(gt) > 100
    np.testing.assert_allclose(pred, 0.5 * gt)
    with h5py.File(flow_file, "w") as file:  # the first window alone: one pair per pixel with an event
        group = file.create_group(path.stem)
        group["flow"], group["t_start_us"], group["t_end_us"] = flows[:1], starts[:1], ends[:1]
    with open_recording(path) as recording:
        first, last = recording.index_at_time(np.array([starts[0], ends[0]]))
        events = recording.events(int(first), int(last))
        valid = recording.flow_map("dt1", 0)[1]
    pixels = {(y, x) for y, x in zip(events.y.tolist(), events.x.tolist(), strict=True)}
    pixels = {p for p in pixels if valid is None or valid[p]}
    assert len(flow_vs_gt.paired_flows(flow_file, path.parent)[1]) == len(pixels) > 10
    result = flow_vs_gt.decompose(pred, gt)
    assert result["slope"] == pytest.approx(0.5) and result["residual_px"] == pytest.approx(0, abs=1e-6)
