"""Triton kernels of the iterative warp (:func:`tinyflow.cmax.warp.warp_iterative_torch`) and its gradient.

Layouts (contiguous): start [B, M, 2] (x, y), t_norm [B, M], pass_index [M] int32, own_flow [B, M, 2],
flow_maps [B, P, 2, H, W], positions [B, M, P + 1, 2]. Flow is read with border padding (see
:mod:`tinyflow.cmax.bilinear`). One program handles BLOCK events of one batch
element and walks them through the flow maps; the gradient kernel walks back along the same chains,
reading the positions saved by the forward kernel.
"""

from __future__ import annotations

import triton
import triton.language as tl

from tinyflow.cmax.triton.bilinear import add_to_corners, corners, interpolate, load_corners


@triton.jit
def _read_flow(flow_map, x, y, height, width, active):
    """Bilinear flow (x and y components) of one map at (x, y), with its four derivatives and neighbours.

    The point is clamped into the image first (border padding); a derivative w.r.t. a coordinate outside
    [0, size - 1] is 0, as for torch.clamp.
    """
    inside_x = (x >= 0) & (x <= width - 1)
    inside_y = (y >= 0) & (y <= height - 1)
    x = tl.minimum(tl.maximum(x, 0.0), width - 1.0)
    y = tl.minimum(tl.maximum(y, 0.0), height - 1.0)
    offset, fraction_x, fraction_y, in_left, in_right, in_top, in_bottom = corners(x, y, height, width)
    in_00, in_10 = active & in_top & in_left, active & in_top & in_right
    in_01, in_11 = active & in_bottom & in_left, active & in_bottom & in_right
    u_00, u_10, u_01, u_11 = load_corners(flow_map, offset, width, in_00, in_10, in_01, in_11)
    v_00, v_10, v_01, v_11 = load_corners(
        flow_map + height * width, offset, width, in_00, in_10, in_01, in_11
    )
    u, du_dx, du_dy = interpolate(u_00, u_10, u_01, u_11, fraction_x, fraction_y)
    v, dv_dx, dv_dy = interpolate(v_00, v_10, v_01, v_11, fraction_x, fraction_y)
    du_dx = tl.where(inside_x, du_dx, 0.0)
    dv_dx = tl.where(inside_x, dv_dx, 0.0)
    du_dy = tl.where(inside_y, du_dy, 0.0)
    dv_dy = tl.where(inside_y, dv_dy, 0.0)
    return u, v, du_dx, du_dy, dv_dx, dv_dy, offset, fraction_x, fraction_y, in_00, in_10, in_01, in_11


@triton.jit
def load_events(
    t_norm_ptr, pass_ptr, own_flow_ptr, num_events, num_passes, height, width, BLOCK: tl.constexpr
):
    """This program's BLOCK events: live mask, flat index, t_norm, own pass and flow, its flow maps' offset."""
    batch = tl.program_id(1).to(tl.int64)
    column = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = column < num_events
    event = batch * num_events + column
    t_norm = tl.load(t_norm_ptr + event, mask=live, other=0.0)
    own_pass = tl.load(pass_ptr + column, mask=live, other=0)
    own_u = tl.load(own_flow_ptr + 2 * event, mask=live, other=0.0)
    own_v = tl.load(own_flow_ptr + 2 * event + 1, mask=live, other=0.0)
    map_size = 2 * height * width
    maps_offset = batch * num_passes * map_size
    return live, event, t_norm, own_pass, own_u, own_v, map_size, maps_offset


@triton.jit
def warp_forward_kernel(
    start_ptr,
    t_norm_ptr,
    pass_ptr,
    own_flow_ptr,
    flow_ptr,
    positions_ptr,
    num_events,
    num_passes,
    height,
    width,
    BLOCK: tl.constexpr,
):
    """positions[b, m, r] for every boundary r: own pass first, then the later and the earlier flow maps."""
    live, event, t_norm, own_pass, own_u, own_v, map_size, maps_offset = load_events(
        t_norm_ptr, pass_ptr, own_flow_ptr, num_events, num_passes, height, width, BLOCK
    )
    flow_maps = flow_ptr + maps_offset
    x = tl.load(start_ptr + 2 * event, mask=live, other=0.0)
    y = tl.load(start_ptr + 2 * event + 1, mask=live, other=0.0)
    positions = positions_ptr + 2 * (num_passes + 1) * event

    # forward: end of the own pass, then through the maps of the later passes
    px = x + (1 - t_norm) * own_u
    py = y + (1 - t_norm) * own_v
    tl.store(positions + 2 * (own_pass + 1), px, mask=live)
    tl.store(positions + 2 * (own_pass + 1) + 1, py, mask=live)
    for boundary in range(1, num_passes):
        active = live & (boundary > own_pass)
        flow = _read_flow(flow_maps + boundary * map_size, px, py, height, width, active)
        px = tl.where(active, px + flow[0], px)
        py = tl.where(active, py + flow[1], py)
        tl.store(positions + 2 * (boundary + 1), px, mask=active)
        tl.store(positions + 2 * (boundary + 1) + 1, py, mask=active)

    # backward: start of the own pass, then back through the maps of the earlier passes
    px = x - t_norm * own_u
    py = y - t_norm * own_v
    tl.store(positions + 2 * own_pass, px, mask=live)
    tl.store(positions + 2 * own_pass + 1, py, mask=live)
    for step in range(0, num_passes - 1):
        boundary = num_passes - 2 - step
        active = live & (boundary < own_pass)
        flow = _read_flow(flow_maps + boundary * map_size, px, py, height, width, active)
        px = tl.where(active, px - flow[0], px)
        py = tl.where(active, py - flow[1], py)
        tl.store(positions + 2 * boundary, px, mask=active)
        tl.store(positions + 2 * boundary + 1, py, mask=active)


@triton.jit
def warp_backward_kernel(
    t_norm_ptr,
    pass_ptr,
    own_flow_ptr,
    flow_ptr,
    positions_ptr,
    grad_positions_ptr,
    grad_start_ptr,
    grad_t_norm_ptr,
    grad_own_flow_ptr,
    grad_flow_ptr,
    num_events,
    num_passes,
    height,
    width,
    BLOCK: tl.constexpr,
):
    """Reverse mode through both chains: adjoints of the start, t_norm, own flow and the flow maps."""
    live, event, t_norm, own_pass, own_u, own_v, map_size, maps_offset = load_events(
        t_norm_ptr, pass_ptr, own_flow_ptr, num_events, num_passes, height, width, BLOCK
    )
    flow_maps = flow_ptr + maps_offset
    positions = positions_ptr + 2 * (num_passes + 1) * event
    grads = grad_positions_ptr + 2 * (num_passes + 1) * event
    grad_maps = grad_flow_ptr + maps_offset

    # forward chain p_(b+1) = p_b + F_b(p_b): adjoint (ax, ay) of p_(b+1), from the last boundary down
    ax = tl.load(grads + 2 * num_passes, mask=live, other=0.0)
    ay = tl.load(grads + 2 * num_passes + 1, mask=live, other=0.0)
    for step in range(0, num_passes - 1):
        boundary = num_passes - 1 - step
        active = live & (boundary > own_pass)
        px = tl.load(positions + 2 * boundary, mask=active, other=0.0)
        py = tl.load(positions + 2 * boundary + 1, mask=active, other=0.0)
        flow_map = flow_maps + boundary * map_size
        _, _, du_dx, du_dy, dv_dx, dv_dy, offset, fx, fy, in_00, in_10, in_01, in_11 = _read_flow(
            flow_map, px, py, height, width, active
        )
        grad_map = grad_maps + boundary * map_size
        add_to_corners(grad_map, offset, width, in_00, in_10, in_01, in_11, fx, fy, ax)
        add_to_corners(grad_map + height * width, offset, width, in_00, in_10, in_01, in_11, fx, fy, ay)
        gx = tl.load(grads + 2 * boundary, mask=active, other=0.0)
        gy = tl.load(grads + 2 * boundary + 1, mask=active, other=0.0)
        ax_next = gx + ax + ax * du_dx + ay * dv_dx
        ay_next = gy + ay + ax * du_dy + ay * dv_dy
        ax = tl.where(active, ax_next, ax)
        ay = tl.where(active, ay_next, ay)
    end_ax = ax
    end_ay = ay

    # backward chain p_b = p_(b+1) - F_b(p_(b+1)): adjoint (ax, ay) of p_b, from boundary 0 up
    ax = tl.load(grads, mask=live, other=0.0)
    ay = tl.load(grads + 1, mask=live, other=0.0)
    for boundary in range(0, num_passes - 1):
        active = live & (boundary < own_pass)
        px = tl.load(positions + 2 * (boundary + 1), mask=active, other=0.0)
        py = tl.load(positions + 2 * (boundary + 1) + 1, mask=active, other=0.0)
        flow_map = flow_maps + boundary * map_size
        _, _, du_dx, du_dy, dv_dx, dv_dy, offset, fx, fy, in_00, in_10, in_01, in_11 = _read_flow(
            flow_map, px, py, height, width, active
        )
        grad_map = grad_maps + boundary * map_size
        add_to_corners(grad_map, offset, width, in_00, in_10, in_01, in_11, fx, fy, -ax)
        add_to_corners(grad_map + height * width, offset, width, in_00, in_10, in_01, in_11, fx, fy, -ay)
        gx = tl.load(grads + 2 * (boundary + 1), mask=active, other=0.0)
        gy = tl.load(grads + 2 * (boundary + 1) + 1, mask=active, other=0.0)
        ax_next = gx + ax - (ax * du_dx + ay * dv_dx)
        ay_next = gy + ay - (ax * du_dy + ay * dv_dy)
        ax = tl.where(active, ax_next, ax)
        ay = tl.where(active, ay_next, ay)

    # p_(k+1) = x + (1 - t) u and p_k = x - t u
    tl.store(grad_start_ptr + 2 * event, end_ax + ax, mask=live)
    tl.store(grad_start_ptr + 2 * event + 1, end_ay + ay, mask=live)
    tl.store(grad_own_flow_ptr + 2 * event, (1 - t_norm) * end_ax - t_norm * ax, mask=live)
    tl.store(grad_own_flow_ptr + 2 * event + 1, (1 - t_norm) * end_ay - t_norm * ay, mask=live)
    tl.store(grad_t_norm_ptr + event, -(own_u * (end_ax + ax) + own_v * (end_ay + ay)), mask=live)
