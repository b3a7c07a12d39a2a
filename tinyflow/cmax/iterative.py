"""The iterative warp as one autograd function whose backward pass recomputes the flow reads.

:func:`tinyflow.cmax.warp.warp_iterative_torch` through autograd keeps, for every event and every flow map
it crosses, the neighbours, shares and values of the bilinear read: about 100 bytes per event and pass
boundary. :func:`warp_iterative_lean` runs it without autograd and keeps only the positions (8 bytes per
event and boundary in float32); its backward pass walks the chains back (as the Triton kernel does),
reading each flow map again at the saved positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from tinyflow.cmax.bilinear import (
    PAD,
    chunk_points,
    corner_offsets,
    corner_shares,
    interpolate_corners,
    padded_corners,
    padded_size,
)


def warp_iterative_lean(
    warp: Callable[..., Tensor],
    start: Tensor,
    t_norm: Tensor,
    pass_index: Tensor,
    own_flow: Tensor,
    flow_maps: Tensor,
) -> Tensor:
    """``warp(start, t_norm, pass_index, own_flow, flow_maps)``, run without autograd, with the gradient
    of :func:`tinyflow.cmax.warp.warp_iterative_torch` (its arguments and [B, M, P + 1, 2] result)."""
    return _IterativeWarp.apply(warp, start, t_norm, pass_index, own_flow, flow_maps)


class _IterativeWarp(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        warp: Callable[..., Tensor],
        start: Tensor,
        t_norm: Tensor,
        pass_index: Tensor,
        own_flow: Tensor,
        flow_maps: Tensor,
    ) -> Tensor:
        positions = warp(start, t_norm, pass_index, own_flow, flow_maps)
        ctx.save_for_backward(t_norm, pass_index, own_flow, flow_maps, positions)
        return positions

    @staticmethod
    def backward(ctx: Any, grad_positions: Tensor) -> tuple[Tensor | None, ...]:
        t_norm, pass_index, own_flow, flow_maps, positions = ctx.saved_tensors
        num_passes = flow_maps.shape[1]
        order = torch.argsort(pass_index, stable=True)
        ordered = bool(torch.equal(order, torch.arange(order.numel(), device=order.device)))
        if not ordered:  # walk the events in pass order
            positions, grad_positions = positions[:, order], grad_positions[:, order]
        sorted_pass = pass_index[order]
        pass_start = torch.searchsorted(
            sorted_pass, torch.arange(num_passes + 1, device=pass_index.device)
        ).tolist()
        grad_maps = _GradMaps(flow_maps)
        # p_(b+1) = p_b + F_b(p_b) for the events of passes < b: adjoint of p_(b+1), from boundary P down
        end = grad_positions[:, :, num_passes].clone()
        for boundary in range(num_passes - 1, 0, -1):
            columns = slice(0, pass_start[boundary])
            transposed = grad_maps.add(boundary, positions[:, columns, boundary], end[:, columns], 1.0)
            end[:, columns] += grad_positions[:, columns, boundary] + transposed
        # p_b = p_(b+1) - F_b(p_(b+1)) for the events of passes > b: adjoint of p_b, from boundary 0 up
        begin = grad_positions[:, :, 0].clone()
        for boundary in range(num_passes - 1):
            columns = slice(pass_start[boundary + 1], None)
            transposed = grad_maps.add(boundary, positions[:, columns, boundary + 1], begin[:, columns], -1.0)
            begin[:, columns] += grad_positions[:, columns, boundary + 1] - transposed
        if not ordered:
            inverse = torch.argsort(order)
            end, begin = end[:, inverse], begin[:, inverse]
        # p_(k+1) = x + (1 - t) u and p_k = x - t u
        t_norm = t_norm.unsqueeze(-1)
        grad_start = end + begin
        grad_own_flow = (1 - t_norm) * end - t_norm * begin
        grad_t_norm = -(own_flow * grad_start).sum(-1)
        return None, grad_start, grad_t_norm, None, grad_own_flow, grad_maps.result()


class _GradMaps:
    """Accumulates d loss / d flow maps in zero-padded maps and reads the flow maps (border padding)."""

    def __init__(self, flow_maps: Tensor) -> None:
        batch, num_passes, _, height, width = flow_maps.shape
        self.sensor_size = (height, width)
        padded_height, padded_width = padded_size(self.sensor_size)
        self.plane = padded_height * padded_width
        padded = flow_maps.new_zeros(batch, num_passes, 2, padded_height, padded_width)
        padded[..., PAD : PAD + height, PAD : PAD + width] = flow_maps
        self.maps = padded.flatten(3)  # [B, P, 2, Hp * Wp]
        self.grad = torch.zeros_like(self.maps)
        self.offsets = corner_offsets(self.sensor_size)

    def add(self, boundary: int, points: Tensor, adjoint: Tensor, sign: float) -> Tensor:
        """Add ``sign * adjoint`` [B, n, 2] splatted at ``points`` [B, n, 2] (read clamped into the image)
        to the gradient of map ``boundary``; return the transposed Jacobian of its read times ``adjoint``."""
        height, width = self.sensor_size
        transposed = torch.zeros_like(adjoint)
        for element, chunk in _chunks(points.shape[0], points.shape[1], chunk_points(points.device)):
            point = points[element, chunk]
            x, y = point.unbind(-1)
            inside_x, inside_y = (x >= 0) & (x <= width - 1), (y >= 0) & (y <= height - 1)
            clamped = torch.stack((x.clamp(0, width - 1), y.clamp(0, height - 1)), dim=-1)
            pixel, fraction_x, fraction_y = padded_corners(clamped, self.sensor_size)
            shares = corner_shares(fraction_x, fraction_y)
            weight_x, weight_y = adjoint[element, chunk].unbind(-1)
            d_dx = d_dy = None
            for component, weight in enumerate((weight_x, weight_y)):
                image, grad = self.maps[element, boundary, component], self.grad[element, boundary, component]
                signed = weight * sign
                for offset, share in zip(self.offsets, shares, strict=True):
                    grad[offset:].scatter_add_(0, pixel, share * signed)
                values = tuple(image[offset:].index_select(0, pixel) for offset in self.offsets)
                _, slope_x, slope_y = interpolate_corners(values, fraction_x, fraction_y)
                d_dx = weight * slope_x if d_dx is None else d_dx.addcmul_(weight, slope_x)
                d_dy = weight * slope_y if d_dy is None else d_dy.addcmul_(weight, slope_y)
            transposed[element, chunk, 0] = d_dx * inside_x
            transposed[element, chunk, 1] = d_dy * inside_y
        return transposed

    def result(self) -> Tensor:
        """[B, P, 2, H, W] d loss / d flow maps."""
        height, width = self.sensor_size
        grad = self.grad.view(*self.grad.shape[:3], height + 2 * PAD, width + 2 * PAD)
        return grad[..., PAD : PAD + height, PAD : PAD + width].contiguous()


def _chunks(batch: int, num_points: int, size: int) -> Iterator[tuple[int, slice]]:
    for element in range(batch):
        for begin in range(0, num_points, size):
            yield element, slice(begin, begin + size)
