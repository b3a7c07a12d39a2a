"""Splatting of sub-pixel points into images (the image-formation step of contrast maximisation).

Two interfaces:

- ``splat(x, y, weights, sensor_size) -> [B, H, W]`` (:data:`Splat`): one image per batch element;
  :func:`splat_bilinear` and :func:`splat_nearest` follow it, so the focus metrics can take either.
- :func:`splat_points`: many images at once (one channel per reference time and polarity, several weights
  per point), bilinear, with a PyTorch and a Triton implementation of identical semantics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from tinyflow.cmax.backend import Backend, resolve_backend, triton_ops
from tinyflow.cmax.bilinear import (
    PAD,
    chunk_points,
    corner_offsets,
    corner_shares,
    interpolate_corners,
    padded_corners,
    padded_size,
)

Splat = Callable[[Tensor, Tensor, Tensor, tuple[int, int]], Tensor]


def splat_points(
    points: Tensor,
    channel: Tensor,
    weights: Tensor,
    num_channels: int,
    sensor_size: tuple[int, int],
    backend: Backend = "auto",
) -> Tensor:
    """Accumulate weighted points bilinearly into multi-channel images.

    Args:
        points: [B, Q, 2] (x, y) sub-pixel positions in pixels.
        channel: [B, Q] integer image channel of each point, in [0, num_channels).
        weights: [B, Q, K] K weights per point (0 for padding); weight k goes to image k of the channel.
        num_channels: C, the number of channels.
        sensor_size: (height, width) of the images.
        backend: ``"torch"``, ``"triton"`` or ``"auto"`` (see :func:`tinyflow.cmax.backend.resolve_backend`).
    Returns:
        [B, C, K, H, W]; the pixel (column c, row r) of image k of channel ``channel[q]`` receives
        ``weights[q, k] * (1 - |x - c|) * (1 - |y - r|)`` from a point within one pixel of it; neighbours
        outside the image are dropped. Differentiable w.r.t. ``points`` (almost everywhere) and ``weights``.
    """
    _check_points(points, channel, weights, num_channels, sensor_size)
    if resolve_backend(backend, points.device) == "triton":
        return triton_ops().splat_points(points, channel, weights, num_channels, sensor_size)
    return splat_points_torch(points, channel, weights, num_channels, sensor_size)


def splat_points_torch(
    points: Tensor, channel: Tensor, weights: Tensor, num_channels: int, sensor_size: tuple[int, int]
) -> Tensor:
    """The PyTorch implementation of :func:`splat_points` (same arguments, no checks, autograd).

    A fused autograd function: the backward pass recomputes the neighbours and shares from the points
    instead of keeping them, so the splat keeps no memory beyond its inputs.
    """
    return _BilinearSplat.apply(points, channel, weights, num_channels, sensor_size)


def _chunk_slices(batch: int, num_points: int, size: int) -> list[slice]:
    """Slices of the flattened [B * Q] points, at most ``size`` points each (or one element's ``Q``), that
    never split an element across two chunks unless it alone has more than ``size`` points."""
    if num_points <= size:
        step = (size // max(num_points, 1)) * num_points  # whole elements per chunk
        return [slice(begin, begin + step) for begin in range(0, batch * num_points, max(step, 1))]
    return [
        slice(element * num_points + begin, element * num_points + min(begin + size, num_points))
        for element in range(batch)
        for begin in range(0, num_points, size)
    ]


def _chunks(
    points: Tensor, channel: Tensor, num_channels: int, sensor_size: tuple[int, int]
) -> Iterator[tuple[slice, Tensor, Tensor, Tensor]]:
    """(slice of the flattened [B * Q] points, [n] top-left neighbour in the flattened padded images of one
    weight, fractions) per chunk of points. A chunk holds whole batch elements where they fit, so every
    pixel receives its points' shares in the same order as one element at a time."""
    batch, num_points = channel.shape
    padded_height, padded_width = padded_size(sensor_size)
    flat_points = points.reshape(batch * num_points, 2)
    element = torch.arange(batch, device=channel.device).unsqueeze(1)
    image = (channel.long() + element * num_channels).reshape(-1)
    for chunk in _chunk_slices(batch, num_points, chunk_points(points.device)):
        pixel, fraction_x, fraction_y = padded_corners(flat_points[chunk], sensor_size)
        yield chunk, pixel.add_(image[chunk] * (padded_height * padded_width)), fraction_x, fraction_y


class _BilinearSplat(torch.autograd.Function):
    """Bilinear splat into zero-padded images [K, B, C, Hp, Wp]; the padding is cut off at the end.

    Neighbour j of a point is reached through the view of the flattened images that starts at the
    neighbour's offset, so one index per point serves all four neighbours.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        points: Tensor,
        channel: Tensor,
        weights: Tensor,
        num_channels: int,
        sensor_size: tuple[int, int],
    ) -> Tensor:
        height, width = sensor_size
        batch, _, num_weights = weights.shape
        padded_height, padded_width = padded_size(sensor_size)
        padded = weights.new_zeros(num_weights, batch * num_channels * padded_height * padded_width)
        offsets = corner_offsets(sensor_size)
        flat_weights = weights.reshape(-1, num_weights)
        for chunk, pixel, fraction_x, fraction_y in _chunks(points, channel, num_channels, sensor_size):
            shares = corner_shares(fraction_x, fraction_y)
            for k in range(num_weights):
                weight = flat_weights[chunk, k]
                for offset, share in zip(offsets, shares, strict=True):
                    padded[k, offset:].scatter_add_(0, pixel, share * weight)
        ctx.save_for_backward(points, channel, weights)
        ctx.num_channels, ctx.sensor_size = num_channels, sensor_size
        images = padded.view(num_weights, batch, num_channels, padded_height, padded_width)
        return images[..., PAD : PAD + height, PAD : PAD + width].permute(1, 2, 0, 3, 4).contiguous()

    @staticmethod
    def backward(ctx: Any, grad_images: Tensor) -> tuple[Tensor | None, ...]:
        points, channel, weights = ctx.saved_tensors
        height, width = ctx.sensor_size
        batch, _, num_weights = weights.shape
        padded_height, padded_width = padded_size(ctx.sensor_size)
        padded = grad_images.new_zeros(num_weights, batch, ctx.num_channels, padded_height, padded_width)
        padded[..., PAD : PAD + height, PAD : PAD + width] = grad_images.permute(2, 0, 1, 3, 4)
        padded = padded.view(num_weights, -1)
        offsets = corner_offsets(ctx.sensor_size)
        need_points, _, need_weights = ctx.needs_input_grad[:3]
        flat_weights = weights.reshape(-1, num_weights)
        grad_points = points.new_zeros(points.shape) if need_points else None
        grad_weights = weights.new_zeros(weights.shape) if need_weights else None
        flat_grad_points = None if grad_points is None else grad_points.view(-1, 2)
        flat_grad_weights = None if grad_weights is None else grad_weights.view(-1, num_weights)
        for chunk, pixel, fraction_x, fraction_y in _chunks(
            points, channel, ctx.num_channels, ctx.sensor_size
        ):
            grad_x = grad_y = None
            for k in range(num_weights):
                values = tuple(padded[k, offset:].index_select(0, pixel) for offset in offsets)
                value, d_dx, d_dy = interpolate_corners(values, fraction_x, fraction_y)
                if flat_grad_weights is not None:
                    flat_grad_weights[chunk, k] = value
                if flat_grad_points is not None:
                    weight = flat_weights[chunk, k]
                    grad_x = weight * d_dx if grad_x is None else grad_x.addcmul_(weight, d_dx)
                    grad_y = weight * d_dy if grad_y is None else grad_y.addcmul_(weight, d_dy)
            if flat_grad_points is not None and grad_x is not None and grad_y is not None:
                flat_grad_points[chunk, 0] = grad_x
                flat_grad_points[chunk, 1] = grad_y
        return grad_points, None, grad_weights, None, None


def splat_bilinear(x: Tensor, y: Tensor, weights: Tensor, sensor_size: tuple[int, int]) -> Tensor:
    """Accumulate weighted points into [B, H, W] images, each point spread over its four neighbour pixels.

    Args:
        x: [B, N] column coordinate in pixels (sub-pixel).
        y: [B, N] row coordinate in pixels (sub-pixel).
        weights: [B, N] weight of each point (0 for padding).
        sensor_size: (height, width) of the image.
    Returns:
        [B, H, W] image; the pixel (column c, row r) receives ``w * (1 - |x - c|) * (1 - |y - r|)`` from a
        point within one pixel of it. Neighbours outside the image are dropped (only inside shares count).
        Differentiable w.r.t. ``x``, ``y`` (almost everywhere) and ``weights``.
    """
    _check_coordinates(x, y, weights)
    channel = torch.zeros(x.shape, dtype=torch.long, device=x.device)
    points = torch.stack((x, y), dim=-1)
    return splat_points_torch(points, channel, weights.unsqueeze(-1), 1, sensor_size)[:, 0, 0]


def splat_nearest(x: Tensor, y: Tensor, weights: Tensor, sensor_size: tuple[int, int]) -> Tensor:
    """Accumulate weighted points into [B, H, W] images at their rounded pixel (event_flow's evaluation IWE).

    Same arguments as :func:`splat_bilinear`; points rounding outside the image are dropped.
    Differentiable w.r.t. ``weights`` only.
    """
    _check_coordinates(x, y, weights)
    height, width = sensor_size
    column, row = torch.round(x.detach()), torch.round(y.detach())
    inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    flat_index = torch.where(inside, row * width + column, 0).long()
    image = weights.new_zeros(weights.shape[0], height * width)
    return image.scatter_add(1, flat_index, torch.where(inside, weights, 0)).view(-1, height, width)


def _check_coordinates(x: Tensor, y: Tensor, weights: Tensor) -> None:
    if x.ndim != 2 or x.shape != y.shape or x.shape != weights.shape:
        raise ValueError(
            "splat: x, y and weights must all have shape [B, N]; "
            f"got x {tuple(x.shape)}, y {tuple(y.shape)}, weights {tuple(weights.shape)}"
        )


def _check_points(
    points: Tensor, channel: Tensor, weights: Tensor, num_channels: int, sensor_size: tuple[int, int]
) -> None:
    if points.ndim != 3 or points.shape[-1] != 2 or not points.is_floating_point():
        raise ValueError(f"splat_points: points must be a float tensor [B, Q, 2]; got {tuple(points.shape)}")
    if tuple(channel.shape) != tuple(points.shape[:2]) or channel.is_floating_point():
        raise ValueError(
            f"splat_points: channel must be an integer tensor of shape {tuple(points.shape[:2])}; "
            f"got {channel.dtype} {tuple(channel.shape)}"
        )
    if weights.ndim != 3 or weights.shape[:2] != points.shape[:2] or weights.dtype != points.dtype:
        raise ValueError(
            f"splat_points: weights must be [B, Q, K] of {tuple(points.shape[:2])} and dtype {points.dtype}; "
            f"got {weights.dtype} {tuple(weights.shape)}"
        )
    if num_channels < 1 or len(sensor_size) != 2 or min(sensor_size) < 1:
        raise ValueError(
            f"splat_points: expected num_channels >= 1 and sensor_size (height, width) of positive ints; "
            f"got {num_channels}, {sensor_size}"
        )
    if channel.numel() and (int(channel.min()) < 0 or int(channel.max()) >= num_channels):
        raise ValueError(
            f"splat_points: channel values must lie in [0, {num_channels - 1}]; "
            f"got [{int(channel.min())}, {int(channel.max())}]"
        )
