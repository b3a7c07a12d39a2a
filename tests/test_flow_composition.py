"""Window-length independence: a GT interval split into k windows of the network's length is evaluated on
the composition of the k predictions (pixel by pixel along the trajectory)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch

from tinyflow.cmax import CMaxLinearLoss
from tinyflow.data.dataset import SequenceCollate, WindowDataset, Windowing
from tinyflow.io import open_recording
from tinyflow.metrics.flow import compose_flow, event_pixel_mask, flow_error_sums
from tinyflow.models import LIFFireNet
from tinyflow.synth import SynthConfig, write_synthetic_dataset
from tinyflow.tasks import FlowTask

SIZE = (12, 16)


def _bilinear_border(field: np.ndarray, x: float, y: float) -> np.ndarray:
    """field [2, H, W] read at (x, y), clamped into the frame, by the bilinear formula written out."""
    height, width = field.shape[1:]
    x, y = min(max(x, 0.0), width - 1), min(max(y, 0.0), height - 1)
    x0, y0 = min(int(np.floor(x)), width - 2), min(int(np.floor(y)), height - 2)
    ax, ay = x - x0, y - y0
    return (
        field[:, y0, x0] * (1 - ax) * (1 - ay)
        + field[:, y0, x0 + 1] * ax * (1 - ay)
        + field[:, y0 + 1, x0] * (1 - ax) * ay
        + field[:, y0 + 1, x0 + 1] * ax * ay
    )


def _brute_force(flows: list[np.ndarray]) -> np.ndarray:
    """Each pixel's point followed through the windows one at a time: [2, H, W] displacement."""
    height, width = flows[0].shape[1:]
    total = np.zeros((2, height, width))
    for row in range(height):
        for col in range(width):
            x, y = float(col), float(row)
            for field in flows:
                dx, dy = _bilinear_border(field, x, y)
                x, y = x + dx, y + dy
            total[:, row, col] = (x - col, y - row)
    return total


def _compose_all(flows: list[torch.Tensor]) -> torch.Tensor:
    total = flows[0]
    for flow in flows[1:]:
        total = compose_flow(total, flow)
    return total


def test_constant_flow_composes_to_the_sum():
    flows = [
        torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(2, 2, *SIZE).clone() * (i + 1) for i in range(3)
    ]
    composed = _compose_all(flows)
    torch.testing.assert_close(composed, flows[0] * 6)


def test_spatially_varying_flow_matches_the_brute_force_composition():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float64)
    flows = []
    for k in range(4):  # a rotation-like field, a shear and noise: points cross pixels and leave the frame
        u = 0.3 * (y - 6) + 0.8 * np.sin(x / 3 + k) + rng.normal(0, 0.3, SIZE)
        v = -0.25 * (x - 8) + 0.5 * k + rng.normal(0, 0.3, SIZE)
        flows.append(np.stack([u, v]))
    expected = _brute_force(flows)
    composed = _compose_all([torch.from_numpy(f)[None] for f in flows])[0].numpy()
    np.testing.assert_allclose(composed, expected, atol=1e-9)
    assert np.abs(composed - sum(flows)).max() > 1.0  # the trajectory matters: not the plain sum


def test_compose_flow_refuses_shapes_that_differ():
    with pytest.raises(ValueError, match="compose_flow"):
        compose_flow(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))


# ------------------------------------------------- GT intervals of 60 ms, network windows of 20 ms

GT_US, MODEL_US = 60_000, 20_000


@pytest.fixture(scope="module")
def recording_path(tmp_path_factory):
    config = SynthConfig(
        height=SIZE[0] * 2,
        width=SIZE[1] * 2,
        duration_us=6 * GT_US,
        gt_interval_us=GT_US,
        camera_mode="objects",
        speed_range_px_s=(100.0, 200.0),
        num_hot_pixels=0,
    )
    return write_synthetic_dataset(tmp_path_factory.mktemp("composition"), config, 1, "val", seed=3)[0]


def test_gt_intervals_split_into_network_windows(recording_path):
    recording = open_recording(recording_path)
    whole = Windowing(mode="gt", flow_name="dt1").windows(recording)
    split = Windowing(mode="gt", flow_name="dt1", model_window_us=MODEL_US).windows(recording)
    assert len(split) == 3 * len(whole) == 18
    for k, interval in enumerate(whole):
        parts = split[3 * k : 3 * k + 3]
        assert [w.gt_index for w in parts] == [k] * 3 and [w.gt_part for w in parts] == [0, 1, 2]
        assert parts[0].t_start_us == interval.t_start_us and parts[-1].t_end_us == interval.t_end_us
        assert [w.duration_us for w in parts] == [MODEL_US] * 3
        assert [w.start for w in parts[1:]] == [w.stop for w in parts[:-1]]
        assert parts[0].start == interval.start and parts[-1].stop == interval.stop
    odd = Windowing(mode="gt", flow_name="dt1", model_window_us=26_000).windows(recording)  # 60 / 26 -> 2
    assert len(odd) == 2 * len(whole) and {w.duration_us for w in odd} == {30_000}
    long = Windowing(mode="gt", flow_name="dt1", model_window_us=200_000).windows(recording)
    assert [(w.start, w.stop) for w in long] == [(w.start, w.stop) for w in whole]  # at least one part


def _flow_field(t_start_us: int, height: int, width: int) -> torch.Tensor:
    """A smooth field that changes from window to window: [2, H, W] px per window."""
    y, x = torch.meshgrid(torch.arange(height).double(), torch.arange(width).double(), indexing="ij")
    phase = t_start_us / 1e4
    return torch.stack(
        [0.2 * (y - height / 2) + np.sin(phase), -0.15 * (x - width / 2) + 0.3 * np.cos(phase)]
    )


def test_the_task_evaluates_the_composed_predictions_over_each_gt_interval(recording_path):
    windowing = Windowing(mode="gt", flow_name="dt1", model_window_us=MODEL_US)
    dataset = WindowDataset([recording_path], windowing, encoding="voxel", num_bins=2)
    items = [dataset[i] for i in range(len(dataset))]
    assert [bool(item["has_gt"]) for item in items] == [False, False, True] * 6
    assert [bool(item["gt_first"]) for item in items] == [True, False, False] * 6
    network = LIFFireNet(num_bins=2, base_num_channels=4)
    task = FlowTask(network, partial(CMaxLinearLoss), partial(torch.optim.Adam))
    task.reset_evaluation()
    collate = SequenceCollate(1)
    expected_aee, sequence, masks = [], [], []
    for item in items:
        batch = collate([item])
        window = {key: value[0] for key, value in batch.items()}
        height, width = window["input"].shape[-2:]
        flow = _flow_field(int(item["t_start_us"]), height, width)
        task.evaluate_window(window, {"flow": flow[None].float()}, dataset.recording_names)
        sequence.append(flow.numpy())
        masks.append(event_pixel_mask(window["events"], window["event_mask"], (height, width))[0])
        if item["has_gt"]:
            composed = torch.from_numpy(_brute_force(sequence))[None]
            seen = torch.stack(masks).any(dim=0)[None]
            sums = flow_error_sums(composed, window["flow_gt"].double(), seen, window["gt_valid"])
            expected_aee.append(float(sums.endpoint_error_px / sums.num_pixels))
            one_window = flow_error_sums(
                torch.from_numpy(sequence[-1])[None], window["flow_gt"].double(), seen, window["gt_valid"]
            )
            assert float(one_window.endpoint_error_px / one_window.num_pixels) != pytest.approx(
                expected_aee[-1]
            )
            sequence, masks = [], []
    (errors,) = task.flow_errors.compute().values()
    assert errors.num_windows == 6
    assert errors.aee_px == pytest.approx(float(np.mean(expected_aee)), rel=1e-5)


def test_without_a_model_window_every_gt_interval_is_one_window(recording_path):
    dataset = WindowDataset([recording_path], replace(Windowing(mode="gt"), model_window_us=None))
    assert all(bool(dataset[i]["has_gt"]) and bool(dataset[i]["gt_first"]) for i in range(len(dataset)))
