"""From an observed window (see :class:`tinyflow.tasks.ObservedWindow`) to numpy images of one stream: flow
(:class:`WindowImages`, :class:`WindowRenderer`) and depth (:class:`DepthImages`, :class:`DepthRenderer`);
:data:`RENDERERS` picks one by the task's name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyflow.tasks import ObservedWindow
from tinyflow.viz.colors import depth_to_rgb, events_to_rgb, flow_to_rgb, scalar_to_rgb
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

    def media(self, stage: str) -> dict[str, np.ndarray]:
        """Named uint8 RGB images: events, flow (and GT, error), images of warped events."""
        scale = self.flow_scale
        out = {f"{stage}/events": events_to_rgb(self.events)}
        if self.flow_gt is not None:
            out[f"{stage}/flow_gt"] = flow_to_rgb(self.flow_gt, scale)
            out[f"{stage}/flow_error"] = scalar_to_rgb(self.error, mask=self.gt_valid)
        out[f"{stage}/flow"] = flow_to_rgb(self.flow, scale)
        if self.iwe_start is not None:
            strip = [events_to_rgb(i) for i in (self.unwarped, self.iwe_start, self.iwe_end)]
            out[f"{stage}/iwe"] = np.concatenate(strip, axis=1)
        return out


class WindowRenderer:
    """Numpy flow images of stream ``stream`` of observed windows; errors and images of warped events come
    from the task (:attr:`ObservedWindow.evaluation`, :attr:`ObservedWindow.iwe`), never recomputed here.

    Args:
        stream: which of the batch's parallel streams is drawn.
        cameras: names of the cameras whose channels the input concatenates (used by depth images).
    """

    def __init__(self, stream: int = 0, cameras: tuple[str, ...] = ("left",)) -> None:
        if stream < 0:
            raise ValueError(f"stream: expected a batch index >= 0; got {stream}")
        self.stream = stream
        self.cameras = cameras

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


@dataclass(frozen=True)
class DepthImages:
    """One stream of one observed window of the depth task, as numpy arrays (depth in metres).

    Attributes:
        events: [2, H, W] ON/OFF counts of the left camera's events of the window.
        inputs: camera name -> [H, W] that camera's share of the network input (sum of |channels|).
        depth: [H, W] predicted depth (the task's conversion to metres).
        depth_gt: [H, W] GT depth (NaN where invalid), or None.
        error: [H, W] |predicted - GT| in metres (0 where the GT is invalid), as the task computed it; or None.
        mde: the task's MDE [cm] of the window, or None.
    """

    events: np.ndarray
    inputs: dict[str, np.ndarray]
    depth: np.ndarray
    depth_gt: np.ndarray | None
    error: np.ndarray | None
    mde: float | None

    @property
    def depth_range(self) -> tuple[float, float]:
        """(near, far) in metres of one colour map for prediction and GT: the valid GT's range (the
        prediction's without GT)."""
        shown = self.depth if self.depth_gt is None else self.depth_gt
        finite = shown[np.isfinite(shown)]
        return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)

    def media(self, stage: str) -> dict[str, np.ndarray]:
        """Named uint8 RGB images: events, each camera's input, predicted and GT depth (one colour map),
        the error map."""
        near, far = self.depth_range
        out = {f"{stage}/events": events_to_rgb(self.events)}
        for camera, activity in self.inputs.items():
            out[f"{stage}/input/{camera}"] = scalar_to_rgb(activity)
        out[f"{stage}/depth"] = depth_to_rgb(self.depth, near, far)
        if self.depth_gt is not None:
            out[f"{stage}/depth_gt"] = depth_to_rgb(self.depth_gt, near, far)
            out[f"{stage}/depth_error"] = scalar_to_rgb(self.error, mask=np.isfinite(self.depth_gt))
        return out


class DepthRenderer(WindowRenderer):
    """Numpy depth images of stream ``stream`` of observed windows (:class:`DepthImages`); the prediction in
    metres and the error come from the task (:attr:`ObservedWindow.evaluation`). Arguments as
    :class:`WindowRenderer`."""

    def render(self, window: ObservedWindow) -> DepthImages | None:
        """The images of the stream, or None when the batch has no such stream or it is padding."""
        b, batch = self.stream, window.batch
        if b >= batch["input"].shape[1] or not bool(batch["active"][-1, b]):
            return None
        depth = window.evaluation["depth_m"][b].float().cpu().numpy()
        size = (int(depth.shape[-2]), int(depth.shape[-1]))
        events, mask = batch["events"][-1, b].cpu().numpy(), batch["event_mask"][-1, b].cpu().numpy()
        channels = batch["input"][-1, b].abs().float().cpu().numpy()
        per_camera = np.split(channels, len(self.cameras))
        has_gt = bool(batch["has_depth"][-1, b]) and "depth_error_m" in window.evaluation
        mde = float(window.evaluation["mde"][b]) if has_gt else None
        return DepthImages(
            events=event_counts(events, mask, size),
            inputs={camera: part.sum(axis=0) for camera, part in zip(self.cameras, per_camera, strict=True)},
            depth=depth,
            depth_gt=batch["depth_gt"][-1, b].cpu().numpy() if has_gt else None,
            error=window.evaluation["depth_error_m"][b].float().cpu().numpy() if has_gt else None,
            mde=mde if mde is not None and np.isfinite(mde) else None,
        )


RENDERERS: dict[str, type[WindowRenderer]] = {"flow": WindowRenderer, "depth": DepthRenderer}


def renderer_for(task: str, stream: int, cameras: tuple[str, ...]) -> WindowRenderer:
    """The renderer of a task (its ``metric_task`` name: ``flow`` or ``depth``)."""
    if task not in RENDERERS:
        raise ValueError(f"no window images for task {task!r}; expected one of {sorted(RENDERERS)}")
    return RENDERERS[task](stream, cameras)
