"""Tests of the CMax loss options (warp, references, reach, border compensation, scales, focus, gradient
cap) and of the iterative loss against a brute-force reference."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from test_cmax import constant_flow, loss_of, random_passes, translating_texture_window
from test_warp import loop_sample

from tinyflow.cmax import CMaxIterativeLoss, CMaxLinearLoss, CMaxLoss
from tinyflow.cmax.smoothness import flow_smoothness

SENSOR = (6, 7)


def reference_positions(x, y, k, t, u, flows, b, warp):
    """Positions of one event at every pass boundary (dict boundary -> (x, y)), event by event."""
    num_passes = len(flows)
    if warp == "linear":
        return {r: np.array([x, y]) + (r - k - t) * np.asarray(u) for r in range(num_passes + 1)}
    positions = {k + 1: np.array([x, y]) + (1 - t) * np.asarray(u), k: np.array([x, y]) - t * np.asarray(u)}
    for r in range(k + 1, num_passes):
        positions[r + 1] = positions[r] + loop_sample(flows[r][b].numpy(), *positions[r])
    for r in range(k - 1, -1, -1):
        positions[r] = positions[r + 1] - loop_sample(flows[r][b].numpy(), *positions[r + 1])
    return positions


def tent_image(points, weights, sensor_size):
    height, width = sensor_size
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.zeros(sensor_size)
    for (x, y), w in zip(points, weights, strict=True):
        image += w * np.clip(1 - abs(x - columns), 0, None) * np.clip(1 - abs(y - rows), 0, None)
    return image


def brute_force_loss(passes, flows, warp, references, reach, border, scales, smoothness_weight, focus):
    """The documented loss, computed image by image with loops (see tinyflow.cmax.losses.CMaxLoss)."""
    height, width = SENSOR
    num_passes = len(passes)
    total = 0.0
    for b in range(flows[0].shape[0]):
        events = []
        for k, ((ev, mask), flow) in enumerate(zip(passes, flows, strict=True)):
            for n in range(ev.shape[1]):
                if mask[b, n]:
                    x, y, t, p = ev[b, n].tolist()
                    u = flow[b, :, int(y), int(x)].tolist()
                    first, last = (
                        (0, num_passes)
                        if reach is None
                        else (max(0, k - reach + 1), min(num_passes, k + reach))
                    )
                    positions = reference_positions(x, y, k, t, u, flows, b, warp)
                    inside = all(
                        -0.5 <= positions[r][0] <= width - 0.5 and -0.5 <= positions[r][1] <= height - 0.5
                        for r in range(first, last + 1)
                    )
                    if inside or not border:
                        events.append((k, k + t, p, positions, first, last))
        per_scale = []
        for s in range(scales):
            parts = 2**s
            if parts > num_passes:
                break
            edges = [j * num_passes // parts for j in range(parts + 1)]
            focus_values = []
            for lo, hi in pairwise(edges):
                normaliser = hi - lo if reach is None else min(reach, hi - lo)
                for r in range(lo, hi + 1) if references == "all" else (lo, hi):
                    counts, stamps = np.zeros((2, *SENSOR)), np.zeros((2, *SENSOR))
                    for k, tau, p, positions, first, last in events:
                        if lo <= k < hi and first <= r <= last:
                            channel = 0 if p > 0 else 1
                            counts[channel] += tent_image([positions[r]], [1.0], SENSOR)
                            stamps[channel] += tent_image(
                                [positions[r]], [1 - abs(r - tau) / normaliser], SENSOR
                            )
                    if focus == "variance":
                        focus_values.append(-np.var(counts.sum(axis=0), ddof=1))
                    else:
                        average = stamps / (counts + 1e-9)
                        focus_values.append((average**2).sum() / max(((counts[0] + counts[1]) > 0).sum(), 1))
            per_scale.append(2 * np.mean(focus_values))
        maps = torch.stack([f[b : b + 1] for f in flows], dim=1)
        total += np.mean(per_scale) + smoothness_weight * flow_smoothness(maps).item()
    return total / flows[0].shape[0]


OPTIONS = [
    {"warp": "linear", "references": "all", "reach": 2, "border_compensation": True, "scales": 2},
    {"warp": "iterative", "references": "ends", "reach": None, "border_compensation": False, "scales": 1},
    {"warp": "iterative", "references": "all", "reach": None, "border_compensation": True, "scales": 1},
    {"warp": "iterative", "references": "all", "reach": 2, "border_compensation": True, "scales": 3},
    {"warp": "iterative", "references": "ends", "reach": 3, "border_compensation": False, "scales": 2},
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("focus", ["average_timestamp", "variance"])
def test_loss_matches_brute_force_reference(options, focus):
    passes, flows = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=6, num_passes=4, seed=7)
    flows = [3 * f for f in flows]  # some events leave the image
    loss = CMaxLoss(SENSOR, smoothness_weight=0.1, focus=focus, backend="torch", **options)
    expected = brute_force_loss(
        passes, flows, options["warp"], options["references"], options["reach"],
        options["border_compensation"], options["scales"], 0.1, focus,
    )  # fmt: skip
    assert loss_of(loss, passes, flows).item() == pytest.approx(expected, rel=1e-9)


def test_iterative_loss_with_constant_flow_equals_the_linear_loss_and_its_gradient():
    passes, _ = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=10, num_passes=3, seed=8)
    for jitter in (False, True):
        for references in ("ends", "all"):
            results = []
            for loss in (
                CMaxLinearLoss(
                    SENSOR, references=references, subpixel_jitter=jitter, border_compensation=True
                ),
                CMaxIterativeLoss(
                    SENSOR, references=references, subpixel_jitter=jitter, border_compensation=True
                ),
            ):
                velocity = torch.tensor([0.8, -0.45], dtype=torch.float64, requires_grad=True)
                flow = velocity.view(1, 2, 1, 1).expand(2, 2, *SENSOR)
                torch.manual_seed(0)
                value = loss_of(loss, passes, [flow] * 3)
                results.append((value, *torch.autograd.grad(value, velocity)))
            (linear, linear_grad), (iterative, iterative_grad) = results
            torch.testing.assert_close(iterative, linear)
            torch.testing.assert_close(iterative_grad, linear_grad)


def test_iterative_loss_gradcheck_wrt_flow_maps():
    passes, flows = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=6, num_passes=3, seed=4)
    loss = CMaxIterativeLoss(SENSOR, smoothness_weight=0.05, reach=2, scales=2, backend="torch")
    loss_of(loss, passes, flows)
    window = loss._window()
    positions = loss._warp(window, torch.arange(4, dtype=torch.float64))
    # the tent kernel has kinks on the pixel grid: make sure no warped event is near one
    assert ((positions - positions.round()).abs()[window.mask] > 1e-4).all()
    inputs = tuple(f.clone().requires_grad_(True) for f in flows)
    assert torch.autograd.gradcheck(lambda *fs: loss_of(loss, passes, list(fs)), inputs, fast_mode=True)


def turning_texture_window(sensor_size=(32, 32), num_points=30, events_per_pass=60, seed=0):
    """Texture points that move (2, 0) px per pass in pass 0, (0, 2) in pass 1 and (-2, 0) in pass 2.

    Returns the passes (events [1, N, 4], mask) and the true flow of each pass.
    """
    rng = np.random.default_rng(seed)
    height, width = sensor_size
    velocities = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0]])
    start = rng.uniform((8, 8), (width - 8, height - 8), size=(num_points, 2))
    polarity = rng.choice([-1.0, 1.0], size=num_points)
    passes = []
    for k, velocity in enumerate(velocities):
        point = rng.integers(0, num_points, size=events_per_pass)
        t_norm = rng.uniform(0, 1, size=events_per_pass)
        position = start[point] + velocities[:k].sum(axis=0) + t_norm[:, None] * velocity
        columns = (*np.rint(position).T, t_norm, polarity[point])
        events = torch.from_numpy(np.stack(columns, axis=-1)).unsqueeze(0)
        passes.append((events, torch.ones(events.shape[:2], dtype=torch.bool)))
    flows = [constant_flow(tuple(v), sensor_size) for v in velocities]
    return passes, flows


def test_iterative_warp_deblurs_non_linear_motion_that_the_linear_warp_cannot():
    passes, flows = turning_texture_window()
    linear = CMaxLinearLoss((32, 32), smoothness_weight=0.0)
    iterative = CMaxIterativeLoss((32, 32), references="ends", smoothness_weight=0.0)
    assert loss_of(iterative, passes, flows) < loss_of(linear, passes, flows)
    sharpness = [loss.iwe().at_end.sum(dim=1).var().item() for loss in (linear, iterative)]
    assert sharpness[1] > 1.5 * sharpness[0]
    still = [torch.zeros_like(f) for f in flows]
    assert loss_of(iterative, passes, flows) < loss_of(iterative, passes, still)


@pytest.mark.parametrize("references", ["ends", "all"])
def test_iterative_loss_is_lowest_at_the_true_translation(references):
    """With sub-pixel jitter: without it, events on the pixel grid make zero flow a local minimum,
    more so at the intermediate references (``"all"``), whose nearby events barely move."""
    sensor_size = (24, 24)
    passes = translating_texture_window(sensor_size, flow_per_pass_px=(2.0, -1.5))
    loss = CMaxIterativeLoss(
        sensor_size, references=references, smoothness_weight=0.001, scales=2, subpixel_jitter=True
    )

    def at(flow_px):
        torch.manual_seed(0)
        return loss_of(loss, passes, [constant_flow(flow_px, sensor_size)] * len(passes)).item()

    true = at((2.0, -1.5))
    for wrong in ((0.0, 0.0), (-2.0, 1.5), (1.5, -2.0), (3.0, -1.5)):
        assert true < at(wrong)


def test_gradient_cap_keeps_the_value_and_limits_the_gradient():
    passes, flows = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=8, num_passes=3, seed=9)

    def value_and_grad(max_grad_events):
        loss = CMaxIterativeLoss(SENSOR, max_grad_events=max_grad_events, smoothness_weight=0.0)
        inputs = [f.clone().requires_grad_(True) for f in flows]
        value = loss_of(loss, passes, inputs)
        return value, torch.stack(torch.autograd.grad(value, inputs))

    full, full_grad = value_and_grad(None)
    _, same_grad = value_and_grad(24)
    torch.testing.assert_close(same_grad, full_grad)
    for cap in (0, 5):
        capped, capped_grad = value_and_grad(cap)
        torch.testing.assert_close(capped, full)
        assert capped_grad.abs().sum() < full_grad.abs().sum()
    assert value_and_grad(0)[1].abs().sum() == 0


def test_border_compensation_drops_events_that_leave_the_image():
    sensor_size = (24, 24)
    passes = translating_texture_window(sensor_size, flow_per_pass_px=(2.0, -1.5), num_passes=2)
    num_events = sum(int(mask.sum()) for _, mask in passes)
    for warp in ("linear", "iterative"):
        loss = CMaxLoss(sensor_size, warp=warp, border_compensation=True)
        loss_of(loss, passes, [constant_flow((2.0, -1.5), sensor_size)] * 2)
        assert loss.iwe().at_start.sum().item() == pytest.approx(num_events)  # the texture stays inside
        loss_of(loss, passes, [constant_flow((9.0, 0.0), sensor_size)] * 2)
        images = loss.iwe()
        assert 0 < images.at_start.sum().item() < num_events - 20
        # the same events at both references (up to the outside shares of those near the border)
        assert images.at_start.sum().item() == pytest.approx(images.at_end.sum().item(), abs=2)


def test_empty_window_and_zero_flow():
    passes, flows = random_passes(batch=2, sensor_size=SENSOR, events_per_pass=5, num_passes=3, seed=10)
    empty = [(events, torch.zeros_like(mask)) for events, mask in passes]
    for options in ({}, {"border_compensation": True, "scales": 2, "reach": 1}, {"focus": "variance"}):
        loss = CMaxIterativeLoss(SENSOR, smoothness_weight=0.1, **options)
        smoothness = 0.1 * flow_smoothness(torch.stack(flows, dim=1)).mean()
        torch.testing.assert_close(loss_of(loss, empty, flows), smoothness)
        no_columns = [(events[:, :0], mask[:, :0]) for events, mask in passes]
        torch.testing.assert_close(loss_of(loss, no_columns, flows), smoothness)
        zero = [torch.zeros_like(f) for f in flows]
        assert torch.isfinite(loss_of(loss, passes, zero))


def test_accumulated_and_iwe_interface_of_the_iterative_loss():
    sensor_size = (24, 24)
    passes = translating_texture_window(sensor_size, num_passes=2)
    loss = CMaxIterativeLoss(sensor_size, reach=1)
    loss_of(loss, passes, [constant_flow((2.0, -1.5), sensor_size)] * 2)
    window = loss.accumulated()
    num_events = sum(int(mask.sum()) for _, mask in passes)
    assert window.events.shape == (1, num_events, 4)
    torch.testing.assert_close(window.flow_at_events[0, 0], torch.tensor([4.0, -3.0], dtype=torch.float64))
    images = loss.iwe()
    assert images.at_start.shape == (1, 2, *sensor_size) and not images.at_end.requires_grad
    first_pass = int(passes[0][1].sum())
    assert images.at_start.sum().item() == pytest.approx(first_pass)  # reach 1: only pass 0 reaches 0
    assert images.at_end.sum().item() == pytest.approx(num_events - first_pass)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"warp": "spline"}, "warp: expected one of linear, iterative"),
        ({"references": "middle"}, "references: expected one of all, ends"),
        ({"focus": "entropy"}, "focus: expected one of average_timestamp, variance"),
        ({"backend": "cuda"}, "backend: expected one of auto, torch, triton"),
        ({"reach": 0}, "reach: expected None or at least 1"),
        ({"scales": 0}, "scales: expected at least 1"),
        ({"max_grad_events": -1}, "max_grad_events: expected None or a count >= 0"),
    ],
)
def test_loss_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        CMaxLoss(SENSOR, **options)
