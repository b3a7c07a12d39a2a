"""Triton device functions of the four-neighbour bilinear kernel (see :mod:`tinyflow.cmax.bilinear`)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def corners(x, y, height, width):
    """Top-left neighbour (flat offset ``row * width + column``), fractions and per-neighbour inside flags.

    Coordinates are clamped to [-2, size + 1] first: beyond that every neighbour is outside, so the
    result is unchanged and the integer conversion cannot overflow.
    """
    x = tl.minimum(tl.maximum(x, -2.0), width + 1.0)
    y = tl.minimum(tl.maximum(y, -2.0), height + 1.0)
    left = tl.floor(x)
    top = tl.floor(y)
    column = left.to(tl.int32)
    row = top.to(tl.int32)
    in_left = (column >= 0) & (column < width)
    in_right = (column + 1 >= 0) & (column + 1 < width)
    in_top = (row >= 0) & (row < height)
    in_bottom = (row + 1 >= 0) & (row + 1 < height)
    return row * width + column, x - left, y - top, in_left, in_right, in_top, in_bottom


@triton.jit
def load_corners(image, offset, width, in_00, in_10, in_01, in_11):
    """The values of one image at the four neighbours (0 outside): (left, top), (right, top), ..."""
    value_00 = tl.load(image + offset, mask=in_00, other=0.0)
    value_10 = tl.load(image + offset + 1, mask=in_10, other=0.0)
    value_01 = tl.load(image + offset + width, mask=in_01, other=0.0)
    value_11 = tl.load(image + offset + width + 1, mask=in_11, other=0.0)
    return value_00, value_10, value_01, value_11


@triton.jit
def add_to_corners(image, offset, width, in_00, in_10, in_01, in_11, fraction_x, fraction_y, value):
    """Atomically add ``value`` times the bilinear share to each inside neighbour of one image."""
    tl.atomic_add(image + offset, value * (1 - fraction_x) * (1 - fraction_y), mask=in_00)
    tl.atomic_add(image + offset + 1, value * fraction_x * (1 - fraction_y), mask=in_10)
    tl.atomic_add(image + offset + width, value * (1 - fraction_x) * fraction_y, mask=in_01)
    tl.atomic_add(image + offset + width + 1, value * fraction_x * fraction_y, mask=in_11)


@triton.jit
def interpolate(value_00, value_10, value_01, value_11, fraction_x, fraction_y):
    """Bilinear interpolation and its derivatives w.r.t. x and y: (value, d/dx, d/dy)."""
    value = (1 - fraction_y) * ((1 - fraction_x) * value_00 + fraction_x * value_10) + fraction_y * (
        (1 - fraction_x) * value_01 + fraction_x * value_11
    )
    d_dx = (1 - fraction_y) * (value_10 - value_00) + fraction_y * (value_11 - value_01)
    d_dy = (1 - fraction_x) * (value_01 - value_00) + fraction_x * (value_11 - value_10)
    return value, d_dx, d_dy
