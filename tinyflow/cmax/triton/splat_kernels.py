"""Triton kernels of the bilinear multi-channel splat (:func:`tinyflow.cmax.splat.splat_points`).

Layouts (contiguous): points [B, Q, 2] (x, y), channel [B, Q] int64, weights [B, Q, K],
images [B, C, K, H, W]. One program handles BLOCK points of one batch element.
"""

from __future__ import annotations

import triton
import triton.language as tl

from tinyflow.cmax.triton.bilinear import add_to_corners, corners, interpolate, load_corners


@triton.jit
def load_block(points_ptr, channel_ptr, num_points, height, width, BLOCK: tl.constexpr):
    """This program's BLOCK points: batch, flat point index, live mask, channel and bilinear corners."""
    batch = tl.program_id(1).to(tl.int64)
    index = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = index < num_points
    point = batch * num_points + index
    x = tl.load(points_ptr + 2 * point, mask=live, other=0.0)
    y = tl.load(points_ptr + 2 * point + 1, mask=live, other=0.0)
    channel = tl.load(channel_ptr + point, mask=live, other=0)
    offset, fraction_x, fraction_y, in_left, in_right, in_top, in_bottom = corners(x, y, height, width)
    in_00, in_10 = live & in_top & in_left, live & in_top & in_right
    in_01, in_11 = live & in_bottom & in_left, live & in_bottom & in_right
    return batch, point, live, channel, offset, fraction_x, fraction_y, in_00, in_10, in_01, in_11


@triton.jit
def splat_forward_kernel(
    points_ptr,
    channel_ptr,
    weights_ptr,
    images_ptr,
    num_points,
    num_channels,
    height,
    width,
    NUM_WEIGHTS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """images[b, channel, k] += weights[b, q, k] * bilinear share, for every point q."""
    batch, point, live, channel, offset, fraction_x, fraction_y, in_00, in_10, in_01, in_11 = load_block(
        points_ptr, channel_ptr, num_points, height, width, BLOCK
    )
    for k in tl.static_range(NUM_WEIGHTS):
        weight = tl.load(weights_ptr + NUM_WEIGHTS * point + k, mask=live, other=0.0)
        image = images_ptr + ((batch * num_channels + channel) * NUM_WEIGHTS + k) * height * width
        add_to_corners(image, offset, width, in_00, in_10, in_01, in_11, fraction_x, fraction_y, weight)


@triton.jit
def splat_backward_kernel(
    points_ptr,
    channel_ptr,
    weights_ptr,
    grad_images_ptr,
    grad_points_ptr,
    grad_weights_ptr,
    num_points,
    num_channels,
    height,
    width,
    NUM_WEIGHTS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Gradients of the splat w.r.t. the points (x, y) and the weights, given d loss / d images."""
    batch, point, live, channel, offset, fraction_x, fraction_y, in_00, in_10, in_01, in_11 = load_block(
        points_ptr, channel_ptr, num_points, height, width, BLOCK
    )
    grad_x = fraction_x * 0  # zeros of the coordinates' dtype; avoids tl.zeros, which the interpreter
    grad_y = fraction_y * 0  # cannot run when Triton was imported before TRITON_INTERPRET was set
    for k in tl.static_range(NUM_WEIGHTS):
        weight = tl.load(weights_ptr + NUM_WEIGHTS * point + k, mask=live, other=0.0)
        image = grad_images_ptr + ((batch * num_channels + channel) * NUM_WEIGHTS + k) * height * width
        g_00, g_10, g_01, g_11 = load_corners(image, offset, width, in_00, in_10, in_01, in_11)
        grad_weight, grad_dx, grad_dy = interpolate(g_00, g_10, g_01, g_11, fraction_x, fraction_y)
        tl.store(grad_weights_ptr + NUM_WEIGHTS * point + k, grad_weight, mask=live)
        grad_x += weight * grad_dx
        grad_y += weight * grad_dy
    tl.store(grad_points_ptr + 2 * point, grad_x, mask=live)
    tl.store(grad_points_ptr + 2 * point + 1, grad_y, mask=live)
