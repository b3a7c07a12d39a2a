"""Splatting of sub-pixel points into images (the image-formation step of contrast maximisation).

Two interfaces:

- ``splat(x, y, weights, sensor_size) -> [B, H, W]`` (:data:`Splat`): one image per batch element;
  :func:`splat_bilinear` and :func:`splat_nearest` follow it, so the focus metrics can take either.
- :func:`splat_points`: many images at once (one channel per reference time and polarity, several weights
  per point), bilinear, with a PyTorch and a Triton implementation of identical semantics.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tinyflow.cmax.backend import Backend, resolve_backend, triton_ops
from tinyflow.cmax.bilinear import bilinear_corners

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
    """The PyTorch implementation of :func:`splat_points` (same arguments, no checks, autograd)."""
    height, width = sensor_size
    batch, _, num_weights = weights.shape
    flat_index, share = bilinear_corners(points, sensor_size)
    index = (channel.long().unsqueeze(1) * (height * width) + flat_index).flatten(1)
    images = [
        share.new_zeros(batch, num_channels * height * width).scatter_add(
            1, index, (share * weights[:, None, :, k]).flatten(1)
        )
        for k in range(num_weights)
    ]
    return torch.stack(images, dim=1).view(batch, num_weights, num_channels, height, width).transpose(1, 2)


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
