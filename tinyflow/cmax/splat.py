"""Splatting of sub-pixel points into images (the image-formation step of contrast maximisation).

Every splat function shares one signature, ``splat(x, y, weights, sensor_size) -> [B, H, W]``, so the
focus objectives can take any of them (PyTorch reference here, faster kernels elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Splat = Callable[[Tensor, Tensor, Tensor, tuple[int, int]], Tensor]


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
    _check_points(x, y, weights)
    x_left = torch.floor(x.detach())
    y_top = torch.floor(y.detach())
    frac_x = x - x_left
    frac_y = y - y_top
    columns = torch.stack((x_left, x_left + 1, x_left, x_left + 1), dim=-1)
    rows = torch.stack((y_top, y_top, y_top + 1, y_top + 1), dim=-1)
    shares = torch.stack(
        (
            (1 - frac_x) * (1 - frac_y),
            frac_x * (1 - frac_y),
            (1 - frac_x) * frac_y,
            frac_x * frac_y,
        ),
        dim=-1,
    )
    return _scatter_to_image(columns, rows, weights.unsqueeze(-1) * shares, sensor_size)


def splat_nearest(x: Tensor, y: Tensor, weights: Tensor, sensor_size: tuple[int, int]) -> Tensor:
    """Accumulate weighted points into [B, H, W] images at their rounded pixel (event_flow's evaluation IWE).

    Same arguments as :func:`splat_bilinear`; points rounding outside the image are dropped.
    Differentiable w.r.t. ``weights`` only.
    """
    _check_points(x, y, weights)
    return _scatter_to_image(torch.round(x.detach()), torch.round(y.detach()), weights, sensor_size)


def _check_points(x: Tensor, y: Tensor, weights: Tensor) -> None:
    if x.ndim != 2 or x.shape != y.shape or x.shape != weights.shape:
        raise ValueError(
            "splat: x, y and weights must all have shape [B, N]; "
            f"got x {tuple(x.shape)}, y {tuple(y.shape)}, weights {tuple(weights.shape)}"
        )


def _scatter_to_image(columns: Tensor, rows: Tensor, values: Tensor, sensor_size: tuple[int, int]) -> Tensor:
    """Sum ``values`` at integer pixels (columns, rows) of equal shape [B, ...] into [B, H, W] images."""
    height, width = sensor_size
    inside = (columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)
    flat_index = torch.where(inside, rows * width + columns, 0).long().flatten(1)
    inside_values = torch.where(inside, values, 0).flatten(1)
    image = inside_values.new_zeros(values.shape[0], height * width)
    return image.scatter_add(1, flat_index, inside_values).view(-1, height, width)
