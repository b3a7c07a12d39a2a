"""The fused CMax functions (splat, iterative warp, smoothness, linear warp) against the implementations
they replaced: the same values and gradients, gradcheck in float64, and the losses built on them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import tinyflow.cmax.losses as losses_module
import tinyflow.cmax.warp as warp_module
from tinyflow.cmax import CMaxIterativeLoss, CMaxLinearLoss
from tinyflow.cmax.bilinear import bilinear_corners
from tinyflow.cmax.iterative import warp_iterative_lean
from tinyflow.cmax.smoothness import charbonnier, flow_smoothness
from tinyflow.cmax.splat import splat_points_torch
from tinyflow.cmax.warp import warp_iterative_torch, warp_to_references

ROOT = Path(__file__).resolve().parents[1]
SENSOR = (6, 7)


def previous_splat(points, channel, weights, num_channels, sensor_size):
    """The splat before the fused function: four-corner scatter-adds through autograd."""
    height, width = sensor_size
    batch, _, num_weights = weights.shape
    flat_index, share = bilinear_corners(points, sensor_size)
    index = (channel.long().unsqueeze(1) * (height * width) + flat_index).flatten(1)
    images = [
        share.new_zeros(batch, num_channels * height * width).scatter_add(
            1, index, (share * weights[:, None, :, k]).flatten(1)
        )
        for k in range(num_weights)
    ]
    return torch.stack(images, dim=1).view(batch, num_weights, num_channels, height, width).transpose(1, 2)


def previous_smoothness(flow_maps, eps=1e-3, alpha=0.5):
    """The smoothness before the fused function: autograd through the five neighbour differences."""
    differences = (
        flow_maps[..., :, :-1] - flow_maps[..., :, 1:],
        flow_maps[..., :-1, :] - flow_maps[..., 1:, :],
        flow_maps[..., :-1, :-1] - flow_maps[..., 1:, 1:],
        flow_maps[..., 1:, :-1] - flow_maps[..., :-1, 1:],
        flow_maps[:, :-1] - flow_maps[:, 1:],
    )
    total = sum(charbonnier(d, eps, alpha).flatten(1).sum(dim=1) for d in differences)
    return total / (len(differences) * flow_maps.shape[1])


def values_and_gradients(function, inputs, readout):
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    output = function(*leaves)
    (output * readout).sum().backward()
    return [output.detach()] + [leaf.grad for leaf in leaves]


def assert_all_close(first, second, **tolerance):
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, **tolerance)


def splat_inputs(dtype, num_points=400, batch=2, num_weights=2, num_channels=3):
    generator = torch.Generator().manual_seed(0)
    height, width = SENSOR
    x = torch.rand(batch, num_points, generator=generator) * (width + 6) - 3  # points inside and outside
    y = torch.rand(batch, num_points, generator=generator) * (height + 6) - 3
    points = torch.stack((x, y), dim=-1).to(dtype)
    points[0, :6] = torch.tensor([[-1, 2], [width - 1, 3], [0, 0], [width, height], [-2, -2], [2.5, -1]])
    channel = torch.randint(0, num_channels, (batch, num_points), generator=generator)
    weights = torch.rand(batch, num_points, num_weights, generator=generator, dtype=dtype)
    return points, channel, weights, num_channels


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_splat_equals_the_previous_implementation(dtype, monkeypatch):
    monkeypatch.setattr("tinyflow.cmax.bilinear.CHUNK_POINTS", {"cpu": 64})  # several chunks per element
    points, channel, weights, num_channels = splat_inputs(dtype)
    readout = torch.randn(2, num_channels, 2, *SENSOR, dtype=dtype)
    new = values_and_gradients(
        lambda p, w: splat_points_torch(p, channel.int(), w, num_channels, SENSOR), (points, weights), readout
    )
    old = values_and_gradients(
        lambda p, w: previous_splat(p, channel, w, num_channels, SENSOR), (points, weights), readout
    )
    assert_all_close(new, old)


@pytest.mark.parametrize("chunk", [64, 1000, 4000])  # split elements, whole elements, all in one chunk
def test_a_batch_splat_equals_each_element_splatted_alone_bit_for_bit(chunk, monkeypatch):
    """Chunks hold whole batch elements where they fit: every pixel sums its shares in the order of a
    one-element batch, so values and gradients are equal, not merely close."""
    monkeypatch.setattr("tinyflow.cmax.bilinear.CHUNK_POINTS", {"cpu": chunk})
    points, channel, weights, num_channels = splat_inputs(torch.float32, num_points=400, batch=5)
    readout = torch.randn(5, num_channels, 2, *SENSOR)

    def splat(p, w, c):
        return splat_points_torch(p, c, w, num_channels, SENSOR)

    batch = values_and_gradients(lambda p, w: splat(p, w, channel), (points, weights), readout)
    for element in range(5):
        alone = values_and_gradients(
            lambda p, w, e=element: splat(p, w, channel[e : e + 1]),
            (points[element : element + 1], weights[element : element + 1]),
            readout[element : element + 1],
        )
        for together, single in zip(batch, alone, strict=True):
            assert torch.equal(together[element : element + 1], single)


def test_splat_gradcheck_and_nan_points_are_dropped():
    points, channel, weights, num_channels = splat_inputs(torch.float64, num_points=36)
    points, channel, weights = points[:, 6:], channel[:, 6:], weights[:, 6:]  # off the integer grid
    leaves = (points.clone().requires_grad_(), weights.clone().requires_grad_())
    assert torch.autograd.gradcheck(
        lambda p, w: splat_points_torch(p, channel, w, num_channels, SENSOR), leaves
    )
    nan = torch.tensor([[[float("nan"), 1.0], [2.0, 3.0]]], dtype=torch.float64)
    image = splat_points_torch(
        nan, torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2, 1).double(), 1, SENSOR
    )
    assert image.sum() == 1 and image[0, 0, 0, 3, 2] == 1


def warp_inputs(ordered, batch=2, sensor=SENSOR):
    generator = torch.Generator().manual_seed(1)
    num_passes = 4
    height, width = sensor
    pass_index = torch.repeat_interleave(torch.arange(num_passes), torch.tensor([3, 0, 4, 2]))
    if not ordered:
        pass_index = pass_index[torch.randperm(pass_index.numel(), generator=generator)]
    num_events = pass_index.numel()
    start = torch.stack(
        (
            torch.randint(0, width, (batch, num_events), generator=generator),
            torch.randint(0, height, (batch, num_events), generator=generator),
        ),
        dim=-1,
    ).double()
    t_norm = torch.rand(batch, num_events, generator=generator, dtype=torch.float64)
    own_flow = 1.5 * torch.randn(batch, num_events, 2, generator=generator, dtype=torch.float64)
    flow_maps = 1.5 * torch.randn(
        batch, num_passes, 2, height, width, generator=generator, dtype=torch.float64
    )
    return pass_index, (start, t_norm, own_flow, flow_maps)


@pytest.mark.parametrize("ordered", [True, False])
def test_iterative_warp_equals_autograd_through_the_reference(ordered, monkeypatch):
    monkeypatch.setattr("tinyflow.cmax.bilinear.CHUNK_POINTS", {"cpu": 4})
    pass_index, inputs = warp_inputs(ordered)
    readout = torch.randn(2, pass_index.numel(), 5, 2, dtype=torch.float64)
    lean = values_and_gradients(
        lambda s, t, u, f: warp_iterative_lean(warp_iterative_torch, s, t, pass_index, u, f), inputs, readout
    )
    reference = values_and_gradients(
        lambda s, t, u, f: warp_iterative_torch(s, t, pass_index, u, f), inputs, readout
    )
    assert_all_close(lean, reference)


def test_iterative_warp_gradcheck():
    pass_index, inputs = warp_inputs(False, batch=1, sensor=(4, 5))
    leaves = tuple(v.detach().clone().requires_grad_() for v in inputs)
    assert torch.autograd.gradcheck(
        lambda s, t, u, f: warp_iterative_lean(warp_iterative_torch, s, t, pass_index, u, f), leaves
    )


def test_linear_warp_gradcheck():
    pass_index, (start, t_norm, own_flow, flow_maps) = warp_inputs(True)
    references = torch.tensor([0.0, 1.5, 4.0], dtype=torch.float64)
    leaves = tuple(v.requires_grad_() for v in (start, t_norm, own_flow))
    assert torch.autograd.gradcheck(
        lambda s, t, u: warp_to_references(s, t, pass_index, u, flow_maps, references, "linear"), leaves
    )


@pytest.mark.parametrize("alpha", [0.5, 0.45])
def test_smoothness_equals_the_previous_implementation(alpha):
    flow_maps = torch.randn(2, 3, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    new = values_and_gradients(lambda f: flow_smoothness(f, 1e-3, alpha), (flow_maps,), torch.ones(2))
    old = values_and_gradients(lambda f: previous_smoothness(f, 1e-3, alpha), (flow_maps,), torch.ones(2))
    assert_all_close(new, old)
    assert torch.autograd.gradcheck(lambda f: flow_smoothness(f, 1e-3, alpha), (flow_maps,))


def training_window(num_passes=3, events_per_pass=3000, batch=2, size=32, seed=0):
    spec = importlib.util.spec_from_file_location("bench_cmax", ROOT / "scripts" / "bench_cmax.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench, bench.random_inputs(batch, size, num_passes, events_per_pass, "cpu", seed=seed)


def loss_and_gradients(loss, windows, flows):
    leaves = [f.detach().clone().requires_grad_() for f in flows]
    loss.reset()
    for (events, mask), flow in zip(windows, leaves, strict=True):
        loss.accumulate(events, mask, flow)
    value = loss.compute()
    value.backward()
    return [value.detach()] + [leaf.grad for leaf in leaves]


def test_linear_loss_equals_event_flows_formulation_in_float32():
    bench, (windows, flows) = training_window()
    ours = loss_and_gradients(
        CMaxLinearLoss((32, 32), smoothness_weight=1e-3, backend="torch"), windows, flows
    )
    leaves = [f.detach().clone().requires_grad_() for f in flows]
    reference = bench.event_flow_loss(windows, leaves) / 2  # event_flow sums over the batch of 2
    reference.backward()
    assert_all_close(ours, [reference.detach()] + [leaf.grad for leaf in leaves], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("options", [{}, {"border_compensation": True, "reach": 2, "scales": 2}])
def test_iterative_loss_equals_the_previous_implementation_in_float32(options, monkeypatch):
    _, (windows, flows) = training_window()
    loss = CMaxIterativeLoss((32, 32), smoothness_weight=1e-3, backend="torch", **options)
    ours = loss_and_gradients(loss, windows, flows)
    # the previous path: autograd through the reference warp, the previous splat and smoothness
    monkeypatch.setattr(warp_module, "warp_iterative_lean", lambda warp, *args: warp(*args))
    monkeypatch.setattr(
        losses_module, "splat_points", lambda p, c, w, n, s, backend: previous_splat(p, c, w, n, s)
    )
    monkeypatch.setattr(losses_module, "flow_smoothness", previous_smoothness)
    previous = loss_and_gradients(loss, windows, flows)
    assert_all_close(ours, previous, rtol=1e-4, atol=1e-6)
