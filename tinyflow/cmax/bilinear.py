"""The four-neighbour bilinear kernel shared by flow sampling (gather) and splatting (scatter).

A point at sub-pixel (x, y) = (column, row) touches the pixels (floor(x) + i, floor(y) + j), i, j in {0, 1},
with the shares ``(1 - |x - column|) * (1 - |y - row|)``. Splatting drops neighbours outside the image
(zero padding); sampling first clamps the point into the image (border padding), so a point outside reads
the flow of the nearest border pixel. The floor is taken on detached coordinates, so autograd
differentiates the shares only: the derivative at integer coordinates is the one-sided one from the right.
"""

from __future__ import annotations

import torch
from torch import Tensor


def bilinear_corners(points: Tensor, sensor_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """The four neighbour pixels of each point and their shares.

    Args:
        points: [B, n, 2] (x, y) sub-pixel positions.
        sensor_size: (height, width) of the image.
    Returns:
        ``flat_index`` [B, 4, n] long (``row * width + column``, 0 for a neighbour outside the image) and
        ``share`` [B, 4, n] (0 for a neighbour outside the image), neighbours ordered (left, top),
        (right, top), (left, bottom), (right, bottom).
    """
    height, width = sensor_size
    x, y = points.unbind(-1)
    left, top = torch.floor(x.detach()), torch.floor(y.detach())
    right_share, bottom_share = x - left, y - top
    left_share, top_share = 1 - right_share, 1 - bottom_share
    share = torch.stack(
        (
            left_share * top_share,
            right_share * top_share,
            left_share * bottom_share,
            right_share * bottom_share,
        ),
        dim=1,
    )
    in_left, in_right = (left >= 0) & (left <= width - 1), (left >= -1) & (left <= width - 2)
    in_top, in_bottom = (top >= 0) & (top <= height - 1), (top >= -1) & (top <= height - 2)
    inside = torch.stack(
        (in_top & in_left, in_top & in_right, in_bottom & in_left, in_bottom & in_right), dim=1
    )
    offsets = points.new_tensor([0, 1, width, width + 1]).view(1, 4, 1)
    flat_index = torch.where(inside, (top * width + left).unsqueeze(1) + offsets, 0).long()
    return flat_index, torch.where(inside, share, 0)


def sample_bilinear(flow: Tensor, points: Tensor) -> Tensor:
    """Flow read at sub-pixel points by bilinear interpolation; points outside read the nearest border.

    Args:
        flow: [B, 2, H, W] (x, y) flow map.
        points: [B, n, 2] (x, y) positions in pixels.
    Returns:
        [B, n, 2] (x, y) flow at the points; differentiable w.r.t. ``flow`` and ``points`` (the derivative
        w.r.t. a coordinate outside [0, size - 1] is 0).
    """
    batch, channels, height, width = flow.shape
    x, y = points.unbind(-1)
    clamped = torch.stack((x.clamp(0, width - 1), y.clamp(0, height - 1)), dim=-1)
    flat_index, share = bilinear_corners(clamped, (height, width))
    index = flat_index.flatten(1).unsqueeze(1).expand(batch, channels, -1)
    values = flow.flatten(2).gather(2, index).view(batch, channels, *share.shape[1:])
    return (values * share.unsqueeze(1)).sum(dim=2).transpose(1, 2)


# Zero padding (pixels, every side) of the images that the fused splat and warp functions index: a point
# clamped into [-PAD, size] has all four neighbours inside the padded image, and neighbours in the padding
# carry the zero that dropping them would give.
PAD = 2


# Points per chunk in the fused functions: intermediates of about 100 bytes a point. On the CPU, chunks
# of this size stay in the cache and reuse freed memory (larger fresh tensors cost page faults), and
# stay at PyTorch's grain size, below which an operation runs on one thread (on a loaded machine, the
# threads' synchronisation costs more than the work); a GPU gets larger chunks, so that kernel launches
# do not dominate.
CHUNK_POINTS = {"cpu": 2**15}
CHUNK_POINTS_ELSEWHERE = 2**22


def chunk_points(device: torch.device) -> int:
    """How many points the fused splat and warp functions process at a time on ``device``."""
    return CHUNK_POINTS.get(device.type, CHUNK_POINTS_ELSEWHERE)


def padded_size(sensor_size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the zero-padded image of a ``sensor_size`` image."""
    return sensor_size[0] + 2 * PAD, sensor_size[1] + 2 * PAD


def padded_corners(points: Tensor, sensor_size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """The top-left neighbour of each point in the flattened zero-padded image, without autograd.

    Args:
        points: [n, 2] (x, y) sub-pixel positions (not differentiated).
        sensor_size: (height, width) of the unpadded image.
    Returns:
        ``pixel`` [n] long, the top-left neighbour's index into the flattened [H + 2 PAD, W + 2 PAD]
        image (the others are at :func:`corner_offsets` from it); ``fraction_x``, ``fraction_y`` [n]
        (``x - floor(x)``, likewise y). Coordinates are clamped into [-PAD, size] first (NaN to -PAD):
        beyond, every neighbour is outside the image, so a point there lands in the padding only (no
        value, zero derivatives), as if its neighbours were dropped.
    """
    height, width = sensor_size
    x, y = points.unbind(-1)
    lowest = x.new_tensor(-PAD)
    x, y = (
        torch.fmax(x, lowest).clamp_(max=width),
        torch.fmax(y, lowest).clamp_(max=height),
    )  # fmax: NaN -> -PAD
    left, top = torch.floor(x), torch.floor(y)
    pixel = top.add(PAD).mul_(width + 2 * PAD).add_(left).add_(PAD).long()
    return pixel, x.sub_(left), y.sub_(top)


def corner_offsets(sensor_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Offsets of the four neighbours from the top-left one in the flattened padded image."""
    padded_width = sensor_size[1] + 2 * PAD
    return 0, 1, padded_width, padded_width + 1


def corner_shares(fraction_x: Tensor, fraction_y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The bilinear shares [n] of the four neighbours (order of :func:`bilinear_corners`)."""
    right, bottom = fraction_x, fraction_y
    left, top = 1 - right, 1 - bottom
    return left * top, right * top, left * bottom, right * bottom


def interpolate_corners(
    values: tuple[Tensor, ...], fraction_x: Tensor, fraction_y: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Bilinear value and its derivatives w.r.t. x and y from the values [n] at the four neighbours."""
    v00, v10, v01, v11 = values
    top, bottom = v10 - v00, v11 - v01
    left, right = v01 - v00, v11 - v10
    curvature = bottom - top
    d_dx = top + fraction_y * curvature
    d_dy = left + fraction_x * (right - left)
    value = v00 + fraction_x * top + fraction_y * left + fraction_x * fraction_y * curvature
    return value, d_dx, d_dy
