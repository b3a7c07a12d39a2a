"""Self-supervised CMax flow losses accumulated over several forward passes: linear and iterative warps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from tinyflow.cmax.backend import BACKENDS, Backend
from tinyflow.cmax.event_list import EventsWithFlow, check_event_list
from tinyflow.cmax.focus import FOCUS
from tinyflow.cmax.references import REFERENCE_MODES, ReferenceMode, ReferencePlan, ScalePlan, plan_references
from tinyflow.cmax.smoothness import flow_smoothness
from tinyflow.cmax.splat import splat_points
from tinyflow.cmax.warp import WARP_MODES, WarpMode, sample_flow_at_events, warp_linear, warp_to_references


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
    events: Tensor  # [B, N, 4] (x, y, t_norm, p_sign), x and y plus the jitter, padding zeroed
    mask: Tensor  # [B, N] bool
    own_flow: Tensor  # [B, N, 2] flow of the pass at the event's pixel
    flow: Tensor  # [B, 2, H, W]


class _Window(NamedTuple):
    """All accumulated passes, concatenated along the events (M columns)."""

    start: Tensor  # [B, M, 2]
    t_norm: Tensor  # [B, M]
    pass_index: Tensor  # [M] long
    p_sign: Tensor  # [B, M]
    mask: Tensor  # [B, M]
    own_flow: Tensor  # [B, M, 2]
    flow_maps: Tensor  # [B, P, 2, H, W]

    @property
    def tau(self) -> Tensor:
        """[B, M] accumulation time in passes: pass index + t_norm."""
        return self.pass_index.to(self.t_norm.dtype) + self.t_norm


class CMaxLoss:
    """Contrast-maximisation loss over an accumulation window of P forward passes.

    Each call to :meth:`accumulate` adds one pass: its events and the flow the network predicted for it
    (pixels per pass). An event of pass k (0-based) gets the time ``tau = k + t_norm`` (passes) and the
    flow ``u`` of its own pass at its pixel. :meth:`compute` warps every event to the references (pass
    boundaries, see :mod:`tinyflow.cmax.references`) with

    - ``warp="linear"`` (Hagenaars et al., NeurIPS 2021, event_flow): ``x' = x + (t_ref - tau) u``;
    - ``warp="iterative"`` (Paredes-Vallés et al., ICCV 2023, TinyCMax): through the flow maps of the
      passes in between (:func:`tinyflow.cmax.warp.warp_iterative_torch`),

    splats them bilinearly per polarity and per reference (events landing outside the image keep only
    their inside shares) and returns, averaged over the batch,

        L = mean_s [2 / S_s * sum_(j, r) F(s, j, r)] + smoothness_weight * L_smooth,

    where F(s, j, r) is the focus loss of the events of sub-window j of scale s at its reference r, S_s
    the number of such images at scale s (with ``references="ends"`` and one scale, ``L`` is event_flow's
    ``F(P) + F(0)``), and ``L_smooth`` is :func:`tinyflow.cmax.smoothness.flow_smoothness` of the P maps.
    ``focus="average_timestamp"``: :func:`tinyflow.cmax.focus.average_timestamp_focus` with the timestamp
    weight ``s = 1 - |t_ref - tau| / D`` (D = sub-window length in passes, capped by ``reach``; event_flow:
    ``tau / P`` forward and ``1 - tau / P`` backward); ``focus="variance"``:
    :func:`tinyflow.cmax.focus.variance_focus`.

    Args:
        sensor_size: (height, width) of the flow maps and of the images of warped events.
        warp: ``"linear"`` or ``"iterative"``.
        references: ``"ends"`` (each (sub-)window's first and last boundary) or ``"all"`` (every boundary).
        reach: an event counts only at boundaries within ``reach`` passes (it is carried through at most
            ``reach`` flow maps, its own included); None = no limit.
        border_compensation: drop an event at every reference if it leaves the image (x outside
            [-0.5, W - 0.5] or y outside [-0.5, H - 0.5]) at any pass boundary it reaches.
        scales: number of temporal scales: the loss is also taken over the 2**s sub-windows of about
            P / 2**s passes, s < scales (scales with more sub-windows than passes are skipped).
        focus: ``"average_timestamp"`` or ``"variance"``.
        smoothness_weight: lambda of the smoothness term (event_flow: 0.001).
        charbonnier_eps, charbonnier_alpha: penalty ``(d^2 + eps^2)^alpha`` on each flow component's
            difference; the defaults give event_flow's ``sqrt(d^2 + 1e-6)`` (event_flow applies it to
            the sum of the x and y differences, here each component is penalised on its own).
        subpixel_jitter: spread each event uniformly over its pixel's footprint (``x + U(-0.5, 0.5)``,
            likewise y; its own flow is still read at the integer pixel) before warping. Events on the
            integer grid make zero flow a sharp local minimum of the bilinearly splatted loss (every
            unwarped event hits one pixel exactly, every warped one is spread over four); the jitter
            removes that bias. Random (torch's global generator): use it for training, not evaluation.
        max_grad_events: at most this many event columns (a random subset, the same for every batch
            element) carry gradients; the others are warped without autograd and still splatted, so
            the loss value is unchanged. None = all.
        backend: ``"auto"``, ``"torch"`` or ``"triton"`` for the iterative warp and the splat (see
            :func:`tinyflow.cmax.backend.resolve_backend`).
    """

    def __init__(
        self,
        sensor_size: tuple[int, int],
        warp: WarpMode = "linear",
        references: ReferenceMode = "ends",
        reach: int | None = None,
        border_compensation: bool = False,
        scales: int = 1,
        focus: str = "average_timestamp",
        smoothness_weight: float = 1e-3,
        charbonnier_eps: float = 1e-3,
        charbonnier_alpha: float = 0.5,
        subpixel_jitter: bool = False,
        max_grad_events: int | None = None,
        backend: Backend = "auto",
    ) -> None:
        if len(sensor_size) != 2 or min(sensor_size) < 1:
            raise ValueError(f"sensor_size: expected (height, width) of positive ints; got {sensor_size}")
        choices: dict[str, tuple[Any, tuple[str, ...]]] = {
            "warp": (warp, WARP_MODES),
            "references": (references, REFERENCE_MODES),
            "focus": (focus, tuple(FOCUS)),
            "backend": (backend, BACKENDS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}; got {value!r}")
        if reach is not None and reach < 1:
            raise ValueError(f"reach: expected None or at least 1 pass; got {reach}")
        if scales < 1:
            raise ValueError(f"scales: expected at least 1 temporal scale; got {scales}")
        if max_grad_events is not None and max_grad_events < 0:
            raise ValueError(f"max_grad_events: expected None or a count >= 0; got {max_grad_events}")
        self.sensor_size = (int(sensor_size[0]), int(sensor_size[1]))
        self.warp: WarpMode = warp
        self.references: ReferenceMode = references
        self.reach = reach
        self.border_compensation = border_compensation
        self.scales = scales
        self.focus = FOCUS[focus]
        self.smoothness_weight = smoothness_weight
        self.charbonnier_eps = charbonnier_eps
        self.charbonnier_alpha = charbonnier_alpha
        self.subpixel_jitter = subpixel_jitter
        self.max_grad_events = max_grad_events
        self.backend: Backend = backend
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
        events = events.to(flow.dtype)
        if not bool(mask.all()):
            events = torch.where(mask.unsqueeze(-1), events, 0)
        own_flow = sample_flow_at_events(flow, events[..., 0], events[..., 1])
        if self.subpixel_jitter:
            jitter = torch.rand_like(events[..., :2]) - 0.5
            events = torch.cat((events[..., :2] + jitter, events[..., 2:]), dim=-1)
        self._passes.append(_Pass(events, mask, own_flow, flow))

    def accumulated(self) -> EventsWithFlow:
        """All accumulated events as one window: t_norm = tau / P, flow = P * u (pixels over all P passes)."""
        window = self._window()
        num_passes = self.num_passes
        events = torch.cat(
            (window.start, (window.tau / num_passes).unsqueeze(-1), window.p_sign[..., None]), -1
        )
        return EventsWithFlow(events, window.mask, num_passes * window.own_flow)

    def compute(self) -> Tensor:
        """The loss (scalar tensor, mean over the batch) of all passes accumulated so far."""
        window = self._window()
        plan, references = self._plan(window, self.references, self.scales)
        positions, kept = self._warped(window, references)
        contrast = torch.stack(
            [
                2 * self.focus.measure(self._images(window, positions, kept, references, scale, True)).mean(1)
                for scale in plan.scales
            ]
        ).mean(dim=0)
        smoothness = flow_smoothness(window.flow_maps, self.charbonnier_eps, self.charbonnier_alpha)
        return (contrast + self.smoothness_weight * smoothness).mean()

    @torch.no_grad()
    def iwe(self) -> WarpedEventImages:
        """Gradient-free images of the accumulated events warped to the first and last pass boundary.

        Events count where the loss counts them (reach, border compensation); for visualisation.
        """
        window = self._window()
        plan, references = self._plan(window, "ends", 1)
        positions, kept = self._warped(window, references)
        images = self._images(window, positions, kept, references, plan.scales[0], False)[:, :, :, 0]
        return WarpedEventImages(at_start=images[:, 0], at_end=images[:, -1])

    def _window(self) -> _Window:
        if not self._passes:
            raise RuntimeError(f"{type(self).__name__}: no pass accumulated; call accumulate() first")
        device = self._passes[0].mask.device
        sizes = torch.tensor([p.mask.shape[1] for p in self._passes], device=device)
        pass_index = torch.repeat_interleave(torch.arange(self.num_passes, device=device), sizes)

        def concatenated(field: str) -> Tensor:
            return torch.cat([getattr(p, field) for p in self._passes], dim=1)

        events = concatenated("events")
        return _Window(
            start=events[..., :2],
            t_norm=events[..., 2],
            pass_index=pass_index,
            p_sign=events[..., 3],
            mask=concatenated("mask"),
            own_flow=concatenated("own_flow"),
            flow_maps=torch.stack([p.flow for p in self._passes], dim=1),
        )

    def _plan(self, window: _Window, references: ReferenceMode, scales: int) -> tuple[ReferencePlan, Tensor]:
        """The reference plan on the window's device and its reference times in the events' dtype."""
        plan = plan_references(self.num_passes, references, scales, self.reach).to(window.mask.device)
        return plan, plan.references.to(window.start.dtype)

    def _warped(self, window: _Window, references: Tensor) -> tuple[Tensor, Tensor]:
        """Positions [B, M, R, 2] at ``references`` and the events kept [B, M] (mask, border compensation)."""
        if not self.border_compensation:
            return self._warp(window, references), window.mask
        height, width = self.sensor_size
        first, last = self._reach_limits(window.pass_index)
        if self.warp == "iterative":
            boundaries = torch.arange(self.num_passes + 1, device=first.device)
            positions = self._warp(window, boundaries.to(references.dtype))
            reached = (boundaries >= first.unsqueeze(1)) & (boundaries <= last.unsqueeze(1))
            checked, selected = positions.detach(), positions.index_select(2, references.long())
        else:  # positions move linearly in time: the first and last reached boundaries suffice
            limits = torch.stack((first, last), dim=1).to(references.dtype)
            x, y = warp_linear(
                window.start[..., 0:1],
                window.start[..., 1:2],
                window.tau.unsqueeze(-1),
                window.own_flow.detach().unsqueeze(2),
                limits,
            )
            checked, reached = torch.stack((x, y), dim=-1), torch.ones_like(limits, dtype=torch.bool)
            selected = self._warp(window, references)
        x, y = checked.unbind(-1)
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
        return selected, window.mask & (inside | ~reached).all(dim=2)

    def _reach_limits(self, pass_index: Tensor) -> tuple[Tensor, Tensor]:
        """First and last pass boundary [M] each that the events of each column reach."""
        if self.reach is None:
            return torch.zeros_like(pass_index), torch.full_like(pass_index, self.num_passes)
        first = (pass_index - self.reach + 1).clamp(min=0)
        last = (pass_index + self.reach).clamp(max=self.num_passes)
        return first, last

    def _warp(self, window: _Window, references: Tensor) -> Tensor:
        """Positions [B, M, R, 2]; only ``max_grad_events`` random columns keep the autograd graph."""

        def warp_columns(columns: slice | Tensor) -> Tensor:
            return warp_to_references(
                window.start[:, columns],
                window.t_norm[:, columns],
                window.pass_index[columns],
                window.own_flow[:, columns],
                window.flow_maps,
                references,
                self.warp,
                self.backend,
            )

        num_events = window.pass_index.shape[0]
        if self.max_grad_events is None or self.max_grad_events >= num_events or not torch.is_grad_enabled():
            return warp_columns(slice(None))
        order = torch.randperm(num_events, device=window.pass_index.device)
        with_grad = warp_columns(order[: self.max_grad_events])
        with torch.no_grad():
            without_grad = warp_columns(order[self.max_grad_events :])
        return torch.cat((with_grad, without_grad), dim=1).index_select(1, torch.argsort(order))

    def _images(
        self,
        window: _Window,
        positions: Tensor,
        kept: Tensor,
        references: Tensor,
        scale: ScalePlan,
        with_focus_weights: bool,
    ) -> Tensor:
        """Splatted images [B, S, 2 (polarity), K, H, W] of one scale's slots.

        K = the focus objective's number of weights if ``with_focus_weights``, else 1 (counts).
        """
        batch, num_events, num_references = positions.shape[:3]
        dtype = positions.dtype
        column_slots = scale.slots[window.pass_index]  # [M, U]
        imaged = column_slots >= 0
        num_weights = self.focus.num_weights if with_focus_weights else 1
        # one reference at a time: elementwise ops over [B, M] (broadcasting over a short last dimension
        # U is several times slower)
        stacked = positions.new_empty(batch, num_events, num_references, num_weights)
        small = 2 * scale.num_slots <= torch.iinfo(torch.int16).max  # channels of the splat
        channel_dtype = torch.int16 if small else torch.int32
        channel = torch.empty(batch, num_events, num_references, dtype=channel_dtype, device=positions.device)
        kept, is_off = kept.to(dtype), (window.p_sign < 0).to(channel_dtype)
        tau, normaliser = window.tau, scale.normaliser.to(dtype)[window.pass_index]
        for reference in range(num_references):
            counts = torch.mul(kept, imaged[:, reference].to(dtype), out=stacked[:, :, reference, 0])
            if num_weights == 2:  # timestamp weight 1 - |t_ref - tau| / D
                weight = (tau - references[reference]).abs_().div_(normaliser).neg_().add_(1)
                torch.mul(weight, counts, out=stacked[:, :, reference, 1])
            torch.add(is_off, 2 * column_slots[:, reference].to(channel_dtype), out=channel[:, :, reference])
        points, channel, stacked = positions.flatten(1, 2), channel.flatten(1), stacked.flatten(1, 2)
        if not bool(imaged.all()):  # keep the (event, reference) pairs imaged at this scale
            pairs = imaged.flatten().nonzero().squeeze(1)
            points, channel, stacked = (v.index_select(1, pairs) for v in (points, channel, stacked))
        images = splat_points(points, channel, stacked, 2 * scale.num_slots, self.sensor_size, self.backend)
        return images.view(batch, scale.num_slots, 2, num_weights, *self.sensor_size)


class CMaxLinearLoss(CMaxLoss):
    """:class:`CMaxLoss` with the linear warp of event_flow (Hagenaars et al., NeurIPS 2021).

    With the defaults (references at both ends of the window, one scale, no reach limit, no border
    compensation) it is event_flow's loss ``F(P) + F(0) + smoothness_weight * L_smooth``, averaged over
    the batch (event_flow sums over it). Keyword options as :class:`CMaxLoss`.
    """

    def __init__(self, sensor_size: tuple[int, int], **options: Any) -> None:
        super().__init__(sensor_size, warp="linear", **options)


class CMaxIterativeLoss(CMaxLoss):
    """:class:`CMaxLoss` with the iterative warp of Taming CMax (Paredes-Vallés et al., ICCV 2023).

    Every event follows the flow maps of the passes between its time and each reference, so the motion
    may change from pass to pass. Defaults to every pass boundary as a reference (multi-reference);
    keyword options as :class:`CMaxLoss`.
    """

    def __init__(
        self, sensor_size: tuple[int, int], references: ReferenceMode = "all", **options: Any
    ) -> None:
        super().__init__(sensor_size, warp="iterative", references=references, **options)
