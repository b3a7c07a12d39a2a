"""The flow task: self-supervised optical flow by contrast maximisation, evaluated against GT where present.

The network predicts flow in pixels per input window; the CMax loss warps each window's event list
with it. Validation reports the metrics declared in :data:`tinyflow.metrics.flow.FLOW_METRICS`: errors
against GT (AEE, % outliers, zero-flow AEE, AAE) on windows with GT, and the GT-free FWL and RSAT
(event_flow's evaluation: nearest-pixel images) on every window.

A GT interval split into several windows (``data.val_windowing.model_window_us``: the network's own
window length) is evaluated on the composition of their predictions (:func:`compose_flow`, pixel by pixel
along its trajectory), over the pixels with events anywhere in the interval.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import splat_nearest
from tinyflow.cmax.warp import sample_flow_at_events
from tinyflow.metrics.flow import (
    FlowErrorMetrics,
    compose_flow,
    endpoint_error,
    event_pixel_mask,
    flow_error_sums,
    flow_warp_loss,
    ratio_squared_average_timestamps,
)
from tinyflow.tasks.recurrent import ObservedWindow, RecurrentTask, Window


class FlowTask(RecurrentTask):
    """Trains a (spiking) flow network with a contrast-maximisation loss.

    Args:
        network: pure network whose output holds ``flow`` [B, 2, H, W], the (x, y) displacement in
            pixels over the input window.
        loss: factory ``loss(sensor_size=(H, W))`` of a CMax loss with ``accumulate/compute/reset/iwe``
            (a ``_partial_`` Hydra config); one loss object is built per sensor size, and in training per
            flow scale where the network also outputs ``flow_scales`` (see :meth:`sequence_loss`).
        optimizer, scheduler, gradient_clip_val, spike_penalty: see :class:`~tinyflow.tasks.recurrent.RecurrentTask`.
    """

    metric_task = "flow"
    required_targets = ("flow",)
    prediction_key = "flow"

    def __init__(
        self,
        network: nn.Module,
        loss: Callable[..., Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        gradient_clip_val: float | None = 100.0,
        spike_penalty: Callable[[dict[str, Tensor], list[str]], Tensor] | None = None,
    ) -> None:
        super().__init__(network, optimizer, scheduler, gradient_clip_val, spike_penalty)
        self.loss_factory = loss
        self._losses: dict[tuple[tuple[int, int], int | None], Any] = {}
        self._sensor_size: tuple[int, int] | None = None
        self._sequence_losses: list[Any] = []  # one per predicted scale, coarsest first
        self.flow_errors = FlowErrorMetrics()
        self._interval: tuple[Tensor, Tensor] | None = None  # composed flow and event pixels of each stream
        self._focus: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def loss_for(self, sensor_size: tuple[int, int], scale: int | None = None) -> Any:
        """The loss object for a sensor size (built once per size): of ``out["flow"]`` (``scale=None``),
        or of ``out["flow_scales"][scale]`` in training (one object per scale and size)."""
        key = (sensor_size, scale)
        if key not in self._losses:
            self._losses[key] = self.loss_factory(sensor_size=sensor_size)
        return self._losses[key]

    # Training.

    def begin_sequence(self, batch: dict[str, Tensor]) -> None:
        """Start the sequence's losses; the first window's output decides how many (one per scale)."""
        self._sensor_size = tuple(batch["input"].shape[-2:])
        self._sequence_losses = []

    @staticmethod
    def training_flows(output: dict[str, Any]) -> list[Tensor]:
        """The flows the training loss sees: every scale of ``out["flow_scales"]`` (coarsest first, each at
        full resolution in pixels per window) where the network predicts several, else ``[out["flow"]]``."""
        return list(output["flow_scales"]) if "flow_scales" in output else [output["flow"]]

    def accumulate(self, window: Window, output: dict[str, Any]) -> None:
        flows = self.training_flows(output)
        if not self._sequence_losses:
            scales: list[int | None] = [None] if len(flows) == 1 else list(range(len(flows)))
            self._sequence_losses = [self.loss_for(self._sensor_size, scale) for scale in scales]
            for loss in self._sequence_losses:
                loss.reset()
        if len(flows) != len(self._sequence_losses):
            raise ValueError(
                f"FlowTask: the network predicted {len(flows)} flow scales in this window and "
                f"{len(self._sequence_losses)} in the first window of the sequence"
            )
        for loss, flow in zip(self._sequence_losses, flows, strict=True):
            loss.accumulate(window["events"], window["event_mask"], flow)

    def sequence_loss(self) -> Tensor:
        """The CMax loss of the sequence; with several scales, the mean of every scale's loss (event_flow,
        loss/flow.py ``EventWarping.forward``: ``loss += ...`` per flow of the list, then
        ``loss /= len(self._flow_list)``)."""
        losses = [loss.compute() for loss in self._sequence_losses]
        return losses[0] if len(losses) == 1 else torch.stack(losses).mean()

    def training_images(self) -> Callable[[], Any]:
        """The images of warped events of the finest flow (``out["flow"]``)."""
        return self._sequence_losses[-1].iwe

    def training_evaluation(self, window: Window, output: dict[str, Any]) -> dict[str, Tensor]:
        return self._window_errors(window, output["flow"].detach(), self._event_mask(window))

    # Validation.

    def reset_evaluation(self) -> None:
        self.flow_errors.reset()
        self._focus.clear()
        self._interval = None

    def evaluate_window(self, window: Window, output: dict[str, Any], names: list[str]) -> None:
        flow = output["flow"].detach()
        pred, event_mask = self._gt_interval_prediction(window, flow)
        active = window["active"]
        if not active.any():
            return
        self._update_focus(window, flow, active, [names[int(r)] for r in window["recording"][active]])
        has_gt = active & window["has_gt"]
        if has_gt.any():
            gt_names = [names[int(r)] for r in window["recording"][has_gt]]
            self.flow_errors.update(
                pred[has_gt],
                window["flow_gt"][has_gt],
                event_mask[has_gt],
                window["gt_valid"][has_gt],
                gt_names,
            )

    def observe_window(self, window: Window, output: dict[str, Any]) -> ObservedWindow:
        """The validation window after :meth:`evaluate_window`: its errors are those of the GT interval's
        composed prediction."""
        flow = output["flow"].detach()
        batch = {key: value.unsqueeze(0) for key, value in window.items()}
        iwe = partial(self._images_of_warped_events, window["events"], window["event_mask"], flow)
        pred, event_mask = self._interval if self._interval is not None else (flow, self._event_mask(window))
        evaluation = self._window_errors(window, pred, event_mask)
        return ObservedWindow("val", batch, output, iwe=iwe, evaluation=evaluation)

    def evaluation_results(self) -> dict[str, dict[str, float]]:
        results: dict[str, dict[str, float]] = {name: {} for name in self._focus}
        for name, errors in self.flow_errors.compute().items():
            results.setdefault(name, {}).update(errors.values())  # every declared GT metric it gives
        for name, focus in self._focus.items():
            for key, values in focus.items():
                results[name][key] = math.fsum(values) / len(values)
        return results

    def _gt_interval_prediction(self, window: Window, flow: Tensor) -> tuple[Tensor, Tensor]:
        """Each stream's prediction over its GT interval so far, and the pixels with events in it.

        A window that begins an interval (``gt_first``) starts it with its own prediction (pixels per
        window: the window is the interval, or its first part); a later part of the interval is composed
        onto it (:func:`compose_flow`) and adds its event pixels.
        """
        event_mask = self._event_mask(window)
        first = window["gt_first"]
        if self._interval is None or bool(first.all()):
            self._interval = (flow, event_mask)
            return self._interval
        composed, seen = self._interval
        if composed.shape != flow.shape:
            raise ValueError(
                f"FlowTask: a window continues a GT interval at flow shape {tuple(flow.shape)}, but the interval "
                f"began at {tuple(composed.shape)}"
            )
        keep = first.view(-1, 1, 1, 1)
        self._interval = (
            torch.where(keep, flow, compose_flow(composed, flow)),
            torch.where(keep.view(-1, 1, 1), event_mask, seen | event_mask),
        )
        return self._interval

    @staticmethod
    def _event_mask(window: Window) -> Tensor:
        """Pixels with events in the window: bool [B, H, W]."""
        return event_pixel_mask(window["events"], window["event_mask"], tuple(window["input"].shape[-2:]))

    def _window_errors(self, window: Window, pred: Tensor, event_mask: Tensor) -> dict[str, Tensor]:
        """Per-window errors for observers: ``flow_error`` [B, H, W] px (0 where GT is invalid) and ``aee``
        [B] px over the metric's pixels (NaN without them); empty when no stream has GT.

        ``pred``: [B, 2, H, W] px over each stream's GT interval; ``event_mask``: its pixels with events.
        """
        has_gt = window["active"] & window["has_gt"]
        if not has_gt.any():
            return {}
        valid = window["gt_valid"] & has_gt.view(-1, 1, 1)
        sums = flow_error_sums(pred, window["flow_gt"], event_mask, valid)
        aee = torch.where(
            sums.num_pixels > 0, sums.endpoint_error_px / sums.num_pixels.clamp(min=1), math.nan
        )
        return {"flow_error": endpoint_error(pred, window["flow_gt"]) * valid, "aee": aee}

    @torch.no_grad()
    def _images_of_warped_events(self, events: Tensor, mask: Tensor, flow: Tensor) -> Any:
        """The loss's images of warped events of one validation window (its own loss object, reset after)."""
        loss = self.loss_for(tuple(flow.shape[-2:]))
        loss.reset()
        loss.accumulate(events, mask, flow)
        images = loss.iwe()
        loss.reset()
        return images

    def _update_focus(self, window: Window, flow: Tensor, active: Tensor, recordings: list[str]) -> None:
        """FWL and RSAT of the window's own events (event_flow's evaluation: nearest-pixel images)."""
        sensor_size = tuple(flow.shape[-2:])
        events, mask = window["events"][active], window["event_mask"][active]
        x, y = (torch.where(mask, events[..., i], 0) for i in (0, 1))
        warped = EventsWithFlow(events, mask, sample_flow_at_events(flow[active], x, y))
        fwl = flow_warp_loss(warped, sensor_size, t_ref_norm=1.0, splat=splat_nearest)
        rsat = ratio_squared_average_timestamps(warped, sensor_size, splat=splat_nearest)
        for i, name in enumerate(recordings):
            for key, value in (("fwl", fwl[i]), ("rsat", rsat[i])):
                if torch.isfinite(value):
                    self._focus[name][key].append(float(value))
        loss = self.loss_for(sensor_size)
        loss.reset()
        loss.accumulate(events, mask, flow[active])
        self.log("val/loss", loss.compute(), batch_size=len(recordings))
        loss.reset()
