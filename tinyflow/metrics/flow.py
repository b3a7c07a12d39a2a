"""Optical-flow metrics: errors against ground truth (AEE, % outliers, AAE) and GT-free focus ratios.

Ground-truth errors are computed over the pixels that have events in the evaluated window and valid GT
(the caller builds ``valid``, e.g. MVSEC marks invalid GT as (0, 0)); the prediction must first be
brought to the GT interval with :func:`rescale_flow`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tinyflow.cmax.event_list import EventsWithFlow, check_event_list
from tinyflow.cmax.focus import squared_average_timestamp_loss, warped_event_images
from tinyflow.cmax.splat import Splat, splat_bilinear
from tinyflow.metrics.registry import Metric, register_task_metrics

OUTLIER_THRESHOLD_PX = 3.0
OUTLIER_RELATIVE_THRESHOLD = 0.05

FLOW_METRICS = register_task_metrics(
    "flow",
    [
        Metric(
            "aee", "AEE", "px", True, "flow", "average endpoint error over pixels with events and valid GT"
        ),
        Metric(
            "outliers", "outliers", "%", True, "flow", "pixels with endpoint error > 3 px and > 5 % of |GT|"
        ),
        Metric("aee_zero", "zero-flow AEE", "px", True, "flow", "AEE of a zero-flow prediction, for scale"),
        Metric("aae", "AAE", "deg", True, "flow", "average angle between (u, v, 1) of prediction and GT"),
        Metric("fwl", "FWL", None, False, "flow", "IWE variance with the flow / without (higher is sharper)"),
        Metric("rsat", "RSAT", None, True, "flow", "squared average timestamps with the flow / without"),
    ],
    objective=("aee", "rsat"),
)


def rescale_flow(flow: Tensor, from_interval_us: float | Tensor, to_interval_us: float | Tensor) -> Tensor:
    """Flow in pixels over ``from_interval_us`` converted to pixels over ``to_interval_us`` (constant motion).

    Args:
        flow: [B, 2, H, W] displacement in pixels.
        from_interval_us, to_interval_us: interval lengths in microseconds, scalars or [B] tensors.
    """
    source = torch.as_tensor(from_interval_us, dtype=flow.dtype, device=flow.device)
    target = torch.as_tensor(to_interval_us, dtype=flow.dtype, device=flow.device)
    if bool((source <= 0).any()) or bool((target <= 0).any()):
        raise ValueError(
            f"rescale_flow: intervals must be positive microseconds; got from {from_interval_us}, "
            f"to {to_interval_us}"
        )
    ratio = (target / source).reshape(-1, *([1] * (flow.ndim - 1)))
    return flow * ratio


def event_pixel_mask(events: Tensor, mask: Tensor, sensor_size: tuple[int, int]) -> Tensor:
    """Pixels that hold at least one event: bool [B, H, W] from a padded event list.

    Args:
        events: [B, N, 4] (x, y, t_norm, p_sign) with integer pixel x (column) and y (row).
        mask: [B, N] bool, False = padding.
        sensor_size: (height, width).

    Taken from the events themselves, not from an encoded input, where ON and OFF events of one pixel
    can cancel (voxel grid).
    """
    height, width = sensor_size
    flat_index = (events[..., 1].long() * width + events[..., 0].long()).clamp(0, height * width - 1)
    counts = torch.zeros(events.shape[0], height * width, device=events.device)
    counts.scatter_add_(1, flat_index, mask.to(counts.dtype))
    return (counts > 0).view(-1, height, width)


def endpoint_error(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel endpoint error [B, H, W] in pixels: Euclidean norm of ``pred - gt`` ([B, 2, H, W] each)."""
    return torch.linalg.vector_norm(pred - gt, dim=1)


def angular_error_deg(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel angle [B, H, W] in degrees between the vectors (u, v, 1) of ``pred`` and ``gt``."""
    dot = (pred * gt).sum(dim=1) + 1
    norms = torch.sqrt((pred.square().sum(dim=1) + 1) * (gt.square().sum(dim=1) + 1))
    return torch.rad2deg(torch.arccos((dot / norms).clamp(-1.0, 1.0)))


def is_outlier(pred: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel bool [B, H, W]: endpoint error > 3 px AND > 5 % of the GT magnitude (KITTI-style)."""
    error = endpoint_error(pred, gt)
    gt_magnitude = torch.linalg.vector_norm(gt, dim=1)
    return (error > OUTLIER_THRESHOLD_PX) & (error > OUTLIER_RELATIVE_THRESHOLD * gt_magnitude)


@dataclass(frozen=True)
class FlowErrorSums:
    """Per-batch-element sums [B] over the evaluated pixels (events and valid GT) and their count."""

    endpoint_error_px: Tensor
    outliers: Tensor
    angular_error_deg: Tensor
    gt_magnitude_px: Tensor
    num_pixels: Tensor


def flow_error_sums(pred: Tensor, gt: Tensor, event_mask: Tensor, valid: Tensor) -> FlowErrorSums:
    """Sum the per-pixel errors over pixels with at least one event and valid GT.

    Args:
        pred: [B, 2, H, W] predicted flow, pixels over the GT interval (see :func:`rescale_flow`).
        gt: [B, 2, H, W] ground-truth flow, pixels over its interval.
        event_mask: [B, H, W] bool, pixels with events in the evaluated window.
        valid: [B, H, W] bool, pixels with valid GT.
    Returns:
        Sums per batch element; ``gt_magnitude_px / num_pixels`` is the AEE of a zero-flow prediction.
    """
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 2:
        raise ValueError(
            f"flow metrics: pred and gt must both be [B, 2, H, W]; got {tuple(pred.shape)}, {tuple(gt.shape)}"
        )
    expected_mask = (pred.shape[0], *pred.shape[2:])
    for name, mask in (("event_mask", event_mask), ("valid", valid)):
        if mask.dtype != torch.bool or tuple(mask.shape) != expected_mask:
            raise ValueError(
                f"flow metrics: {name} must be a bool tensor {expected_mask}; "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
    pred, gt = pred.detach(), gt.detach()
    evaluated = (event_mask & valid).to(pred.dtype)

    def masked_sum(per_pixel: Tensor) -> Tensor:
        return (per_pixel.to(pred.dtype) * evaluated).flatten(1).sum(dim=1)

    return FlowErrorSums(
        endpoint_error_px=masked_sum(endpoint_error(pred, gt)),
        outliers=masked_sum(is_outlier(pred, gt)),
        angular_error_deg=masked_sum(angular_error_deg(pred, gt)),
        gt_magnitude_px=masked_sum(torch.linalg.vector_norm(gt, dim=1)),
        num_pixels=evaluated.flatten(1).sum(dim=1),
    )


@dataclass(frozen=True)
class FlowErrors:
    """Flow errors of one recording: means over its windows of the per-window means over pixels."""

    aee_px: float
    outlier_percent: float
    aae_deg: float
    zero_flow_aee_px: float
    num_windows: int


class FlowErrorMetrics:
    """Accumulates flow errors window by window and reports them per recording.

    Each batch element of :meth:`update` is one window of the recording named for it. A window's
    metrics are means over its evaluated pixels; a recording's metric is the mean over its windows
    (as event_flow reports MVSEC/ECD/HQF). Windows without any evaluated pixel are skipped.
    """

    def __init__(self) -> None:
        self._window_means: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)

    def reset(self) -> None:
        """Forget all windows."""
        self._window_means.clear()

    def update(
        self, pred: Tensor, gt: Tensor, event_mask: Tensor, valid: Tensor, recordings: Sequence[str]
    ) -> None:
        """Add the windows of one batch (arguments as :func:`flow_error_sums`), one recording per element."""
        if len(recordings) != pred.shape[0]:
            raise ValueError(
                f"FlowErrorMetrics.update: expected {pred.shape[0]} recording names (one per batch element); "
                f"got {len(recordings)}"
            )
        sums = flow_error_sums(pred, gt, event_mask, valid)
        columns = torch.stack(
            (sums.endpoint_error_px, 100 * sums.outliers, sums.angular_error_deg, sums.gt_magnitude_px), dim=1
        )
        per_window = (columns / sums.num_pixels.clamp(min=1).unsqueeze(1)).double().cpu().tolist()
        counts = sums.num_pixels.tolist()
        for recording, means, num_pixels in zip(recordings, per_window, counts, strict=True):
            if num_pixels > 0:
                self._window_means[recording].append(tuple(means))

    def compute(self) -> dict[str, FlowErrors]:
        """Per-recording means over windows."""
        results = {}
        for recording, windows in self._window_means.items():
            means = (math.fsum(values) / len(windows) for values in zip(*windows, strict=True))
            results[recording] = FlowErrors(*means, num_windows=len(windows))
        return results


def flow_warp_loss(
    window: EventsWithFlow,
    sensor_size: tuple[int, int],
    t_ref_norm: float = 0.0,
    splat: Splat = splat_bilinear,
) -> Tensor:
    """FWL (Stoffregen et al., ECCV 2020) per batch element [B]: var(IWE with flow) / var(IWE with zero flow).

    IWE = event-count image (both polarities) of the events warped to ``t_ref_norm`` (window units,
    default the window start); variance over pixels. Higher is sharper; 1 = no better than zero flow;
    NaN for a batch element without events. event_flow evaluates with ``splat_nearest`` and ``t_ref_norm=1``.
    """
    _check_window(window, sensor_size)
    still = EventsWithFlow(window.events, window.mask, torch.zeros_like(window.flow_at_events))
    warped_variance, still_variance = (
        warped_event_images(w, sensor_size, t_ref_norm, splat).sum(dim=1).flatten(1).var(dim=1)
        for w in (window, still)
    )
    return warped_variance / still_variance


def ratio_squared_average_timestamps(
    window: EventsWithFlow, sensor_size: tuple[int, int], splat: Splat = splat_bilinear
) -> Tensor:
    """RSAT (Hagenaars et al., NeurIPS 2021) per batch element [B].

    Ratio of the forward (reference = window end) squared-average-timestamp loss with the flow to that
    with zero flow (:func:`tinyflow.cmax.focus.squared_average_timestamp_loss`). Lower is better;
    < 1 = better than no motion. event_flow evaluates with ``splat_nearest``.
    """
    _check_window(window, sensor_size)
    still = EventsWithFlow(window.events, window.mask, torch.zeros_like(window.flow_at_events))
    with_flow, without_flow = (
        squared_average_timestamp_loss(w, sensor_size, 1.0, splat) for w in (window, still)
    )
    return with_flow / without_flow


def _check_window(window: EventsWithFlow, sensor_size: tuple[int, int]) -> None:
    check_event_list(window.events, window.mask, sensor_size)
    expected = (*window.events.shape[:2], 2)
    if tuple(window.flow_at_events.shape) != expected:
        raise ValueError(
            f"flow_at_events: expected shape {expected} (batch, events, xy); "
            f"got {tuple(window.flow_at_events.shape)}"
        )
