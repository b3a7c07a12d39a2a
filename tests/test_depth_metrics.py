"""Depth metrics against values computed by hand from their formulas (tinyflow/metrics/depth.py)."""

from __future__ import annotations

import math

import pytest
import torch

from tinyflow.metrics.depth import (
    DEPTH_METRICS,
    MIN_DEPTH_M,
    DepthErrorMetrics,
    constant_depth_error,
    depth_errors,
)

NAN = math.nan
# one 2 x 2 window: GT 2 m, 4 m, invalid, 5 m; prediction 2.5 m, 4 m, (anything), 4.5 m
GT = torch.tensor([[[2.0, 4.0], [NAN, 5.0]]])
PRED = torch.tensor([[[2.5, 4.0], [7.0, 4.5]]])


def by_hand() -> dict[str, float]:
    """The metrics of the window above, term by term over its 3 valid pixels."""
    errors = [0.5, 0.0, -0.5]  # pred - GT
    logs = [math.log(2.5 / 2.0), 0.0, math.log(4.5 / 5.0)]
    mean_log, mean_log2 = sum(logs) / 3, sum(g * g for g in logs) / 3
    return {
        "mde": 100 * (0.5 + 0.0 + 0.5) / 3,
        "abs_rel": (0.5 / 2 + 0.0 + 0.5 / 5) / 3,
        "sq_rel": (0.25 / 2 + 0.0 + 0.25 / 5) / 3,
        "rmse": math.sqrt(sum(e * e for e in errors) / 3),
        "rmse_log": math.sqrt(mean_log2),
        "silog": math.sqrt(mean_log2 - mean_log**2),
        "delta1": 100 * 2 / 3,  # ratios 1.25 (not < 1.25), 1, 5 / 4.5
        "delta2": 100.0,
        "delta3": 100.0,
    }


def test_every_metric_by_hand() -> None:
    errors = depth_errors(PRED, GT)
    expected = by_hand()
    assert set(errors) == set(expected)
    for key, value in expected.items():
        assert float(errors[key][0]) == pytest.approx(value, rel=1e-9), key
    assert errors["silog"][0] < errors["rmse_log"][0], "the scale-invariant error removes the mean log ratio"


def test_constant_prediction_error_by_hand() -> None:
    assert float(constant_depth_error(4.0, GT)[0]) == pytest.approx(100 * (2.0 + 0.0 + 1.0) / 3)


def test_a_window_without_valid_gt_gives_nan_and_is_skipped() -> None:
    gt = torch.stack([GT[0], torch.full((2, 2), NAN), torch.zeros(2, 2)])  # zeros: invalid as well
    errors = depth_errors(PRED.expand(3, 2, 2), gt)
    assert all(math.isnan(float(values[1])) and math.isnan(float(values[2])) for values in errors.values())
    metrics = DepthErrorMetrics()
    metrics.update(PRED.expand(3, 2, 2), gt, ["a", "a", "a"], constant_m=4.0)
    assert metrics.compute()["a"]["mde"] == pytest.approx(by_hand()["mde"])


def test_recordings_average_their_windows() -> None:
    metrics = DepthErrorMetrics()
    metrics.update(PRED, GT, ["a"], constant_m=4.0)
    exact = torch.tensor([[[2.0, 4.0], [1.0, 5.0]]])
    metrics.update(exact, GT, ["a"], constant_m=4.0)
    metrics.update(exact, GT, ["b"])
    results = metrics.compute()
    assert results["a"]["mde"] == pytest.approx(by_hand()["mde"] / 2)
    assert results["a"]["delta1"] == pytest.approx((100 * 2 / 3 + 100) / 2)
    assert results["a"]["mde_const"] == pytest.approx(100.0)
    assert results["b"]["mde"] == 0.0 and "mde_const" not in results["b"], "no constant: no mde_const"
    with pytest.raises(ValueError, match="expected 1 recording names"):
        metrics.update(PRED, GT, ["a", "b"])


def test_log_metrics_clamp_non_positive_predictions() -> None:
    errors = depth_errors(torch.tensor([[[-1.0]]]), torch.tensor([[[2.0]]]))
    assert float(errors["rmse_log"][0]) == pytest.approx(abs(math.log(MIN_DEPTH_M / 2.0)))
    assert float(errors["mde"][0]) == pytest.approx(300.0)


def test_inputs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"both be \[B, H, W\] metres"):
        depth_errors(PRED[0], GT[0])


def test_registry_declares_the_depth_metrics() -> None:
    assert DEPTH_METRICS.monitor.key == "mde" and DEPTH_METRICS.metric("mde").unit == "cm"
    assert set(by_hand()) | {"mde_const"} == set(DEPTH_METRICS.keys)
    assert not DEPTH_METRICS.metric("delta1").lower_is_better and DEPTH_METRICS.metric("rmse").lower_is_better
