"""From an observed window (see :class:`tinyflow.lit.flow.ObservedWindow`) to numpy images of one stream."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from tinyflow.lit.flow import ObservedWindow
from tinyflow.models.neurons import NEURON_TYPES
from tinyflow.viz.images import endpoint_error, event_counts

SPIKING_LAYER_TYPES = tuple(NEURON_TYPES.values())


@dataclass(frozen=True)
class WindowImages:
    """One stream of one observed window, as numpy arrays (flow in pixels per window, (x, y) channels).

    Attributes:
        events: [2, H, W] ON/OFF counts of the window that produced ``flow``.
        event_mask: [H, W] bool, pixels where that window's input is nonzero.
        flow: [2, H, W] predicted flow.
        flow_gt: [2, H, W] ground truth over the same window, or None.
        gt_valid: [H, W] bool, or None.
        unwarped: [2, H, W] counts of every event of the accumulation window at its own pixel (the image
            before warping; in validation the window's own events).
        iwe_start, iwe_end: [2, H, W] images of warped events at the first and last reference time of the
            loss, or None when no loss is at hand.
    """

    events: np.ndarray
    event_mask: np.ndarray
    flow: np.ndarray
    flow_gt: np.ndarray | None
    gt_valid: np.ndarray | None
    unwarped: np.ndarray
    iwe_start: np.ndarray | None
    iwe_end: np.ndarray | None

    @property
    def error(self) -> np.ndarray | None:
        """Endpoint error [H, W] in pixels (zero where GT is invalid), or None without GT."""
        if self.flow_gt is None or self.gt_valid is None:
            return None
        return np.where(self.gt_valid, endpoint_error(self.flow, self.flow_gt), 0.0).astype(np.float32)

    @property
    def flow_scale(self) -> float | None:
        """Largest valid GT magnitude [px]: the common colour scale of GT and prediction; None without GT."""
        if self.flow_gt is None or self.gt_valid is None:
            return None
        return float(np.hypot(*self.flow_gt)[self.gt_valid].max(initial=0.0)) or None

    def aee(self) -> float | None:
        """AEE [px] over the pixels with events and valid GT (the metric's pixels), or None."""
        error = self.error
        if error is None:
            return None
        pixels = self.gt_valid & self.event_mask
        return float(error[pixels].mean()) if pixels.any() else None


class WindowRenderer:
    """Numpy images of stream ``stream`` of observed windows.

    Training windows bring their loss's images of warped events; for validation windows the renderer
    builds them with its own loss objects from ``loss_factory`` (``loss_factory(sensor_size=(H, W))``,
    the module's), so the module's state is never touched. Without a factory there are no IWEs there.
    """

    def __init__(self, loss_factory: Callable[..., Any] | None, stream: int = 0) -> None:
        if stream < 0:
            raise ValueError(f"stream: expected a batch index >= 0; got {stream}")
        self.loss_factory = loss_factory
        self.stream = stream
        self._losses: dict[tuple[int, int], Any] = {}

    def render(self, window: ObservedWindow) -> WindowImages | None:
        """The images of the stream, or None when the batch has no such stream or it is padding."""
        b, batch = self.stream, window.batch
        if b >= batch["input"].shape[1] or not bool(batch["active"][-1, b]):
            return None
        flow = window.output["flow"][b].detach().float().cpu().numpy()
        size = (int(flow.shape[-2]), int(flow.shape[-1]))
        events = batch["events"][:, b].cpu().numpy()
        mask = batch["event_mask"][:, b].cpu().numpy()
        has_gt = bool(batch["has_gt"][-1, b])
        iwe_start, iwe_end = self._iwe(window, size)
        return WindowImages(
            events=event_counts(events[-1], mask[-1], size),
            event_mask=batch["input"][-1, b].abs().sum(dim=0).cpu().numpy() > 0,
            flow=flow,
            flow_gt=batch["flow_gt"][-1, b].cpu().numpy() if has_gt else None,
            gt_valid=batch["gt_valid"][-1, b].cpu().numpy() if has_gt else None,
            unwarped=event_counts(events.reshape(-1, 4), mask.reshape(-1), size),
            iwe_start=iwe_start,
            iwe_end=iwe_end,
        )

    @torch.no_grad()
    def _iwe(
        self, window: ObservedWindow, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """[2, H, W] images of warped events at the first and last reference of the stream."""
        b = self.stream
        if window.iwe is not None:  # training: the accumulation window, as the loss saw it
            images = window.iwe()
            return images.at_start[b].float().cpu().numpy(), images.at_end[b].float().cpu().numpy()
        if self.loss_factory is None:
            return None, None
        if size not in self._losses:
            self._losses[size] = self.loss_factory(sensor_size=size)
        loss, batch = self._losses[size], window.batch
        loss.reset()
        loss.accumulate(
            batch["events"][-1, b : b + 1],
            batch["event_mask"][-1, b : b + 1],
            window.output["flow"][b : b + 1].detach(),
        )
        images = loss.iwe()
        loss.reset()
        return images.at_start[0].float().cpu().numpy(), images.at_end[0].float().cpu().numpy()


def spiking_layer_names(network: nn.Module) -> list[str]:
    """Names of the spiking layers of a :class:`~tinyflow.models.network.SequentialFlowNetwork` (held by
    a :class:`~tinyflow.models.stateful.StatefulNetwork` or not); other networks have none."""
    inner = network.network if hasattr(network, "network") else network
    layers = inner.layers if isinstance(getattr(inner, "layers", None), nn.ModuleDict) else {}
    return [name for name, layer in layers.items() if isinstance(layer, SPIKING_LAYER_TYPES)]


def firing_rates(activity: Mapping[str, Tensor], names: list[str]) -> dict[str, float]:
    """Mean spikes per neuron per window of each named layer, over the whole batch."""
    return {name: float(activity[name].detach().float().mean()) for name in names if name in activity}
