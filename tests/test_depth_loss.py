"""StereoSpike's depth losses against brute-force loops over pixels, and their float64 gradients."""

from __future__ import annotations

import math

import pytest
import torch

from tinyflow.tasks.depth_loss import (
    SOBEL_X,
    SOBEL_Y,
    DepthRepresentation,
    DepthSIGradLoss,
    gradient_matching_loss,
    scale_invariant_loss,
)


def window(seed: int, shape=(2, 5, 6), invalid: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction and a GT depth in metres (NaN at about ``invalid`` of the pixels), float64."""
    generator = torch.Generator().manual_seed(seed)
    pred = 2 + 6 * torch.rand(shape, generator=generator, dtype=torch.float64)
    gt = 2 + 6 * torch.rand(shape, generator=generator, dtype=torch.float64)
    gt[torch.rand(shape, generator=generator) < invalid] = math.nan
    return pred, gt


def brute_force_si(pred, gt, invariance: float) -> list[float]:
    losses = []
    for b in range(pred.shape[0]):
        residuals = [
            float(pred[b, i, j] - gt[b, i, j])
            for i in range(pred.shape[1])
            for j in range(pred.shape[2])
            if math.isfinite(gt[b, i, j])
        ]
        n = len(residuals)
        losses.append(sum(r * r for r in residuals) / n - invariance * (sum(residuals) / n) ** 2)
    return losses


def brute_force_gradient(pred, gt) -> list[float]:
    """Sobel responses of the zero-filled residual, zero outside the image, summed at valid pixels / n."""
    height, width = pred.shape[1:]
    losses = []
    for b in range(pred.shape[0]):

        def residual(i: int, j: int, b: int = b) -> float:
            inside = 0 <= i < height and 0 <= j < width
            return float(pred[b, i, j] - gt[b, i, j]) if inside and math.isfinite(gt[b, i, j]) else 0.0

        total, n = 0.0, 0
        for i in range(height):
            for j in range(width):
                if not math.isfinite(gt[b, i, j]):
                    continue
                n += 1
                for kernel in (SOBEL_X, SOBEL_Y):
                    response = sum(
                        kernel[di + 1][dj + 1] * residual(i + di, j + dj)
                        for di in (-1, 0, 1)
                        for dj in (-1, 0, 1)
                    )
                    total += abs(response)
        losses.append(total / n)
    return losses


@pytest.mark.parametrize("invariance", [1.0, 0.5, 0.0])
def test_scale_invariant_loss_matches_brute_force(invariance: float) -> None:
    pred, gt = window(0)
    valid = torch.isfinite(gt)
    got = scale_invariant_loss(pred, gt, valid, invariance)
    assert got.tolist() == pytest.approx(brute_force_si(pred, gt, invariance), rel=1e-12)


def test_full_invariance_ignores_a_constant_offset() -> None:
    pred, gt = window(1)
    valid = torch.isfinite(gt)
    shifted = scale_invariant_loss(pred + 3.0, gt, valid)
    assert torch.allclose(shifted, scale_invariant_loss(pred, gt, valid))
    assert not torch.allclose(
        scale_invariant_loss(pred + 3.0, gt, valid, 0.5), scale_invariant_loss(pred, gt, valid, 0.5)
    )


def test_gradient_matching_loss_matches_brute_force() -> None:
    pred, gt = window(2)
    got = gradient_matching_loss(pred, gt, torch.isfinite(gt))
    assert got.tolist() == pytest.approx(brute_force_gradient(pred, gt), rel=1e-12)


def test_total_loss_sums_weighted_scales_and_follows_the_representation() -> None:
    pred_coarse, gt = window(3)
    pred_fine = pred_coarse + torch.randn(pred_coarse.shape, dtype=torch.float64)
    loss = DepthSIGradLoss(scale_weights=(0.25, 1.0), invariance=0.5)
    expected = [
        0.25 * (si_c + 0.5 * g_c) + si_f + 0.5 * g_f
        for si_c, g_c, si_f, g_f in zip(
            brute_force_si(pred_coarse, gt, 0.5),
            brute_force_gradient(pred_coarse, gt),
            brute_force_si(pred_fine, gt, 0.5),
            brute_force_gradient(pred_fine, gt),
            strict=True,
        )
    ]
    assert loss([pred_coarse, pred_fine], gt).tolist() == pytest.approx(expected, rel=1e-12)

    log = DepthSIGradLoss(learned_metric="log")
    target = 1 + torch.log(gt / 10.0) / 6.0  # GT within 2..8 m: no clipping
    expected = [
        si + 0.5 * g
        for si, g in zip(
            brute_force_si(pred_fine / 10, target, 1.0),
            brute_force_gradient(pred_fine / 10, target),
            strict=True,
        )
    ]
    assert log([pred_fine / 10], gt).tolist() == pytest.approx(expected, rel=1e-12)


def test_log_representation_round_trips_and_clips() -> None:
    representation = DepthRepresentation("log", max_depth_m=10.0, log_alpha=6.0)
    depth = torch.tensor([0.5, 2.0, 9.99, 10.0], dtype=torch.float64)
    assert torch.allclose(representation.to_metres(representation.from_metres(depth)), depth)
    assert representation.from_metres(torch.tensor([20.0, 1e-6])).tolist() == [1.0, 0.0]
    assert math.isnan(representation.from_metres(torch.tensor([math.nan]))[0])
    metric = DepthRepresentation()
    assert torch.equal(metric.from_metres(depth), depth) and torch.equal(metric.to_metres(depth), depth)


def test_gradients_pass_float64_gradcheck() -> None:
    pred, gt = window(4, shape=(2, 4, 5))
    pred.requires_grad_()
    for learned_metric in ("metric", "log"):
        loss = DepthSIGradLoss(scale_weights=(0.5, 1.0), invariance=0.5, learned_metric=learned_metric)
        scale = 1.0 if learned_metric == "metric" else 0.1
        assert torch.autograd.gradcheck(lambda p: loss([p, 2 * p], gt), (pred * scale,))  # noqa: B023
    assert torch.autograd.gradcheck(lambda p: scale_invariant_loss(p, gt, torch.isfinite(gt)), (pred,))


def test_invalid_pixels_carry_no_gradient_and_empty_windows_no_loss() -> None:
    pred, gt = window(5)
    gt[1] = math.nan
    pred.requires_grad_()
    loss = DepthSIGradLoss()([pred], gt)
    assert loss[1] == 0
    loss.sum().backward()
    invalid = ~torch.isfinite(gt)
    assert (pred.grad[invalid] == 0).all() and (pred.grad[~invalid] != 0).any()


def test_bad_settings_and_shapes_raise() -> None:
    with pytest.raises(ValueError, match="learned_metric='disp': expected one of"):
        DepthSIGradLoss(learned_metric="disp")
    with pytest.raises(ValueError, match=r"invariance=1.5 \(expected in \[0, 1\]\)"):
        DepthSIGradLoss(invariance=1.5)
    pred, gt = window(6)
    with pytest.raises(ValueError, match="2 scale_weights for 1 predicted scales"):
        DepthSIGradLoss(scale_weights=(1.0, 1.0))([pred], gt)
    with pytest.raises(ValueError, match="expected every scale at the GT's resolution"):
        DepthSIGradLoss()([pred[:, :4]], gt)
