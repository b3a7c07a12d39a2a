"""Supervised depth losses: StereoSpike's multi-scale scale-invariant and gradient-matching (Sobel) losses.

urancon/StereoSpike network/loss.py (``ScaleInvariant_Loss``, ``GradientMatching_Loss``, their multi-scale
sums and ``Total_Loss``), after Eigen et al. 2014 and Hidalgo-Carrió et al. 2020 (3DV). With ``R = P - T``
the residual between the prediction and the target (the GT in the learned representation) over the n
valid pixels of one window:

    L_si   = (1/n) sum R^2 - invariance * (1/n^2) (sum R)^2
    L_grad = (1/n) sum_valid |Sobel_x * R| + |Sobel_y * R|      (R = 0 at invalid pixels, zero padding)
    L      = sum over scales s of w_s (L_si(P_s) + gradient_weight * L_grad(P_s))

StereoSpike's weights: ``invariance = 1`` (fully invariant), ``gradient_weight = 0.5`` (the paper's λ) and
``w_s = 1`` for its 4 scales. The reference sums over the batch (its batch size is 1); here every window
is its own sample and the task averages the windows. The target is metric depth or StereoSpike's
normalised log depth (``learned_metric``, :class:`DepthRepresentation`); StereoSpike's third choice, disparity,
needs MVSEC's focal length and baseline and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tinyflow.metrics.depth import valid_depth

LEARNED_METRICS = ("metric", "log")
# Sobel kernels of StereoSpike's GradientMatching_Loss (cross-correlation, as F.conv2d applies them)
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


@dataclass(frozen=True)
class DepthRepresentation:
    """What a network's depth values are: metres (``metric``) or StereoSpike's normalised log depth (``log``).

    ``log`` (StereoSpike network/metrics.py ``lin_to_log_depths`` / ``log_to_lin_depths``, after
    Hidalgo-Carrió et al. 2020): ``D_log = clip(1 + ln(min(D, max_depth_m) / max_depth_m) / log_alpha, 0, 1)``
    and back ``D = max_depth_m * exp(log_alpha * (D_log - 1))``: 1 at ``max_depth_m``, 0 at
    ``max_depth_m * exp(-log_alpha)`` (2.5 cm at StereoSpike's 10 m and 6).
    """

    learned_metric: str = "metric"
    max_depth_m: float = 10.0
    log_alpha: float = 6.0

    def __post_init__(self) -> None:
        if self.learned_metric not in LEARNED_METRICS:
            raise ValueError(f"learned_metric={self.learned_metric!r}: expected one of {LEARNED_METRICS}")
        if not self.max_depth_m > 0 or not self.log_alpha > 0:
            raise ValueError(
                f"max_depth_m={self.max_depth_m!r}, log_alpha={self.log_alpha!r}: expected positive numbers"
            )

    def from_metres(self, depth_m: Tensor) -> Tensor:
        """Depth in metres (NaN stays NaN) in this representation."""
        if self.learned_metric == "metric":
            return depth_m
        normalised = depth_m.clamp(max=self.max_depth_m) / self.max_depth_m
        return (1 + torch.log(normalised) / self.log_alpha).clamp(0.0, 1.0)

    def to_metres(self, values: Tensor) -> Tensor:
        """Values of this representation (a network's prediction) in metres."""
        if self.learned_metric == "metric":
            return values
        return self.max_depth_m * torch.exp(self.log_alpha * (values - 1))


def _check_window(pred: Tensor, target: Tensor, valid: Tensor) -> None:
    if pred.ndim != 3 or pred.shape != target.shape or valid.shape != target.shape:
        raise ValueError(
            f"depth loss: prediction, target and valid mask must all be [B, H, W]; got {tuple(pred.shape)}, "
            f"{tuple(target.shape)}, {tuple(valid.shape)}"
        )


def scale_invariant_loss(pred: Tensor, target: Tensor, valid: Tensor, invariance: float = 1.0) -> Tensor:
    """``L_si`` (module docstring) per window [B]; 0 for a window without valid pixels.

    Args:
        pred, target: [B, H, W] in one representation (invalid target pixels may hold anything, NaN too).
        valid: [B, H, W] bool, the pixels with valid GT.
        invariance: weight of the squared mean residual (1: StereoSpike's, invariant to adding a constant;
            0: the mean squared error; Eigen et al. 2014: 0.5).
    """
    _check_window(pred, target, valid)
    residual = torch.where(valid, pred - torch.where(valid, target, 0), 0)
    n = valid.flatten(1).sum(dim=1).clamp(min=1).to(pred.dtype)
    return (
        residual.square().flatten(1).sum(dim=1) / n - invariance * (residual.flatten(1).sum(dim=1) / n) ** 2
    )


def gradient_matching_loss(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """``L_grad`` (module docstring) per window [B]; 0 for a window without valid pixels. Arguments as
    :func:`scale_invariant_loss`."""
    _check_window(pred, target, valid)
    residual = torch.where(valid, pred - torch.where(valid, target, 0), 0).unsqueeze(1)
    kernels = torch.tensor((SOBEL_X, SOBEL_Y), dtype=pred.dtype, device=pred.device).unsqueeze(1)
    gradients = F.conv2d(residual, kernels, padding=1).abs().sum(dim=1)
    n = valid.flatten(1).sum(dim=1).clamp(min=1).to(pred.dtype)
    return torch.where(valid, gradients, 0).flatten(1).sum(dim=1) / n


@dataclass(frozen=True)
class DepthSIGradLoss:
    """StereoSpike's depth loss ``L`` (module docstring) of every window, ``[B]``.

    Attributes:
        gradient_weight: weight of the gradient-matching loss (StereoSpike: 0.5).
        scale_weights: weight of each scale, coarsest first; None = 1 for every scale (StereoSpike's
            ``(1, 1, 1, 1)``).
        invariance: see :func:`scale_invariant_loss` (StereoSpike: 1).
        learned_metric, max_depth_m, log_alpha: the representation the network learns
            (:class:`DepthRepresentation`).
    """

    gradient_weight: float = 0.5
    scale_weights: tuple[float, ...] | None = None
    invariance: float = 1.0
    learned_metric: str = "metric"
    max_depth_m: float = 10.0
    log_alpha: float = 6.0

    def __post_init__(self) -> None:
        if self.scale_weights is not None:
            object.__setattr__(self, "scale_weights", tuple(float(w) for w in self.scale_weights))
        if self.gradient_weight < 0 or not 0 <= self.invariance <= 1:
            raise ValueError(
                f"depth loss: gradient_weight={self.gradient_weight!r} (expected >= 0), "
                f"invariance={self.invariance!r} (expected in [0, 1])"
            )
        DepthRepresentation(self.learned_metric, self.max_depth_m, self.log_alpha)  # raises for a bad field

    @property
    def representation(self) -> DepthRepresentation:
        return DepthRepresentation(self.learned_metric, self.max_depth_m, self.log_alpha)

    def __call__(self, predictions: Sequence[Tensor], depth_gt_m: Tensor) -> Tensor:
        """The loss of each window [B].

        Args:
            predictions: every scale's prediction [B, H, W] in the learned representation, coarsest first,
                each at the GT's resolution (StereoSpike's scales all are).
            depth_gt_m: [B, H, W] GT depth in metres, NaN (or <= 0) where invalid.
        """
        weights = self.scale_weights or (1.0,) * len(predictions)
        if len(weights) != len(predictions):
            raise ValueError(
                f"depth loss: {len(weights)} scale_weights for {len(predictions)} predicted scales; set one "
                "weight per scale (coarsest first) or null"
            )
        valid = valid_depth(depth_gt_m)
        target = self.representation.from_metres(depth_gt_m)
        total = depth_gt_m.new_zeros(depth_gt_m.shape[0])
        for weight, pred in zip(weights, predictions, strict=True):
            if pred.shape != depth_gt_m.shape:
                raise ValueError(
                    f"depth loss: a scale's prediction is {tuple(pred.shape)}, the GT {tuple(depth_gt_m.shape)}: "
                    "expected every scale at the GT's resolution"
                )
            window = scale_invariant_loss(pred, target, valid, self.invariance)
            window = window + self.gradient_weight * gradient_matching_loss(pred, target, valid)
            total = total + weight * window
        return total


__all__ = [
    "LEARNED_METRICS",
    "DepthRepresentation",
    "DepthSIGradLoss",
    "gradient_matching_loss",
    "scale_invariant_loss",
]
