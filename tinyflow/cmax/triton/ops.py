"""torch.autograd.Function wrappers of the Triton kernels, with the signatures of the PyTorch references.

Kernels run in float32 or float64; other floating dtypes are computed in float32 and cast back.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
from torch import Tensor
from torch.autograd.function import FunctionCtx

from tinyflow.cmax.triton.splat_kernels import splat_backward_kernel, splat_forward_kernel
from tinyflow.cmax.triton.warp_kernels import warp_backward_kernel, warp_forward_kernel

SPLAT_BLOCK = 256
WARP_BLOCK = 128
KERNEL_DTYPES = (torch.float32, torch.float64)


def splat_points(
    points: Tensor, channel: Tensor, weights: Tensor, num_channels: int, sensor_size: tuple[int, int]
) -> Tensor:
    """Triton implementation of :func:`tinyflow.cmax.splat.splat_points_torch` (same arguments)."""
    dtype = points.dtype
    if dtype not in KERNEL_DTYPES:
        points, weights = points.float(), weights.float()
    images = _Splat.apply(points, channel, weights, num_channels, sensor_size)
    return images.to(dtype)


def warp_iterative(
    start: Tensor, t_norm: Tensor, pass_index: Tensor, own_flow: Tensor, flow_maps: Tensor
) -> Tensor:
    """Triton implementation of :func:`tinyflow.cmax.warp.warp_iterative_torch` (same arguments)."""
    dtype = flow_maps.dtype
    if dtype not in KERNEL_DTYPES:
        start, t_norm, own_flow, flow_maps = (v.float() for v in (start, t_norm, own_flow, flow_maps))
    positions = _IterativeWarp.apply(start, t_norm, pass_index, own_flow, flow_maps)
    return positions.to(dtype)


class _Splat(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        points: Tensor,
        channel: Tensor,
        weights: Tensor,
        num_channels: int,
        sensor_size: tuple[int, int],
    ) -> Tensor:
        points, channel, weights = points.contiguous(), channel.long().contiguous(), weights.contiguous()
        batch, num_points, num_weights = weights.shape
        height, width = sensor_size
        images = weights.new_zeros(batch, num_channels, num_weights, height, width)
        if batch and num_points:
            grid = (triton.cdiv(num_points, SPLAT_BLOCK), batch)
            splat_forward_kernel[grid](
                points,
                channel,
                weights,
                images,
                num_points,
                num_channels,
                height,
                width,
                NUM_WEIGHTS=num_weights,
                BLOCK=SPLAT_BLOCK,
            )
        ctx.save_for_backward(points, channel, weights)
        ctx.num_channels, ctx.sensor_size = num_channels, sensor_size
        return images

    @staticmethod
    def backward(ctx: Any, grad_images: Tensor) -> tuple[Tensor | None, ...]:
        points, channel, weights = ctx.saved_tensors
        batch, num_points, num_weights = weights.shape
        height, width = ctx.sensor_size
        grad_points, grad_weights = torch.zeros_like(points), torch.zeros_like(weights)
        if batch and num_points:
            grid = (triton.cdiv(num_points, SPLAT_BLOCK), batch)
            splat_backward_kernel[grid](
                points,
                channel,
                weights,
                grad_images.contiguous(),
                grad_points,
                grad_weights,
                num_points,
                ctx.num_channels,
                height,
                width,
                NUM_WEIGHTS=num_weights,
                BLOCK=SPLAT_BLOCK,
            )
        return grad_points, None, grad_weights, None, None


class _IterativeWarp(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        start: Tensor,
        t_norm: Tensor,
        pass_index: Tensor,
        own_flow: Tensor,
        flow_maps: Tensor,
    ) -> Tensor:
        start, t_norm, own_flow, flow_maps = (v.contiguous() for v in (start, t_norm, own_flow, flow_maps))
        pass_index = pass_index.to(torch.int32).contiguous()
        batch, num_events = t_norm.shape
        num_passes, height, width = flow_maps.shape[1], flow_maps.shape[3], flow_maps.shape[4]
        positions = start.new_empty(batch, num_events, num_passes + 1, 2)
        if batch and num_events:
            grid = (triton.cdiv(num_events, WARP_BLOCK), batch)
            warp_forward_kernel[grid](
                start,
                t_norm,
                pass_index,
                own_flow,
                flow_maps,
                positions,
                num_events,
                num_passes,
                height,
                width,
                BLOCK=WARP_BLOCK,
            )
        ctx.save_for_backward(t_norm, pass_index, own_flow, flow_maps, positions)
        return positions

    @staticmethod
    def backward(ctx: Any, grad_positions: Tensor) -> tuple[Tensor | None, ...]:
        t_norm, pass_index, own_flow, flow_maps, positions = ctx.saved_tensors
        batch, num_events = t_norm.shape
        num_passes, height, width = flow_maps.shape[1], flow_maps.shape[3], flow_maps.shape[4]
        grad_start = own_flow.new_zeros(batch, num_events, 2)
        grad_t_norm, grad_own_flow = torch.zeros_like(t_norm), torch.zeros_like(own_flow)
        grad_flow_maps = torch.zeros_like(flow_maps)
        if batch and num_events:
            grid = (triton.cdiv(num_events, WARP_BLOCK), batch)
            warp_backward_kernel[grid](
                t_norm,
                pass_index,
                own_flow,
                flow_maps,
                positions,
                grad_positions.contiguous(),
                grad_start,
                grad_t_norm,
                grad_own_flow,
                grad_flow_maps,
                num_events,
                num_passes,
                height,
                width,
                BLOCK=WARP_BLOCK,
            )
        return grad_start, grad_t_norm, None, grad_own_flow, grad_flow_maps
