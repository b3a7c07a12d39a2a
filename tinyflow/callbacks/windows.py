"""From an observed window (see :class:`tinyflow.tasks.ObservedWindow`) to numpy images of one stream."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyflow.tasks import ObservedWindow
from tinyflow.viz.images import event_counts


@dataclass(frozen=True)
class WindowImages:
    """One stream of one observed window, as numpy arrays (flow in pixels per window, (x, y) channels).

    Attributes:
        events: [2, H, W] ON/OFF counts of the window that produced ``flow``.
        flow: [2, H, W] predicted flow.
        flow_gt: [2, H, W] ground truth over the same window, or None.
        gt_valid: [H, W] bool, or None.
        error: [H, W] endpoint error in pixels (0 where GT is invalid), as the task computed it; or None.
        aee: the task's AEE [px] of the window (pixels with events and valid GT), or None.
        unwarped: [2, H, W] counts of every event of the accumulation window at its own pixel (the image
            before warping; in validation the window's own events).
        iwe_start, iwe_end: [2, H, W] images of warped events at the first and last reference time of the
            loss, or None when the task has none.
    """

    events: np.ndarray
    flow: np.ndarray
    flow_gt: np.ndarray | None
    gt_valid: np.ndarray | None
    error: np.ndarray | None
    aee: float | None
    unwarped: np.ndarray
    iwe_start: np.ndarray | None
    iwe_end: np.ndarray | None

    @property
    def flow_scale(self) -> float | None:
        """Largest valid GT magnitude [px]: the common colour scale of GT and prediction; None without GT."""
        if self.flow_gt is None or self.gt_valid is None:
            return None
        return float(np.hypot(*self.flow_gt)[self.gt_valid].max(initial=0.0)) or None


class WindowRenderer:
    """Numpy images of stream ``stream`` of observed windows; errors and images of warped events come
    from the task (:attr:`ObservedWindow.evaluation`, :attr:`ObservedWindow.iwe`), never recomputed here."""

    def __init__(self, stream: int = 0) -> None:
        if stream < 0:
            raise ValueError(f"stream: expected a batch index >= 0; got {stream}")
        self.stream = stream

    def render(self, window: ObservedWindow) -> WindowImages | None:
        """The images of the stream, or None when the batch has no such stream or it is padding."""
        b, batch = self.stream, window.batch
        if b >= batch["input"].shape[1] or not bool(batch["active"][-1, b]):
            return None
        flow = window.output["flow"][b].detach().float().cpu().numpy()
        size = (int(flow.shape[-2]), int(flow.shape[-1]))
        events = batch["events"][:, b].cpu().numpy()
        mask = batch["event_mask"][:, b].cpu().numpy()
        has_gt = bool(batch["has_gt"][-1, b]) and "flow_error" in window.evaluation
        aee = float(window.evaluation["aee"][b]) if has_gt else None
        iwe_start, iwe_end = self._iwe(window)
        return WindowImages(
            events=event_counts(events[-1], mask[-1], size),
            flow=flow,
            flow_gt=batch["flow_gt"][-1, b].cpu().numpy() if has_gt else None,
            gt_valid=batch["gt_valid"][-1, b].cpu().numpy() if has_gt else None,
            error=window.evaluation["flow_error"][b].float().cpu().numpy() if has_gt else None,
            aee=aee if aee is not None and np.isfinite(aee) else None,
            unwarped=event_counts(events.reshape(-1, 4), mask.reshape(-1), size),
            iwe_start=iwe_start,
            iwe_end=iwe_end,
        )

    def _iwe(self, window: ObservedWindow) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """[2, H, W] images of warped events at the first and last reference of the stream."""
        if window.iwe is None:
            return None, None
        images = window.iwe()
        b = self.stream
        return images.at_start[b].detach().float().cpu().numpy(), images.at_end[
            b
        ].detach().float().cpu().numpy()
