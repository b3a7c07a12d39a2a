"""Tests of the CMax building blocks (splat, flow sampling, warp) and of the linear CMax loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.losses import CMaxLinearLoss
from tinyflow.cmax.smoothness import flow_smoothness
from tinyflow.cmax.splat import splat_bilinear, splat_nearest
from tinyflow.cmax.warp import sample_flow_at_events, warp_linear
from tinyflow.events.core import EventDataError


def translating_texture_window(
    sensor_size: tuple[int, int] = (24, 24),
    flow_per_pass_px: tuple[float, float] = (2.0, -1.5),
    num_passes: int = 2,
    num_points: int = 40,
    events_per_point: int = 8,
    seed: int = 0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Events of random texture points moving at a constant velocity, split into equal-duration passes.

    Each point fires ``events_per_point`` events (one polarity per point) at uniform random times over
    the window; an event sits at the pixel nearest to the point's position at its time.
    Returns one (events [1, N, 4], mask [1, N]) pair per pass, t_norm normalised over the pass.
    """
    rng = np.random.default_rng(seed)
    height, width = sensor_size
    start = rng.uniform((6, 6), (width - 6, height - 6), size=(num_points, 2))
    polarity = rng.choice([-1.0, 1.0], size=num_points)
    point = np.repeat(np.arange(num_points), events_per_point)
    t_passes = rng.uniform(0, num_passes, size=point.size)
    position = np.rint(start[point] + t_passes[:, None] * np.asarray(flow_per_pass_px))
    passes = []
    for index in range(num_passes):
        chosen = np.floor(t_passes) == index
        columns = (
            position[chosen, 0],
            position[chosen, 1],
            t_passes[chosen] - index,
            polarity[point[chosen]],
        )
        events = torch.from_numpy(np.stack(columns, axis=-1)).unsqueeze(0)
        passes.append((events, torch.ones(events.shape[:2], dtype=torch.bool)))
    return passes


def constant_flow(flow_px: tuple[float, float], sensor_size: tuple[int, int], batch: int = 1) -> torch.Tensor:
    return torch.tensor(flow_px, dtype=torch.float64).view(1, 2, 1, 1).expand(batch, 2, *sensor_size).clone()


def loss_of(loss: CMaxLinearLoss, passes: list[tuple[torch.Tensor, torch.Tensor]], flows: list[torch.Tensor]):
    loss.reset()
    for (events, mask), flow in zip(passes, flows, strict=True):
        loss.accumulate(events, mask, flow)
    return loss.compute()


def random_passes(batch, sensor_size, events_per_pass, num_passes, seed):
    """Random events (with some padding rows holding garbage) and random small flows per pass."""
    generator = torch.Generator().manual_seed(seed)
    height, width = sensor_size
    passes, flows = [], []
    for _ in range(num_passes):
        shape = (batch, events_per_pass)
        events = torch.stack(
            (
                torch.randint(0, width, shape, generator=generator).double(),
                torch.randint(0, height, shape, generator=generator).double(),
                torch.rand(shape, generator=generator, dtype=torch.float64),
                torch.randint(0, 2, shape, generator=generator).double() * 2 - 1,
            ),
            dim=-1,
        )
        mask = torch.rand(shape, generator=generator) > 0.2
        events[~mask] = 1e3  # padding content must not matter
        passes.append((events, mask))
        flows.append(
            0.6 * (2 * torch.rand(batch, 2, height, width, generator=generator, dtype=torch.float64) - 1)
        )
    return passes, flows


def reference_loss(passes, flows, sensor_size, smoothness_weight, eps=1e-3, alpha=0.5) -> float:
    """Brute-force loss with explicit loops over events, pixels and neighbours (tent kernel per pixel)."""
    height, width = sensor_size
    num_passes = len(passes)
    batch = flows[0].shape[0]
    total = 0.0
    for b in range(batch):
        events = []
        for index, ((ev, mask), flow) in enumerate(zip(passes, flows, strict=True)):
            for n in range(ev.shape[1]):
                if mask[b, n]:
                    x, y, t_norm, p = ev[b, n].tolist()
                    u = flow[b, :, int(y), int(x)].tolist()
                    events.append((x, y, index + t_norm, p, u))
        for t_ref, stamp_of in (
            (num_passes, lambda tau: tau / num_passes),
            (0, lambda tau: 1 - tau / num_passes),
        ):
            counts = np.zeros((2, height, width))
            stamps = np.zeros((2, height, width))
            for x, y, tau, p, (ux, uy) in events:
                warped_x, warped_y = x + (t_ref - tau) * ux, y + (t_ref - tau) * uy
                channel = 0 if p > 0 else 1
                for row in range(height):
                    for col in range(width):
                        kernel = max(0.0, 1 - abs(warped_x - col)) * max(0.0, 1 - abs(warped_y - row))
                        counts[channel, row, col] += kernel
                        stamps[channel, row, col] += kernel * stamp_of(tau)
            average = stamps / (counts + 1e-9)
            total += (average**2).sum() / max(((counts[0] + counts[1]) > 0).sum(), 1)
        maps = np.stack([flow[b].numpy() for flow in flows])
        smooth = 0.0
        for index in range(num_passes):
            for component in range(2):
                for row in range(height):
                    for col in range(width):
                        value = maps[index, component, row, col]
                        neighbours = [
                            maps[index, component, row + dr, col + dc]
                            for dr, dc in ((0, 1), (1, 0), (1, 1), (-1, 1))
                            if 0 <= row + dr < height and 0 <= col + dc < width
                        ]
                        if index + 1 < num_passes:
                            neighbours.append(maps[index + 1, component, row, col])
                        smooth += sum(((value - v) ** 2 + eps**2) ** alpha for v in neighbours)
        total += smoothness_weight * smooth / 5 / num_passes
    return total / batch


def loop_splat(x, y, weights, sensor_size, nearest=False):
    height, width = sensor_size
    image = np.zeros((x.shape[0], height, width))
    for b in range(x.shape[0]):
        for xi, yi, wi in zip(x[b].tolist(), y[b].tolist(), weights[b].tolist(), strict=True):
            if nearest:
                corners = [(round(xi), round(yi), 1.0)]
            else:
                x0, y0 = int(np.floor(xi)), int(np.floor(yi))
                fx, fy = xi - x0, yi - y0
                corners = [
                    (x0, y0, (1 - fx) * (1 - fy)),
                    (x0 + 1, y0, fx * (1 - fy)),
                    (x0, y0 + 1, (1 - fx) * fy),
                    (x0 + 1, y0 + 1, fx * fy),
                ]
            for col, row, share in corners:
                if 0 <= col < width and 0 <= row < height:
                    image[b, row, col] += wi * share
    return image


@pytest.mark.parametrize(("splat", "nearest"), [(splat_bilinear, False), (splat_nearest, True)])
def test_splat_matches_loop(splat, nearest):
    generator = torch.Generator().manual_seed(1)
    sensor_size = (5, 7)
    x = torch.rand(3, 50, generator=generator, dtype=torch.float64) * 10 - 1.5  # some points fall outside
    y = torch.rand(3, 50, generator=generator, dtype=torch.float64) * 8 - 1.5
    x[0, :3] = torch.tensor([2.0, 6.0, 0.0])  # exactly on pixels, incl. the borders
    y[0, :3] = torch.tensor([3.0, 4.0, 0.0])
    weights = torch.rand(3, 50, generator=generator, dtype=torch.float64)
    image = splat(x, y, weights, sensor_size)
    assert image.shape == (3, *sensor_size)
    np.testing.assert_allclose(image.numpy(), loop_splat(x, y, weights, sensor_size, nearest), atol=1e-12)


def test_splat_bilinear_keeps_mass_inside_and_is_differentiable():
    x = torch.tensor([[1.3, 2.75, 0.5]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[2.2, 0.6, 1.9]], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([[1.0, 0.5, 2.0]], dtype=torch.float64, requires_grad=True)
    assert splat_bilinear(x, y, weights, (4, 4)).sum().item() == pytest.approx(3.5)
    # A fixed random read-out of the image makes gradients w.r.t. positions non-trivial.
    readout = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a, b, w: (splat_bilinear(a, b, w, (4, 4)) * readout).sum(), (x, y, weights)
    )


def test_sample_flow_at_events_matches_loop():
    generator = torch.Generator().manual_seed(2)
    flow = torch.randn(2, 2, 4, 5, generator=generator)
    x = torch.randint(0, 5, (2, 9), generator=generator).float()
    y = torch.randint(0, 4, (2, 9), generator=generator).float()
    sampled = sample_flow_at_events(flow, x, y)
    for b in range(2):
        for n in range(9):
            expected = flow[b, :, int(y[b, n]), int(x[b, n])]
            torch.testing.assert_close(sampled[b, n], expected)


def test_warp_linear_moves_along_flow():
    x, y = torch.tensor([[3.0]]), torch.tensor([[4.0]])
    warped_x, warped_y = warp_linear(x, y, torch.tensor([[0.25]]), torch.tensor([[[2.0, -4.0]]]), 1.0)
    assert (warped_x.item(), warped_y.item()) == (4.5, 1.0)


def test_smoothness_of_constant_flow_is_the_charbonnier_floor():
    flow_maps = torch.full((1, 3, 2, 4, 5), 0.7, dtype=torch.float64)
    # per component: 3 passes x (4*4 + 3*5 + 3*4 + 3*4) spatial pairs + 2 x 20 temporal pairs, each eps
    pairs = 2 * (3 * (16 + 15 + 12 + 12) + 2 * 20)
    expected = pairs * 1e-3 / 5 / 3
    assert flow_smoothness(flow_maps).item() == pytest.approx(expected)


def test_loss_matches_brute_force_reference():
    sensor_size = (6, 7)
    passes, flows = random_passes(batch=2, sensor_size=sensor_size, events_per_pass=8, num_passes=3, seed=3)
    loss = loss_of(CMaxLinearLoss(sensor_size, smoothness_weight=0.1), passes, flows)
    assert loss.item() == pytest.approx(reference_loss(passes, flows, sensor_size, 0.1), rel=1e-10)


def test_loss_gradcheck_wrt_flow_maps():
    sensor_size = (6, 7)
    passes, flows = random_passes(batch=2, sensor_size=sensor_size, events_per_pass=10, num_passes=2, seed=4)
    loss = CMaxLinearLoss(sensor_size, smoothness_weight=0.05)
    # the tent kernel has kinks on the pixel grid: make sure no warped event is near one
    loss_of(loss, passes, flows)
    window = loss.accumulated()
    for t_ref in (0.0, 1.0):
        x, y, t_norm, _ = window.events.unbind(-1)
        for coordinate in warp_linear(x, y, t_norm, window.flow_at_events, t_ref):
            distance = (coordinate - coordinate.round()).abs()[window.mask]
            assert distance.min() > 1e-4
    inputs = tuple(f.clone().requires_grad_(True) for f in flows)
    assert torch.autograd.gradcheck(lambda *fs: loss_of(loss, passes, list(fs)), inputs)


def test_loss_is_lowest_at_the_true_translation():
    sensor_size = (24, 24)
    passes = translating_texture_window(sensor_size, flow_per_pass_px=(2.0, -1.5))
    loss = CMaxLinearLoss(sensor_size, smoothness_weight=0.001)

    def at(flow_px):
        return loss_of(loss, passes, [constant_flow(flow_px, sensor_size)] * len(passes)).item()

    true = at((2.0, -1.5))
    assert true < at((0.0, 0.0))
    assert true < at((-2.0, 1.5))
    assert true < at((1.5, -2.0))
    assert true < at((3.0, -1.5))


def test_loss_is_averaged_over_the_batch():
    sensor_size = (24, 24)
    single = translating_texture_window(sensor_size)
    doubled = [(events.expand(2, -1, -1), mask.expand(2, -1)) for events, mask in single]
    loss = CMaxLinearLoss(sensor_size, smoothness_weight=0.01)
    flow = constant_flow((1.0, -1.0), sensor_size)
    one = loss_of(loss, single, [flow] * 2)
    two = loss_of(loss, doubled, [flow.expand(2, -1, -1, -1)] * 2)
    assert two.item() == pytest.approx(one.item(), rel=1e-12)


def test_padding_does_not_change_the_loss():
    sensor_size = (6, 7)
    passes, flows = random_passes(batch=1, sensor_size=sensor_size, events_per_pass=8, num_passes=2, seed=5)
    loss = CMaxLinearLoss(sensor_size)
    stripped = [(events[:, mask[0]], mask[:, mask[0]]) for events, mask in passes]
    assert loss_of(loss, passes, flows).item() == pytest.approx(
        loss_of(loss, stripped, flows).item(), rel=1e-12
    )


def test_accumulated_window_and_iwe():
    sensor_size = (24, 24)
    passes = translating_texture_window(sensor_size, flow_per_pass_px=(2.0, -1.5), num_passes=2)
    loss = CMaxLinearLoss(sensor_size)
    loss_of(loss, passes, [constant_flow((2.0, -1.5), sensor_size)] * 2)
    assert loss.num_passes == 2
    window = loss.accumulated()
    torch.testing.assert_close(window.flow_at_events[0, 0], torch.tensor([4.0, -3.0], dtype=torch.float64))
    num_events = sum(mask.sum().item() for _, mask in passes)
    assert window.events.shape == (1, num_events, 4)
    images = loss.iwe()
    assert images.at_start.shape == images.at_end.shape == (1, 2, *sensor_size)
    assert not images.at_start.requires_grad
    # the texture stays inside the image at both references, so every event is counted once
    assert images.at_start.sum().item() == pytest.approx(num_events)
    assert images.at_end.sum().item() == pytest.approx(num_events)
    still = EventsWithFlow(window.events, window.mask, torch.zeros_like(window.flow_at_events))
    x, y, _, p = still.events[0].unbind(-1)
    counts = torch.zeros(2, *sensor_size, dtype=torch.float64)
    counts.index_put_(((p < 0).long(), y.long(), x.long()), torch.ones_like(x), accumulate=True)
    assert images.at_start.var() > counts.var()  # sharper than the raw event counts
    loss.reset()
    assert loss.num_passes == 0
    with pytest.raises(RuntimeError, match="no pass accumulated"):
        loss.compute()


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [(0, 7.0, "x \\(pixel column\\)"), (1, 2.5, "y \\(pixel row\\)"), (2, 1.5, "t_norm"), (3, 0.0, "p_sign")],
)
def test_accumulate_rejects_bad_events(column, value, message):
    sensor_size = (6, 7)
    events = torch.tensor([[[1.0, 2.0, 0.5, 1.0], [3.0, 4.0, 0.2, -1.0]]])
    events[0, 1, column] = value
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss = CMaxLinearLoss(sensor_size)
    with pytest.raises(EventDataError, match=f"{message}.*got {value} at batch element 0, event 1"):
        loss.accumulate(events, mask, torch.zeros(1, 2, *sensor_size))
    mask[0, 1] = False  # the same values in padding are fine
    loss.accumulate(events, mask, torch.zeros(1, 2, *sensor_size))


def test_accumulate_rejects_bad_shapes():
    loss = CMaxLinearLoss((6, 7))
    events = torch.tensor([[[0.0, 0.0, 0.0, 1.0]] * 3])
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="flow: expected shape \\(1, 2, 6, 7\\)"):
        loss.accumulate(events, mask, torch.zeros(1, 2, 7, 6))
    with pytest.raises(EventDataError, match="bool mask of shape \\(1, 3\\)"):
        loss.accumulate(events, mask.float(), torch.zeros(1, 2, 6, 7))
    loss.accumulate(events, mask, torch.zeros(1, 2, 6, 7))
    with pytest.raises(ValueError, match="batch size 2 differs"):
        loss.accumulate(events.expand(2, -1, -1), mask.expand(2, -1), torch.zeros(2, 2, 6, 7))
