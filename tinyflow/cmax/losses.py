"""Self-supervised CMax flow loss with the linear warp, accumulated over several forward passes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from tinyflow.cmax.event_list import EventsWithFlow, check_event_list
from tinyflow.cmax.focus import squared_average_timestamp_loss, warped_event_images
from tinyflow.cmax.smoothness import flow_smoothness
from tinyflow.cmax.splat import Splat, splat_bilinear
from tinyflow.cmax.warp import sample_flow_at_events


@dataclass(frozen=True)
class WarpedEventImages:
    """Per-polarity event-count images (channel 0 = ON, 1 = OFF), each [B, 2, H, W].

    Attributes:
        at_start: events warped to the start of the first pass (the backward reference).
        at_end: events warped to the end of the last pass (the forward reference).
    """

    at_start: Tensor
    at_end: Tensor


class _Pass(NamedTuple):
    events: Tensor  # [B, N, 4] (x, y, tau, p_sign), padding zeroed, tau = pass index + t_norm
    mask: Tensor
    flow_at_events: Tensor
    flow: Tensor


class CMaxLinearLoss:
    """Contrast-maximisation loss of Hagenaars et al. (NeurIPS 2021, Sec. 3), as in event_flow.

    Each call to :meth:`accumulate` adds one forward pass: its events and the flow the network
    predicted for it (displacement in pixels over that pass). The event of pass i (0-based) gets the
    accumulation time ``tau = i + t_norm`` and the flow ``u`` of its own pass at its pixel. With P passes,
    events are warped linearly to the forward reference ``tau_ref = P`` (``x' = x + (P - tau) u``) and to
    the backward reference ``tau_ref = 0`` (``x' = x - tau u``); events landing outside the image keep
    only their inside bilinear shares. :meth:`compute` returns, averaged over the batch (event_flow
    sums over it),

        L = L_contrast(P) + L_contrast(0) + smoothness_weight * L_smooth,

    where ``L_contrast(tau_ref) = sum_x sum_p T_p(x)^2 / #{pixels with at least one warped event}``
    and ``T_p`` is the per-polarity image of average normalised timestamps, ``tau / P`` for the forward
    reference and ``1 - tau / P`` for the backward one (see
    :func:`tinyflow.cmax.focus.squared_average_timestamp_loss`); ``L_smooth`` is
    :func:`tinyflow.cmax.smoothness.flow_smoothness` of the P flow maps (space, both diagonals, and
    consecutive passes).

    Args:
        sensor_size: (height, width) of the flow maps and of the images of warped events.
        smoothness_weight: lambda of the smoothness term (event_flow: 0.001).
        charbonnier_eps, charbonnier_alpha: penalty ``(d^2 + eps^2)^alpha`` on each flow component's
            difference; the defaults give event_flow's ``sqrt(d^2 + 1e-6)`` (event_flow applies it to
            the sum of the x and y differences, here each component is penalised on its own).
        splat: image formation, :func:`tinyflow.cmax.splat.splat_bilinear` or a kernel with its signature.
        subpixel_jitter: spread each event uniformly over its pixel's footprint (``x + U(-0.5, 0.5)``,
            likewise y; the flow is still read at the integer pixel) before warping. Events on the
            integer grid make zero flow a sharp local minimum of the bilinearly splatted loss (every
            unwarped event hits one pixel exactly, every warped one is spread over four); the jitter
            removes that bias. Random (torch's global generator): use it for training, not evaluation.
    """

    def __init__(
        self,
        sensor_size: tuple[int, int],
        smoothness_weight: float = 1e-3,
        charbonnier_eps: float = 1e-3,
        charbonnier_alpha: float = 0.5,
        splat: Splat = splat_bilinear,
        subpixel_jitter: bool = False,
    ) -> None:
        if len(sensor_size) != 2 or min(sensor_size) < 1:
            raise ValueError(f"sensor_size: expected (height, width) of positive ints; got {sensor_size}")
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self.smoothness_weight = smoothness_weight
        self.charbonnier_eps = charbonnier_eps
        self.charbonnier_alpha = charbonnier_alpha
        self.splat = splat
        self.subpixel_jitter = subpixel_jitter
        self._passes: list[_Pass] = []

    @property
    def num_passes(self) -> int:
        """Number of forward passes accumulated since the last :meth:`reset`."""
        return len(self._passes)

    def reset(self) -> None:
        """Forget all accumulated passes."""
        self._passes = []

    def accumulate(self, events: Tensor, mask: Tensor, flow: Tensor) -> None:
        """Add one forward pass.

        Args:
            events: [B, N, 4] (x, y, t_norm, p_sign) events of the pass, t_norm over the pass.
            mask: [B, N] bool, False = padding.
            flow: [B, 2, H, W] (x, y) displacement in pixels over the pass (keeps its autograd graph).
        """
        expected = (events.shape[0], 2, *self.sensor_size)
        if tuple(flow.shape) != expected:
            raise ValueError(
                f"flow: expected shape {expected} (batch, xy, height, width); got {tuple(flow.shape)}"
            )
        if self._passes and flow.shape[0] != self._passes[0].flow.shape[0]:
            raise ValueError(
                f"flow: batch size {flow.shape[0]} differs from the {self._passes[0].flow.shape[0]} "
                "of the passes accumulated so far; call reset() between windows of different batch sizes"
            )
        check_event_list(events, mask, self.sensor_size)
        x, y, t_norm, p_sign = torch.where(mask.unsqueeze(-1), events.to(flow.dtype), 0).unbind(-1)
        flow_at_events = sample_flow_at_events(flow, x, y)
        if self.subpixel_jitter:
            x = x + torch.rand_like(x) - 0.5
            y = y + torch.rand_like(y) - 0.5
        accumulation_events = torch.stack((x, y, t_norm + self.num_passes, p_sign), dim=-1)
        self._passes.append(_Pass(accumulation_events, mask, flow_at_events, flow))

    def accumulated(self) -> EventsWithFlow:
        """All accumulated events as one window: t_norm = tau / P, flow = P * u (pixels over all P passes)."""
        if not self._passes:
            raise RuntimeError("CMaxLinearLoss: no pass accumulated; call accumulate() first")
        num_passes = self.num_passes
        events = torch.cat([p.events for p in self._passes], dim=1)
        events = events * events.new_tensor([1.0, 1.0, 1.0 / num_passes, 1.0])
        mask = torch.cat([p.mask for p in self._passes], dim=1)
        flow_at_events = num_passes * torch.cat([p.flow_at_events for p in self._passes], dim=1)
        return EventsWithFlow(events, mask, flow_at_events)

    def compute(self) -> Tensor:
        """The loss (scalar tensor, mean over the batch) of all passes accumulated so far."""
        window = self.accumulated()
        contrast = sum(
            squared_average_timestamp_loss(window, self.sensor_size, t_ref_norm, self.splat)
            for t_ref_norm in (0.0, 1.0)
        )
        flow_maps = torch.stack([p.flow for p in self._passes], dim=1)
        smoothness = flow_smoothness(flow_maps, self.charbonnier_eps, self.charbonnier_alpha)
        return (contrast + self.smoothness_weight * smoothness).mean()

    @torch.no_grad()
    def iwe(self) -> WarpedEventImages:
        """Gradient-free images of the accumulated events warped to both references (for visualisation)."""
        window = self.accumulated()
        return WarpedEventImages(
            at_start=warped_event_images(window, self.sensor_size, 0.0, self.splat),
            at_end=warped_event_images(window, self.sensor_size, 1.0, self.splat),
        )
