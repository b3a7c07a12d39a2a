"""The CMax loss on the synthetic event camera's windows prefers the exact ground-truth flow."""

from __future__ import annotations

import pytest
import torch

from tinyflow.cmax import CMaxLinearLoss
from tinyflow.data.dataset import HotPixelFilter, SequenceCollate, WindowDataset, Windowing
from tinyflow.data.sampler import WindowKey
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.dataset import write_synthetic_dataset

PASSES = 10
SMOOTHNESS = 1e-4  # config/loss/cmax_linear.yaml


@pytest.fixture(scope="module")
def accumulation_windows(tmp_path_factory) -> list[dict[str, torch.Tensor]]:
    """Two accumulation windows (10 GT-aligned passes each) from each of two 64x64 recordings."""
    config = SynthConfig(height=64, width=64, duration_us=400_000, speed_range_px_s=(10.0, 60.0))
    files = write_synthetic_dataset(tmp_path_factory.mktemp("synth"), config, 2, "train", seed=0)
    dataset = WindowDataset(files, Windowing(mode="gt"), hot_pixels=HotPixelFilter())
    collate = SequenceCollate(1)
    return [
        collate([dataset[WindowKey(rec, w, 0, False)] for w in range(start, start + PASSES)])
        for rec in range(2)
        for start in (0, PASSES)
    ]


def loss_at(batch: dict[str, torch.Tensor], scale: float, loss: CMaxLinearLoss) -> float:
    torch.manual_seed(0)
    loss.reset()
    for t in range(PASSES):
        loss.accumulate(batch["events"][t], batch["event_mask"][t], scale * batch["flow_gt"][t])
    return float(loss.compute())


def test_loss_at_ground_truth_is_lower_than_at_zero_and_wrong_flows(accumulation_windows) -> None:
    loss = CMaxLinearLoss((64, 64), smoothness_weight=SMOOTHNESS, subpixel_jitter=True)
    for batch in accumulation_windows:
        at_gt = loss_at(batch, 1.0, loss)
        assert at_gt < loss_at(batch, 0.0, loss)
        assert at_gt < loss_at(batch, -1.0, loss)
        assert at_gt < loss_at(batch, 2.0, loss)


def test_subpixel_jitter_removes_the_barrier_around_zero_flow(accumulation_windows) -> None:
    """Without jitter, events on the integer grid make zero flow a local minimum (the loss rises
    along the ray to the GT before it falls); with jitter the loss falls from zero towards the GT."""
    plain = CMaxLinearLoss((64, 64), smoothness_weight=SMOOTHNESS)
    jittered = CMaxLinearLoss((64, 64), smoothness_weight=SMOOTHNESS, subpixel_jitter=True)
    rises_without = 0
    for batch in accumulation_windows:
        rises_without += loss_at(batch, 0.25, plain) > loss_at(batch, 0.0, plain)
        assert loss_at(batch, 0.25, jittered) < loss_at(batch, 0.0, jittered)
        assert loss_at(batch, 0.75, jittered) < loss_at(batch, 0.25, jittered)
    assert rises_without == len(accumulation_windows)
