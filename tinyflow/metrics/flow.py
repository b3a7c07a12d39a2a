"""Optical-flow metrics: errors against ground truth (AEE, % outliers, AAE) and GT-free focus ratios.

Ground-truth errors are computed over the pixels that have events in the evaluated window and valid GT
(the caller builds ``valid``, e.g. MVSEC marks invalid GT as (0, 0)); the prediction must first be
brought to the GT interval with :func:`rescale_flow`.

Besides the default six, the metrics of event_flow's low-power fork (LSquarzoni/SNN_Event-based_Optical_Flow,
``loss/flow.py``: NEE, NAAE, AAE_Weighted, AAE_Filtered, AE_ofMeans) are declared with ``default=False``
(shown with ``metrics=full``). They are defined here on the GT magnitude and with this module's angle, the
angle between (u, v, 1) vectors, as the AAE column; each function's docstring says where the fork differs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tinyflow.cmax.bilinear import sample_bilinear
from tinyflow.cmax.event_list import EventsWithFlow, check_event_list
from tinyflow.cmax.focus import squared_average_timestamp_loss, warped_event_images
from tinyflow.cmax.splat import Splat, splat_bilinear
from tinyflow.metrics.registry import Metric, register_task_metrics

OUTLIER_THRESHOLD_PX = 3.0
OUTLIER_RELATIVE_THRESHOLD = 0.05
# Normalised metrics (NEE, NAAE) leave out pixels whose GT magnitude is below this (no division by ~0).
MIN_GT_MAGNITUDE_PX = 0.01
# The filtered AAE keeps the pixels whose GT magnitude is above this (the fork's threshold).
AAE_FILTER_THRESHOLD_PX = 0.5
_NORMALISED = f"pixels with |GT| >= {MIN_GT_MAGNITUDE_PX:g} px"
_FILTERED = f"|GT| > {AAE_FILTER_THRESHOLD_PX:g} px"

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
        Metric("nee", "NEE", None, True, "flow", f"endpoint error / |GT| ({_NORMALISED})", default=False),
        Metric(
            "naae", "NAAE", "deg/px", True, "flow", f"angular error / |GT| ({_NORMALISED})", default=False
        ),
        Metric(
            "aae_weighted", "AAE |GT|-weighted", "deg", True, "flow", "AAE weighted by |GT|", default=False
        ),
        Metric(
            "aae_filtered", f"AAE {_FILTERED}", "deg", True, "flow", f"AAE over {_FILTERED}", default=False
        ),
        Metric("ae_mean", "AE of means", "deg", True, "flow", "angle of mean pred vs mean GT", default=False),
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


def compose_flow(first: Tensor, then: Tensor) -> Tensor:
    """Displacement over two consecutive intervals: each pixel's point moves by ``first`` over the first
    interval, then by ``then`` read where it arrived (bilinear; a point outside the frame reads the nearest
    border pixel): ``first(p) + then(p + first(p))``.

    Args:
        first: [B, 2, H, W] (x, y) px over the first interval, at the pixels where the points start.
        then: [B, 2, H, W] (x, y) px over the next interval, at the pixels where they are at its start.
    Returns:
        [B, 2, H, W] (x, y) px over both intervals, at the starting pixels. Applied window by window it
        composes the predictions of the windows that split a GT interval (event_flow evaluates MVSEC dt=4
        with the last window's flow times dt_gt / dt_input instead: :func:`rescale_flow`).
    """
    if first.shape != then.shape or first.ndim != 4 or first.shape[1] != 2:
        raise ValueError(
            f"compose_flow: expected two [B, 2, H, W] flows of one shape; got {tuple(first.shape)}, "
            f"{tuple(then.shape)}"
        )
    batch, _, height, width = first.shape
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=first.dtype, device=first.device),
        torch.arange(width, dtype=first.dtype, device=first.device),
        indexing="ij",
    )
    arrived = (torch.stack((cols, rows)) + first).flatten(2).transpose(1, 2)  # [B, H * W, 2] (x, y)
    return first + sample_bilinear(then, arrived).transpose(1, 2).reshape(batch, 2, height, width)


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


def _check_flow_pair(pred: Tensor, gt: Tensor, masks: dict[str, Tensor]) -> None:
    """pred and gt [B, 2, H, W]; each mask bool [B, H, W]."""
    if pred.shape != gt.shape or pred.ndim != 4 or pred.shape[1] != 2:
        raise ValueError(
            f"flow metrics: pred and gt must both be [B, 2, H, W]; got {tuple(pred.shape)}, {tuple(gt.shape)}"
        )
    expected_mask = (pred.shape[0], *pred.shape[2:])
    for name, mask in masks.items():
        if mask.dtype != torch.bool or tuple(mask.shape) != expected_mask:
            raise ValueError(
                f"flow metrics: {name} must be a bool tensor {expected_mask}; "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )


def _weighted_window_mean(per_pixel: Tensor, weight: Tensor) -> Tensor:
    """Per batch element [B]: sum(weight * per_pixel) / sum(weight) over H, W; NaN where sum(weight) is 0.

    Pixels of zero weight never enter the sum (an inf or NaN there does not spread).
    """
    weight = weight.to(per_pixel.dtype)
    total = weight.flatten(1).sum(dim=1)
    weighted = torch.where(weight > 0, per_pixel * weight, 0).flatten(1).sum(dim=1)
    return torch.where(total > 0, weighted / total.clamp(min=torch.finfo(total.dtype).tiny), math.nan)


def normalised_endpoint_error(
    pred: Tensor, gt: Tensor, mask: Tensor, min_gt_px: float = MIN_GT_MAGNITUDE_PX
) -> Tensor:
    """NEE per window [B], unitless: mean over P' of |pred - gt| / |gt|, P' = pixels of ``mask`` with
    |gt| >= ``min_gt_px`` (pixels of smaller GT are left out: no division by ~0); NaN if P' is empty.

    The fork (``NEE``) divides by min(|pred|, |gt|) + 0.01 over all evaluated pixels; here the GT alone is
    the scale (the issue's definition), the same for every prediction. ``pred``, ``gt``: [B, 2, H, W] px
    over the GT interval; ``mask``: bool [B, H, W], the evaluated pixels (events and valid GT).
    """
    _check_flow_pair(pred, gt, {"mask": mask})
    gt_magnitude = torch.linalg.vector_norm(gt, dim=1)
    kept = mask & (gt_magnitude >= min_gt_px)
    ratio = endpoint_error(pred, gt) / gt_magnitude.clamp(min=min_gt_px)
    return _weighted_window_mean(ratio, kept)


def normalised_angular_error(
    pred: Tensor, gt: Tensor, mask: Tensor, min_gt_px: float = MIN_GT_MAGNITUDE_PX
) -> Tensor:
    """NAAE per window [B] in deg/px: mean over P' of AE / |gt|, AE = :func:`angular_error_deg` (the angle
    between (u, v, 1) vectors), P' = pixels of ``mask`` with |gt| >= ``min_gt_px`` (as
    :func:`normalised_endpoint_error`); NaN if P' is empty.

    The fork (``NAAE``) divides the 2-D direction angle (rad) by the *predicted* magnitude |pred| + 1e-9: a
    prediction scaled up by k keeps its direction and divides that NAAE by k. Normalising by |gt|, as NEE
    does, keeps the metric a property of the error. Arguments as :func:`normalised_endpoint_error`.
    """
    _check_flow_pair(pred, gt, {"mask": mask})
    gt_magnitude = torch.linalg.vector_norm(gt, dim=1)
    kept = mask & (gt_magnitude >= min_gt_px)
    ratio = angular_error_deg(pred, gt) / gt_magnitude.clamp(min=min_gt_px)
    return _weighted_window_mean(ratio, kept)


def gt_weighted_angular_error(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """AAE weighted by the GT magnitude, per window [B] in deg: sum_P |gt| AE / sum_P |gt| over the pixels P
    of ``mask`` (AE as :func:`angular_error_deg`). Pixels of zero GT weigh nothing; NaN where sum_P |gt| = 0.

    The fork (``AAE_Weighted``) weighs by the predicted magnitude and leaves the mask out of the numerator.
    Arguments as :func:`normalised_endpoint_error`.
    """
    _check_flow_pair(pred, gt, {"mask": mask})
    weight = torch.linalg.vector_norm(gt, dim=1) * mask
    return _weighted_window_mean(angular_error_deg(pred, gt), weight)


def filtered_angular_error(
    pred: Tensor, gt: Tensor, mask: Tensor, threshold_px: float = AAE_FILTER_THRESHOLD_PX
) -> Tensor:
    """AAE over the pixels of ``mask`` with |gt| > ``threshold_px``, per window [B] in deg (AE as
    :func:`angular_error_deg`); NaN where no pixel is left.

    The fork (``AAE_Filtered``, threshold 0.5 px) filters on the predicted magnitude (|pred| >= 0.5); here on
    the GT, so the prediction does not choose the pixels it is judged on. Arguments as
    :func:`normalised_endpoint_error`.
    """
    _check_flow_pair(pred, gt, {"mask": mask})
    kept = mask & (torch.linalg.vector_norm(gt, dim=1) > threshold_px)
    return _weighted_window_mean(angular_error_deg(pred, gt), kept)


def mean_flow_angular_error(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """AE of the means, per window [B] in deg: the angle between (mean_P pred, 1) and (mean_P gt, 1), the
    window's mean predicted and mean GT vectors over the pixels P of ``mask``; NaN where P is empty.

    An angle, as the fork's ``AE_ofMeans`` (its README calls it an endpoint error; its code computes the
    angle). The fork takes the 2-D direction angle, undefined for a zero mean vector; the (u, v, 1) angle is
    defined for every pair (0 deg for equal means). Arguments as :func:`normalised_endpoint_error`.
    """
    _check_flow_pair(pred, gt, {"mask": mask})
    count = mask.flatten(1).sum(dim=1).to(pred.dtype)
    weight = mask.unsqueeze(1).to(pred.dtype)
    means = [
        ((flow * weight).flatten(2).sum(dim=2) / count.clamp(min=1).unsqueeze(1)).view(-1, 2, 1, 1)
        for flow in (pred, gt)
    ]
    angle = angular_error_deg(*means).view(-1)
    return torch.where(count > 0, angle, math.nan)


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
    _check_flow_pair(pred, gt, {"event_mask": event_mask, "valid": valid})
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


# The fork's metrics as per-window functions (pred, gt, evaluated mask) -> [B], by registry key.
WINDOW_METRICS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "nee": normalised_endpoint_error,
    "naae": normalised_angular_error,
    "aae_weighted": gt_weighted_angular_error,
    "aae_filtered": filtered_angular_error,
    "ae_mean": mean_flow_angular_error,
}


@dataclass(frozen=True)
class FlowErrors:
    """Flow errors of one recording: means over its windows of the per-window means over pixels.

    The fork's metrics (``nee`` ... ``ae_mean``) average the windows where they are defined; NaN where no
    window of the recording gives them (e.g. every GT below the magnitude threshold).
    """

    aee_px: float
    outlier_percent: float
    aae_deg: float
    zero_flow_aee_px: float
    nee: float
    naae_deg_per_px: float
    aae_weighted_deg: float
    aae_filtered_deg: float
    mean_flow_ae_deg: float
    num_windows: int

    def values(self) -> dict[str, float]:
        """``{registry key: value}`` of the ground-truth metrics, in declaration order; NaN values left out."""
        values = {
            "aee": self.aee_px,
            "outliers": self.outlier_percent,
            "aee_zero": self.zero_flow_aee_px,
            "aae": self.aae_deg,
            "nee": self.nee,
            "naae": self.naae_deg_per_px,
            "aae_weighted": self.aae_weighted_deg,
            "aae_filtered": self.aae_filtered_deg,
            "ae_mean": self.mean_flow_ae_deg,
        }
        return {key: value for key, value in values.items() if math.isfinite(value)}


_SUMMED_KEYS = ("aee", "outliers", "aae", "aee_zero")


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


class FlowErrorMetrics:
    """Accumulates flow errors window by window and reports them per recording.

    Each batch element of :meth:`update` is one window of the recording named for it. A window's
    metrics are means over its evaluated pixels; a recording's metric is the mean over its windows
    (as event_flow reports MVSEC/ECD/HQF). Windows without any evaluated pixel are skipped, and so is a
    window for a metric that it cannot give (NaN: no pixel above that metric's GT-magnitude threshold).
    """

    def __init__(self) -> None:
        self._windows: dict[str, int] = defaultdict(int)
        self._window_values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def reset(self) -> None:
        """Forget all windows."""
        self._windows.clear()
        self._window_values.clear()

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
        per_window = columns / sums.num_pixels.clamp(min=1).unsqueeze(1)
        evaluated = event_mask & valid
        pred, gt = pred.detach(), gt.detach()
        fork = torch.stack([metric(pred, gt, evaluated) for metric in WINDOW_METRICS.values()], dim=1)
        rows = torch.cat((per_window, fork.to(per_window.dtype)), dim=1).double().cpu().tolist()
        keys = (*_SUMMED_KEYS, *WINDOW_METRICS)
        for recording, row, num_pixels in zip(recordings, rows, sums.num_pixels.tolist(), strict=True):
            if num_pixels > 0:
                self._windows[recording] += 1
                for key, value in zip(keys, row, strict=True):
                    if math.isfinite(value):
                        self._window_values[recording][key].append(value)

    def compute(self) -> dict[str, FlowErrors]:
        """Per-recording means over windows."""
        results = {}
        for recording, windows in self._windows.items():
            values = self._window_values[recording]
            mean = {key: _mean(values.get(key, [])) for key in (*_SUMMED_KEYS, *WINDOW_METRICS)}
            results[recording] = FlowErrors(
                aee_px=mean["aee"],
                outlier_percent=mean["outliers"],
                aae_deg=mean["aae"],
                zero_flow_aee_px=mean["aee_zero"],
                nee=mean["nee"],
                naae_deg_per_px=mean["naae"],
                aae_weighted_deg=mean["aae_weighted"],
                aae_filtered_deg=mean["aae_filtered"],
                mean_flow_ae_deg=mean["ae_mean"],
                num_windows=windows,
            )
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
