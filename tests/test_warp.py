"""Tests of the PyTorch references of the CMax engine: bilinear sampling, the warps, multi-channel splat,
reference plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinyflow.cmax.bilinear import sample_bilinear
from tinyflow.cmax.references import plan_references
from tinyflow.cmax.splat import splat_bilinear, splat_points, splat_points_torch
from tinyflow.cmax.warp import warp_iterative_torch, warp_linear, warp_to_references

SENSOR = (5, 6)


def loop_sample(flow: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear flow [2] at (x, y) of a [2, H, W] map, the point clamped into the image first."""
    height, width = flow.shape[1:]
    x, y = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    value = np.zeros(2)
    for column, row in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
        if 0 <= column < width and 0 <= row < height:
            value += (1 - abs(x - column)) * (1 - abs(y - row)) * flow[:, row, column]
    return value


def loop_iterative(start, t_norm, pass_index, own_flow, flow_maps) -> np.ndarray:
    """The iterative warp event by event: [B, M, P + 1, 2]."""
    batch, num_events = t_norm.shape
    num_passes = flow_maps.shape[1]
    out = np.zeros((batch, num_events, num_passes + 1, 2))
    for b in range(batch):
        for m in range(num_events):
            k, t, u = int(pass_index[m]), float(t_norm[b, m]), own_flow[b, m].numpy()
            out[b, m, k + 1] = start[b, m].numpy() + (1 - t) * u
            for boundary in range(k + 1, num_passes):
                out[b, m, boundary + 1] = out[b, m, boundary] + loop_sample(
                    flow_maps[b, boundary].numpy(), *out[b, m, boundary]
                )
            out[b, m, k] = start[b, m].numpy() - t * u
            for boundary in range(k - 1, -1, -1):
                out[b, m, boundary] = out[b, m, boundary + 1] - loop_sample(
                    flow_maps[b, boundary].numpy(), *out[b, m, boundary + 1]
                )
    return out


def random_warp_inputs(batch=2, num_events=9, num_passes=3, seed=0, flow_scale=1.5):
    """Events anywhere in and around the image (some leave it), random pass order, random flows."""
    generator = torch.Generator().manual_seed(seed)
    height, width = SENSOR
    start = torch.rand(batch, num_events, 2, generator=generator, dtype=torch.float64)
    start = start * torch.tensor([width + 1.0, height + 1.0], dtype=torch.float64) - 1
    t_norm = torch.rand(batch, num_events, generator=generator, dtype=torch.float64)
    pass_index = torch.randint(0, num_passes, (num_events,), generator=generator)
    own_flow = flow_scale * torch.randn(batch, num_events, 2, generator=generator, dtype=torch.float64)
    flow_maps = flow_scale * torch.randn(
        batch, num_passes, 2, *SENSOR, generator=generator, dtype=torch.float64
    )
    return start, t_norm, pass_index, own_flow, flow_maps


def test_sample_bilinear_matches_loop_and_reads_the_border_outside():
    generator = torch.Generator().manual_seed(0)
    flow = torch.randn(2, 2, *SENSOR, generator=generator, dtype=torch.float64)
    points = torch.rand(2, 20, 2, generator=generator, dtype=torch.float64) * 10 - 2
    points[0, :3] = torch.tensor([[0.0, 0.0], [5.0, 4.0], [2.0, 3.0]])  # corners and an integer pixel
    sampled = sample_bilinear(flow, points)
    for b in range(2):
        for n in range(20):
            np.testing.assert_allclose(
                sampled[b, n].numpy(), loop_sample(flow[b].numpy(), *points[b, n].tolist())
            )
    torch.testing.assert_close(
        sample_bilinear(flow, torch.tensor([[[-3.0, 1.0]]] * 2).double()), flow[:, :, 1, 0][:, None]
    )


def test_iterative_warp_matches_the_event_by_event_loop():
    inputs = random_warp_inputs(num_passes=4, num_events=11)
    np.testing.assert_allclose(warp_iterative_torch(*inputs).numpy(), loop_iterative(*inputs), atol=1e-12)


@pytest.mark.parametrize("jitter", [False, True])
def test_iterative_warp_with_constant_flow_equals_the_linear_warp(jitter):
    start, t_norm, pass_index, _, _ = random_warp_inputs(num_events=15, num_passes=4, seed=1)
    if not jitter:
        start = start.round()
    velocity = torch.tensor([1.7, -2.3], dtype=torch.float64)
    own_flow = velocity.expand(*t_norm.shape, 2)
    flow_maps = velocity.view(1, 1, 2, 1, 1).expand(2, 4, 2, *SENSOR)
    references = torch.arange(5, dtype=torch.float64)
    iterative = warp_to_references(start, t_norm, pass_index, own_flow, flow_maps, references, "iterative")
    linear = warp_to_references(start, t_norm, pass_index, own_flow, flow_maps, references, "linear")
    assert (iterative[..., 0] > SENSOR[1]).any() and (iterative[..., 1] < 0).any()  # events leave the image
    torch.testing.assert_close(iterative, linear, rtol=0, atol=1e-12)
    tau = pass_index + t_norm
    x, y = warp_linear(start[..., 0], start[..., 1], tau, own_flow, 2.5)  # any reference time
    at_half = warp_to_references(
        start, t_norm, pass_index, own_flow, flow_maps, references[:1] + 2.5, "linear"
    )
    torch.testing.assert_close(at_half[:, :, 0], torch.stack((x, y), dim=-1))


def test_iterative_warp_of_one_pass_is_the_linear_warp_for_any_flow():
    start, t_norm, pass_index, own_flow, flow_maps = random_warp_inputs(num_passes=1)
    references = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(
        warp_to_references(start, t_norm, pass_index, own_flow, flow_maps, references, "iterative"),
        warp_to_references(start, t_norm, pass_index, own_flow, flow_maps, references, "linear"),
    )


def test_iterative_warp_selects_boundaries_and_handles_empty_and_zero_flow():
    start, t_norm, pass_index, own_flow, flow_maps = random_warp_inputs()
    every = warp_iterative_torch(start, t_norm, pass_index, own_flow, flow_maps)
    some = warp_to_references(
        start, t_norm, pass_index, own_flow, flow_maps, torch.tensor([3.0, 0.0]), "iterative"
    )
    torch.testing.assert_close(some, every[:, :, [3, 0]])
    still = warp_iterative_torch(
        start, t_norm, pass_index, torch.zeros_like(own_flow), torch.zeros_like(flow_maps)
    )
    torch.testing.assert_close(still, start.unsqueeze(2).expand(-1, -1, 4, -1))
    empty = warp_iterative_torch(start[:, :0], t_norm[:, :0], pass_index[:0], own_flow[:, :0], flow_maps)
    assert empty.shape == (2, 0, 4, 2)


def test_iterative_warp_gradcheck():
    inputs = list(random_warp_inputs(num_events=6, num_passes=3, seed=2))
    pass_index = inputs.pop(2)
    differentiable = [v.clone().requires_grad_(True) for v in inputs]
    positions = warp_iterative_torch(*differentiable[:2], pass_index, *differentiable[2:])
    # the bilinear kernel has kinks on the pixel grid: make sure no position is near one
    assert ((positions - positions.round()).abs() > 1e-4).all()
    assert torch.autograd.gradcheck(
        lambda s, t, u, f: warp_iterative_torch(s, t, pass_index, u, f), differentiable
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"references": torch.tensor([0.5])}, "pass boundaries"),
        ({"references": torch.tensor([4.0])}, "pass boundaries"),
        ({"pass_index": torch.full((9,), 3)}, "pass_index: expected integers in \\[0, 2\\]"),
        ({"own_flow": torch.zeros(2, 9, 3)}, "own_flow: expected shape \\(2, 9, 2\\)"),
        ({"mode": "spline"}, "mode: expected one of linear, iterative"),
    ],
)
def test_warp_rejects_bad_arguments(kwargs, message):
    start, t_norm, pass_index, own_flow, flow_maps = random_warp_inputs()
    arguments = {
        "start": start,
        "t_norm": t_norm,
        "pass_index": pass_index,
        "own_flow": own_flow,
        "flow_maps": flow_maps,
        "references": torch.tensor([0.0, 3.0]),
        "mode": "iterative",
    } | kwargs
    with pytest.raises(ValueError, match=message):
        warp_to_references(**arguments)


def test_splat_points_matches_per_channel_splat_and_gradcheck():
    generator = torch.Generator().manual_seed(3)
    points = torch.rand(2, 30, 2, generator=generator, dtype=torch.float64) * 9 - 1.5
    channel = torch.randint(0, 3, (2, 30), generator=generator)
    weights = torch.rand(2, 30, 2, generator=generator, dtype=torch.float64)
    images = splat_points(points, channel, weights, 3, SENSOR, backend="torch")
    assert images.shape == (2, 3, 2, *SENSOR)
    for c in range(3):
        for k in range(2):
            expected = splat_bilinear(
                points[..., 0], points[..., 1], weights[..., k] * (channel == c), SENSOR
            )
            torch.testing.assert_close(images[:, c, k], expected)
    readout = torch.rand(images.shape, generator=generator, dtype=torch.float64)
    points.requires_grad_(True), weights.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p, w: (splat_points_torch(p, channel, w, 3, SENSOR) * readout).sum(), (points, weights)
    )


def test_splat_points_rejects_bad_shapes():
    points = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="channel must be an integer tensor of shape \\(1, 4\\)"):
        splat_points(points, torch.zeros(1, 4), torch.zeros(1, 4, 1), 1, SENSOR)
    with pytest.raises(ValueError, match="channel values must lie in \\[0, 1\\]; got \\[0, 2\\]"):
        splat_points(points, torch.tensor([[0, 1, 2, 0]]), torch.zeros(1, 4, 1), 2, SENSOR)
    with pytest.raises(ValueError, match="weights must be \\[B, Q, K\\]"):
        splat_points(points, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4), 1, SENSOR)


def test_reference_plan_slots_reach_and_scales():
    plan = plan_references(4, "ends", num_scales=3)
    assert plan.references.tolist() == [0, 1, 2, 3, 4]
    whole, halves, quarters = plan.scales
    assert (whole.num_slots, halves.num_slots, quarters.num_slots) == (2, 4, 8)
    assert whole.slots.tolist() == [[0, -1, -1, -1, 1]] * 4
    assert halves.slots.tolist() == [[0, -1, 1, -1, -1]] * 2 + [[-1, -1, 2, -1, 3]] * 2
    assert halves.normaliser.tolist() == [2, 2, 2, 2]
    reach = plan_references(4, "all", num_scales=1, reach=1).scales[0]
    assert reach.slots.tolist() == [
        [0, 1, -1, -1, -1],
        [-1, 1, 2, -1, -1],
        [-1, -1, 2, 3, -1],
        [-1, -1, -1, 3, 4],
    ]
    assert reach.normaliser.tolist() == [1, 1, 1, 1]
    assert len(plan_references(1, "all", num_scales=3).scales) == 1  # finer scales than passes are skipped
    uneven = plan_references(5, "ends", num_scales=2).scales[1]
    assert uneven.normaliser.tolist() == [2, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="references: expected one of all, ends"):
        plan_references(4, "middle")
    with pytest.raises(ValueError, match="reach: expected None or at least 1"):
        plan_references(4, reach=0)
