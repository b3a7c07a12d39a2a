"""LightningModule for self-supervised optical flow with truncated BPTT.

A training batch is a time-major sequence ``[T, B, ...]`` of T consecutive windows of B streams
(see :class:`tinyflow.data.sampler.SequentialBatchSampler`). Each window is one forward pass
of the recurrent network; the T passes form the accumulation window of the CMax loss. After the
T passes: backward, gradient clipping, optimiser step (and learning-rate scheduler step), then the
network state is detached, and reset for the streams whose recording ended.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from tinyflow.cmax.event_list import EventsWithFlow
from tinyflow.cmax.splat import splat_nearest
from tinyflow.cmax.warp import sample_flow_at_events
from tinyflow.metrics.flow import (
    FlowErrorMetrics,
    event_pixel_mask,
    flow_warp_loss,
    ratio_squared_average_timestamps,
    rescale_flow,
)

METRIC_KEYS = ("aee", "outliers", "aee_zero", "aae", "fwl", "rsat")


@dataclass(frozen=True)
class ObservedWindow:
    """What :class:`FlowLightningModule` hands to its window observers (visualisers), without copies.

    Attributes:
        stage: ``"train"`` (once per optimiser step) or ``"val"`` (every validation window).
        batch: time-major ``[T, B, ...]`` batch entries of the windows behind ``output`` (training: the
            accumulation window; validation: T = 1).
        output: the network's output for the last of those windows: ``flow`` [B, 2, H, W] (pixels per
            window) and ``activity`` (layer name -> [B, C, H, W]); it may still carry its autograd graph.
        loss: the training loss of the accumulation window (detached); None in validation.
        iwe: training only: returns the loss's images of warped events of the accumulation window
            (``WarpedEventImages``); valid only during the observer call.
    """

    stage: str
    batch: dict[str, Tensor]
    output: dict[str, Any]
    loss: Tensor | None = None
    iwe: Callable[[], Any] | None = None


class FlowLightningModule(L.LightningModule):
    """Trains a (spiking) flow network with a contrast-maximisation loss.

    Args:
        network: a stateful network: ``forward(x [B, C, H, W]) -> {"flow": [B, 2, H, W], ...}`` with
            ``reset_state(mask)``, ``detach_state()`` and a ``state`` attribute; the flow is an (x, y)
            displacement in pixels over the input window.
        loss: factory ``loss(sensor_size=(H, W))`` of a CMax loss with ``accumulate/compute/reset``.
        optimizer: factory ``optimizer(params)`` (a ``_partial_`` Hydra config).
        gradient_clip_val: max gradient norm, or None.
        scheduler: factory ``scheduler(optimizer)`` of a learning-rate scheduler stepped after every
            optimiser step (a ``_partial_`` Hydra config), or None for a constant learning rate.

    Visualisers append a callable taking an :class:`ObservedWindow` to ``window_observers``; with none
    attached, nothing is recorded.
    """

    def __init__(
        self,
        network: nn.Module,
        loss: Callable[..., Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        gradient_clip_val: float | None = 100.0,
        scheduler: Callable[[torch.optim.Optimizer], LRScheduler] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.network = network
        self.loss_factory = loss
        self.optimizer_factory = optimizer
        self.gradient_clip_val = gradient_clip_val
        self.scheduler_factory = scheduler
        self._losses: dict[tuple[int, int], Any] = {}
        self._stashed_state: Any = None
        self.flow_errors = FlowErrorMetrics()
        self._focus: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.validation_results: dict[str, dict[str, float]] = {}
        self.window_observers: list[Callable[[ObservedWindow], None]] = []

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        optimizer = self.optimizer_factory(self.network.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def loss_for(self, sensor_size: tuple[int, int]) -> Any:
        """The loss object for a sensor size (built once per size)."""
        if sensor_size not in self._losses:
            self._losses[sensor_size] = self.loss_factory(sensor_size=sensor_size)
        return self._losses[sensor_size]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.network(x)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        optimizer = self.optimizers()
        inputs = batch["input"]
        loss_fn = self.loss_for(tuple(inputs.shape[-2:]))
        loss_fn.reset()
        for t in range(inputs.shape[0]):
            out = self.network(inputs[t])
            loss_fn.accumulate(batch["events"][t], batch["event_mask"][t], out["flow"])
        loss = loss_fn.compute()
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm"
            )
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            self.log("train/lr", scheduler.get_last_lr()[0], batch_size=inputs.shape[1])
            scheduler.step()
        self.network.detach_state()
        self.network.reset_state(batch["end_of_recording"][-1])
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=inputs.shape[1])
        if self.window_observers:
            self._notify(ObservedWindow("train", batch, out, loss.detach(), loss_fn.iwe))
        return loss.detach()

    # Validation: one window per step, state kept across windows and reset at recording ends.

    def on_validation_epoch_start(self) -> None:
        self._stashed_state = self.network.state
        self.network.reset_state()
        self.flow_errors.reset()
        self._focus.clear()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        names = self.trainer.datamodule.val_set.recording_names
        for t in range(batch["input"].shape[0]):
            self._validate_window({key: value[t] for key, value in batch.items()}, names)

    def _validate_window(self, window: dict[str, Tensor], names: list[str]) -> None:
        out = self.network(window["input"])
        flow = out["flow"].detach()
        active = window["active"]
        if active.any():
            recordings = [names[int(r)] for r in window["recording"][active]]
            self._update_focus(window, flow, active, recordings)
            has_gt = active & window["has_gt"]
            if has_gt.any():
                # The GT window is the input window here; rescale_flow keeps the interval change explicit.
                dt = window["dt_us"][has_gt].to(flow.dtype)
                pred = rescale_flow(flow[has_gt], dt, dt)
                event_mask = event_pixel_mask(
                    window["events"][has_gt], window["event_mask"][has_gt], tuple(flow.shape[-2:])
                )
                gt_names = [names[int(r)] for r in window["recording"][has_gt]]
                self.flow_errors.update(
                    pred, window["flow_gt"][has_gt], event_mask, window["gt_valid"][has_gt], gt_names
                )
        if self.window_observers:
            self._notify(
                ObservedWindow("val", {key: value.unsqueeze(0) for key, value in window.items()}, out)
            )
        self.network.reset_state(window["end_of_recording"])

    def _notify(self, window: ObservedWindow) -> None:
        for observe in self.window_observers:
            observe(window)

    def _update_focus(
        self, window: dict[str, Tensor], flow: Tensor, active: Tensor, recordings: list[str]
    ) -> None:
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
        loss_fn = self.loss_for(sensor_size)
        loss_fn.reset()
        loss_fn.accumulate(events, mask, flow[active])
        self.log("val/loss", loss_fn.compute(), batch_size=len(recordings))
        loss_fn.reset()

    def on_validation_epoch_end(self) -> None:
        results: dict[str, dict[str, float]] = {name: {} for name in self._focus}
        for name, errors in self.flow_errors.compute().items():
            results.setdefault(name, {}).update(
                aee=errors.aee_px,
                outliers=errors.outlier_percent,
                aee_zero=errors.zero_flow_aee_px,
                aae=errors.aae_deg,
            )
        for name, focus in self._focus.items():
            for key, values in focus.items():
                results[name][key] = math.fsum(values) / len(values)
        self.validation_results = results
        mean = mean_over_recordings(results)
        # Checkpoint selection monitors val/aee: NaN (never best) on data without ground truth.
        mean.setdefault("aee", math.nan)
        for key, value in mean.items():
            self.log(f"val/{key}", value, prog_bar=key in ("aee", "rsat"))
        self.network.state = self._stashed_state
        self._stashed_state = None


def mean_over_recordings(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over the recordings that report it (each recording weighs the same)."""
    mean: dict[str, float] = {}
    for key in METRIC_KEYS:
        values = [metrics[key] for metrics in results.values() if key in metrics]
        if values:
            mean[key] = math.fsum(values) / len(values)
    return mean
