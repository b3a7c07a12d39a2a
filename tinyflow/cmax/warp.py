"""Warps of events to reference times: linear (constant flow, event_flow) and iterative (Taming CMax).

Time is counted in passes over the accumulation window of P passes: an event of pass k (0-based) with
``t_norm`` in [0, 1] (normalised over its pass) lies at ``tau = k + t_norm``; pass boundary b is the time b
(0 = start of the first pass, P = end of the last). Flow is an (x, y) displacement in pixels per pass.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from tinyflow.cmax.backend import Backend, resolve_backend, triton_ops
from tinyflow.cmax.bilinear import chunk_points, sample_bilinear
from tinyflow.cmax.iterative import warp_iterative_lean

WarpMode = Literal["linear", "iterative"]
WARP_MODES = ("linear", "iterative")


def sample_flow_at_events(flow: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Flow of each event, read at its own integer pixel (no interpolation).

    Args:
        flow: [B, 2, H, W] (x, y) displacement in pixels.
        x: [B, N] pixel column of each event, an integer (stored as int or float) in [0, W-1].
        y: [B, N] pixel row of each event, an integer in [0, H-1].
    Returns:
        [B, N, 2] (x, y) flow at the events, in the units of ``flow``; differentiable w.r.t. ``flow``.
    """
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow: expected shape [B, 2, H, W]; got {tuple(flow.shape)}")
    if x.shape != y.shape or x.ndim != 2 or x.shape[0] != flow.shape[0]:
        raise ValueError(
            f"event coordinates: expected x and y of shape [{flow.shape[0]}, N]; "
            f"got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    batch, _, _, width = flow.shape
    flat_index = (y.long() * width + x.long()).unsqueeze(1).expand(batch, 2, -1)
    return flow.flatten(2).gather(2, flat_index).transpose(1, 2)


def warp_linear(
    x: Tensor, y: Tensor, t_norm: Tensor, flow_at_events: Tensor, t_ref_norm: float | Tensor
) -> tuple[Tensor, Tensor]:
    """Move each event along its constant flow to the reference time: ``x' = x + (t_ref - t) * u``.

    Args:
        x, y: [B, N] event pixel coordinates (column, row).
        t_norm: [B, N] event time in units of the flow interval (0 = its start, 1 = its end).
        flow_at_events: [B, N, 2] (x, y) displacement in pixels over that interval.
        t_ref_norm: reference time in the same units (a float, or a tensor broadcasting with ``t_norm``).
    Returns:
        Warped (x, y) sub-pixel positions, each of the broadcast shape of ``x`` and ``t_ref_norm``.
    """
    steps = t_ref_norm - t_norm
    return x + steps * flow_at_events[..., 0], y + steps * flow_at_events[..., 1]


def warp_to_references(
    start: Tensor,
    t_norm: Tensor,
    pass_index: Tensor,
    own_flow: Tensor,
    flow_maps: Tensor,
    references: Tensor,
    mode: WarpMode,
    backend: Backend = "auto",
) -> Tensor:
    """Positions of events of an accumulation window at reference times.

    - ``"linear"`` (event_flow): ``x' = x + (t_ref - tau) * u`` with ``u`` the event's ``own_flow``;
      any reference times.
    - ``"iterative"`` (Taming CMax): see :func:`warp_iterative_torch`; references must be pass boundaries.

    Args:
        start: [B, M, 2] (x, y) position of each event at its own time, pixels.
        t_norm: [B, M] time of each event within its pass, in [0, 1].
        pass_index: [M] long pass k of each event column (the same for every batch element).
        own_flow: [B, M, 2] flow of the event's own pass at the event, pixels per pass.
        flow_maps: [B, P, 2, H, W] flow of each pass, pixels per pass (read by the iterative warp only).
        references: [R] reference times in passes (integers in [0, P] for ``"iterative"``).
        mode: ``"linear"`` or ``"iterative"``.
        backend: implementation of the iterative warp (see :func:`tinyflow.cmax.backend.resolve_backend`).
    Returns:
        [B, M, R, 2] warped (x, y) positions; differentiable w.r.t. ``start``, ``t_norm``, ``own_flow``
        and ``flow_maps``.
    """
    _check_warp_inputs(start, t_norm, pass_index, own_flow, flow_maps, references)
    if mode == "linear":
        steps = references - (pass_index.to(start.dtype) + t_norm).unsqueeze(-1)  # [B, M, R]
        return _LinearWarp.apply(start, own_flow, steps)
    if mode != "iterative":
        raise ValueError(f"mode: expected one of {', '.join(WARP_MODES)}; got {mode!r}")
    num_passes = flow_maps.shape[1]
    boundaries = references.round().long()
    if bool(((boundaries != references) | (boundaries < 0) | (boundaries > num_passes)).any()):
        raise ValueError(
            f"references: the iterative warp needs pass boundaries, integers in [0, {num_passes}]; "
            f"got {references.tolist()}"
        )
    if resolve_backend(backend, start.device) == "triton":
        positions = triton_ops().warp_iterative(start, t_norm, pass_index, own_flow, flow_maps)
    else:
        positions = warp_iterative_lean(warp_iterative_torch, start, t_norm, pass_index, own_flow, flow_maps)
    if torch.equal(boundaries, torch.arange(num_passes + 1, device=boundaries.device)):
        return positions
    return positions.index_select(2, boundaries)


def warp_iterative_torch(
    start: Tensor, t_norm: Tensor, pass_index: Tensor, own_flow: Tensor, flow_maps: Tensor
) -> Tensor:
    """Iterative warp of Paredes-Vallés et al. (ICCV 2023) to every pass boundary (PyTorch reference).

    An event of pass k at time ``tau = k + t_norm`` first moves with its own flow ``u`` to the ends of its
    pass: ``p_(k+1) = x + (1 - t_norm) u`` and ``p_k = x - t_norm u``. It then follows the flow maps F_b
    of the passes after it, ``p_(b+1) = p_b + F_b(p_b)`` for b > k, and of the passes before it,
    ``p_b = p_(b+1) - F_b(p_(b+1))`` for b < k, each read bilinearly at its current position (a position
    outside the image reads the nearest border pixel). With a flow constant in time and space this equals
    the linear warp; with one pass it equals it for any flow.

    Arguments as :func:`warp_to_references`. Returns [B, M, P + 1, 2] positions at the boundaries 0..P.
    """
    batch, num_events = t_norm.shape
    num_passes = flow_maps.shape[1]
    order = torch.argsort(pass_index, stable=True)
    ordered = bool(torch.equal(order, torch.arange(num_events, device=order.device)))
    if not ordered:
        start, t_norm, own_flow = start[:, order], t_norm[:, order], own_flow[:, order]
    pass_start = torch.searchsorted(pass_index[order], torch.arange(num_passes + 1, device=order.device))
    pass_start = pass_start.tolist()  # column where pass b starts in pass order; pass_start[P] = M
    t_norm = t_norm.unsqueeze(-1)
    own_end = start + (1 - t_norm) * own_flow  # each event at the end of its own pass
    own_begin = start - t_norm * own_flow  # ... and at its start
    positions = own_end.new_empty(batch, num_events, num_passes + 1, 2)
    for boundary in range(num_passes):
        own = slice(pass_start[boundary], pass_start[boundary + 1])
        positions[:, own, boundary + 1] = own_end[:, own]
        positions[:, own, boundary] = own_begin[:, own]
    # boundary b of the events of passes < b - 1 from boundary b - 1, then of passes > b from b + 1;
    # a bounded number of columns at a time keeps the interpolation's temporary tensors small
    columns_per_chunk = max(1, chunk_points(start.device) // max(batch, 1))
    for boundary in range(2, num_passes + 1):
        for columns in _column_chunks(0, pass_start[boundary - 1], columns_per_chunk):
            earlier = positions[:, columns, boundary - 1].clone()  # clone: positions changes in place
            positions[:, columns, boundary] = earlier + sample_bilinear(flow_maps[:, boundary - 1], earlier)
    for boundary in range(num_passes - 2, -1, -1):
        for columns in _column_chunks(pass_start[boundary + 1], num_events, columns_per_chunk):
            later = positions[:, columns, boundary + 1].clone()
            positions[:, columns, boundary] = later - sample_bilinear(flow_maps[:, boundary], later)
    return positions if ordered else positions[:, torch.argsort(order)]


def _column_chunks(begin: int, end: int, size: int) -> list[slice]:
    return [slice(low, min(low + size, end)) for low in range(begin, end, size)]


class _LinearWarp(torch.autograd.Function):
    """:func:`warp_linear` to R references at once, [B, M, R, 2] from start [B, M, 2], own flow [B, M, 2]
    and steps [B, M, R] (``t_ref - tau``), one reference at a time in both directions."""

    @staticmethod
    def forward(ctx: FunctionCtx, start: Tensor, own_flow: Tensor, steps: Tensor) -> Tensor:
        ctx.save_for_backward(own_flow, steps)
        batch, num_events, num_references = steps.shape
        positions = start.new_empty(batch, num_events, num_references, 2)
        for reference in range(num_references):  # a broadcasting addcmul is several times slower
            torch.addcmul(start, steps[..., reference, None], own_flow, out=positions[:, :, reference])
        return positions

    @staticmethod
    def backward(ctx: Any, grad_positions: Tensor) -> tuple[Tensor | None, ...]:
        own_flow, steps = ctx.saved_tensors
        grad_start, grad_flow = torch.zeros_like(own_flow), torch.zeros_like(own_flow)
        for reference in range(steps.shape[-1]):
            grad = grad_positions[:, :, reference]
            grad_start += grad
            grad_flow.addcmul_(grad, steps[..., reference, None])
        need_start, need_flow, need_steps = ctx.needs_input_grad
        grad_steps = (grad_positions * own_flow.unsqueeze(2)).sum(-1) if need_steps else None
        return grad_start if need_start else None, grad_flow if need_flow else None, grad_steps


def _check_warp_inputs(
    start: Tensor, t_norm: Tensor, pass_index: Tensor, own_flow: Tensor, flow_maps: Tensor, references: Tensor
) -> None:
    batch, num_events = start.shape[:2]
    expected = {
        "start": (start, (batch, num_events, 2)),
        "t_norm": (t_norm, (batch, num_events)),
        "pass_index": (pass_index, (num_events,)),
        "own_flow": (own_flow, (batch, num_events, 2)),
    }
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}; got {tuple(tensor.shape)}")
    if flow_maps.ndim != 5 or flow_maps.shape[0] != batch or flow_maps.shape[2] != 2:
        raise ValueError(f"flow_maps: expected shape [{batch}, P, 2, H, W]; got {tuple(flow_maps.shape)}")
    if pass_index.is_floating_point():
        raise ValueError(f"pass_index: expected an integer tensor; got {pass_index.dtype}")
    if num_events:
        lowest, highest = int(pass_index.min()), int(pass_index.max())
        if lowest < 0 or highest >= flow_maps.shape[1]:
            raise ValueError(
                f"pass_index: expected integers in [0, {flow_maps.shape[1] - 1}] (one flow map per pass); "
                f"got values in [{lowest}, {highest}]"
            )
    if references.ndim != 1:
        raise ValueError(
            f"references: expected a 1-D tensor of times in passes; got {tuple(references.shape)}"
        )
