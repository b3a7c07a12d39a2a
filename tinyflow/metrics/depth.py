"""Depth metrics against ground truth: StereoSpike's mean depth error and the standard set (Eigen et al. 2014).

Every metric of a window is taken over its valid pixels P: GT finite and above 0 (NaN marks invalid GT).
With ``d`` the GT depth and ``p`` the predicted depth, both in metres, ``g = log p - log d`` (natural log;
the prediction is clamped at :data:`MIN_DEPTH_M` inside logarithms and ratios) and ``mean`` the mean over
P, per window:

    mde       100 * mean |p - d|                        cm   (StereoSpike's MeanDepthError, in cm)
    abs_rel   mean |p - d| / d                          -
    sq_rel    mean (p - d)^2 / d                        m
    rmse      sqrt(mean (p - d)^2)                      m
    rmse_log  sqrt(mean g^2)                            -
    silog     sqrt(mean g^2 - (mean g)^2)               -    (Eigen's scale-invariant error, as an RMS)
    delta_k   100 * share of P with max(p/d, d/p) < 1.25^k, k = 1, 2, 3      %
    mde_const 100 * mean |c - d|                        cm   (the MDE of the constant prediction c)

Tables and JSON show mde, mde_const, abs_rel, rmse, rmse_log and delta1; ``metrics=full`` adds the others.
A recording's metric is the mean over its windows with valid pixels (as StereoSpike averages its test
samples' MDE). ``mde_const`` uses the training set's mean depth as ``c`` (the task provides it), for
scale, as the flow metrics report the AEE of zero flow.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import torch
from torch import Tensor

from tinyflow.metrics.registry import Metric, register_task_metrics

MIN_DEPTH_M = 1e-3  # the prediction inside logarithms and ratios is at least this (metres)
DELTA_BASE = 1.25

_FULL = {"default": False}  # shown with metrics=full only
DEPTH_METRICS = register_task_metrics(
    "depth",
    [
        Metric("mde", "MDE", "cm", True, "depth", "mean |pred - GT| over valid GT pixels (StereoSpike)"),
        Metric("mde_const", "constant MDE", "cm", True, "depth", "MDE of the training set's mean depth"),
        Metric("abs_rel", "abs rel", None, True, "depth", "mean |pred - GT| / GT"),
        Metric("sq_rel", "sq rel", "m", True, "depth", "mean (pred - GT)^2 / GT", **_FULL),
        Metric("rmse", "RMSE", "m", True, "depth", "root mean squared error"),
        Metric("rmse_log", "RMSE log", None, True, "depth", "root mean squared error of natural-log depths"),
        Metric("silog", "SI log", None, True, "depth", "sqrt(mean g^2 - (mean g)^2), g: log ratio", **_FULL),
        Metric("delta1", "δ<1.25", "%", False, "depth", "pixels with max(pred/GT, GT/pred) < 1.25"),
        Metric("delta2", "δ<1.25²", "%", False, "depth", "the same, < 1.25^2", **_FULL),
        Metric("delta3", "δ<1.25³", "%", False, "depth", "the same, < 1.25^3", **_FULL),
    ],
    objective=("mde",),
)


def valid_depth(depth_gt_m: Tensor) -> Tensor:
    """Pixels with valid GT: bool, same shape: finite and above 0 metres."""
    return torch.isfinite(depth_gt_m) & (depth_gt_m > 0)


def _check_depth_pair(pred_m: Tensor, depth_gt_m: Tensor) -> None:
    if pred_m.shape != depth_gt_m.shape or pred_m.ndim != 3:
        raise ValueError(
            f"depth metrics: prediction and GT must both be [B, H, W] metres; got {tuple(pred_m.shape)}, "
            f"{tuple(depth_gt_m.shape)}"
        )


def _window_mean(per_pixel: Tensor, valid: Tensor) -> Tensor:
    """Per window [B]: the mean over its valid pixels (NaN without any); invalid pixels never enter."""
    count = valid.flatten(1).sum(dim=1)
    total = torch.where(valid, per_pixel, 0).flatten(1).sum(dim=1)
    return torch.where(count > 0, total / count.clamp(min=1), math.nan)


def depth_errors(pred_m: Tensor, depth_gt_m: Tensor) -> dict[str, Tensor]:
    """The metrics of the module docstring per window, ``{key: [B]}`` (NaN for a window without valid GT).

    Args:
        pred_m: [B, H, W] predicted depth in metres.
        depth_gt_m: [B, H, W] GT depth in metres, NaN (or <= 0) where invalid.
    """
    _check_depth_pair(pred_m, depth_gt_m)
    pred_m, depth_gt_m = pred_m.detach().double(), depth_gt_m.detach().double()
    valid = valid_depth(depth_gt_m)
    gt = torch.where(valid, depth_gt_m, 1.0)  # invalid pixels: any finite value, never counted
    error = pred_m - gt
    positive = pred_m.clamp(min=MIN_DEPTH_M)
    log_error = torch.log(positive) - torch.log(gt)
    ratio = torch.maximum(positive / gt, gt / positive)
    mean_log, mean_log_squared = _window_mean(log_error, valid), _window_mean(log_error.square(), valid)
    errors = {
        "mde": 100 * _window_mean(error.abs(), valid),
        "abs_rel": _window_mean(error.abs() / gt, valid),
        "sq_rel": _window_mean(error.square() / gt, valid),
        "rmse": _window_mean(error.square(), valid).sqrt(),
        "rmse_log": mean_log_squared.sqrt(),
        "silog": (mean_log_squared - mean_log.square()).clamp(min=0).sqrt(),
    }
    for k in (1, 2, 3):
        errors[f"delta{k}"] = 100 * _window_mean((ratio < DELTA_BASE**k).double(), valid)
    return errors


def constant_depth_error(constant_m: float, depth_gt_m: Tensor) -> Tensor:
    """``mde_const`` per window [B] in cm: 100 * mean |c - d| over the valid pixels of ``depth_gt_m`` [B, H, W]."""
    depth = depth_gt_m.detach().double()
    valid = valid_depth(depth)
    return 100 * _window_mean((torch.where(valid, depth, 0.0) - constant_m).abs(), valid)


class DepthErrorMetrics:
    """Accumulates depth errors window by window and reports each recording's means over its windows.

    Windows without valid GT are skipped. ``constant_m`` is the constant prediction of ``mde_const`` (the
    training set's mean depth); None or NaN leaves ``mde_const`` out.
    """

    def __init__(self) -> None:
        self._values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def reset(self) -> None:
        self._values.clear()

    def update(
        self, pred_m: Tensor, depth_gt_m: Tensor, recordings: Sequence[str], constant_m: float | None = None
    ) -> None:
        """Add the windows of one batch ([B, H, W] metres each), one recording name per window."""
        if len(recordings) != pred_m.shape[0]:
            raise ValueError(
                f"DepthErrorMetrics.update: expected {pred_m.shape[0]} recording names (one per window); "
                f"got {len(recordings)}"
            )
        errors = depth_errors(pred_m, depth_gt_m)
        if constant_m is not None and math.isfinite(constant_m):
            errors["mde_const"] = constant_depth_error(constant_m, depth_gt_m)
        columns = {key: values.cpu().tolist() for key, values in errors.items()}
        for i, recording in enumerate(recordings):
            if not math.isfinite(columns["mde"][i]):
                continue  # no valid GT pixel in this window
            for key, values in columns.items():
                self._values[recording][key].append(values[i])

    def compute(self) -> dict[str, dict[str, float]]:
        """``{recording: {metric key: mean over its windows}}``."""
        return {
            recording: {key: math.fsum(v) / len(v) for key, v in values.items()}
            for recording, values in self._values.items()
        }


__all__ = [
    "DEPTH_METRICS",
    "MIN_DEPTH_M",
    "DepthErrorMetrics",
    "constant_depth_error",
    "depth_errors",
    "valid_depth",
]
