"""Sharpness of the image of warped events under a given flow: the check that flow and events agree.

Used to check ground truth against its events (synthetic GT, real GT, augmentations keep the two
consistent). Built on the warp and splatting of this package, evaluated in float64 on the CPU; the
differentiable CMax losses are in :mod:`tinyflow.cmax.losses`.
"""

from __future__ import annotations

import numpy as np
import torch

from tinyflow.cmax.splat import splat_bilinear, splat_nearest
from tinyflow.cmax.warp import sample_flow_at_events, warp_linear
from tinyflow.events.core import Events


def warp_to_reference(
    events: Events, flow_xy: np.ndarray, t_start_us: int, t_end_us: int, t_ref_us: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each event along the constant flow at its pixel to ``t_ref_us`` (linear warp).

    Args:
        flow_xy: float [2, H, W], (x, y) displacement in pixels over ``[t_start_us, t_end_us]``,
            read at each event's integer pixel.
    Returns:
        Warped (x, y) positions, float64 [1, N] each.
    """
    span = max(int(t_end_us) - int(t_start_us), 1)
    x = torch.from_numpy(events.x.astype(np.float64))[None]
    y = torch.from_numpy(events.y.astype(np.float64))[None]
    # Times counted from the reference, in flow intervals: the warp step is exactly (t_ref - t) / span.
    t_from_ref = torch.from_numpy((events.t_us.astype(np.float64) - t_ref_us) / span)[None]
    flow = torch.from_numpy(np.ascontiguousarray(flow_xy, np.float64))[None]
    return warp_linear(x, y, t_from_ref, sample_flow_at_events(flow, x, y), 0.0)


def warped_event_image(
    events: Events,
    flow_xy: np.ndarray,
    t_start_us: int,
    t_end_us: int,
    sensor_size: tuple[int, int],
    t_ref_us: int | None = None,
    bilinear: bool = False,
) -> np.ndarray:
    """Image of warped events (event counts, both polarities) at ``t_ref_us`` (default: interval start).

    Events land on their nearest pixel (``bilinear=False``, so that warped and unwarped images are
    accumulated alike) or are splatted bilinearly; float64 [H, W].
    """
    ref = t_start_us if t_ref_us is None else t_ref_us
    x, y = warp_to_reference(events, flow_xy, t_start_us, t_end_us, ref)
    splat = splat_bilinear if bilinear else splat_nearest
    return splat(x, y, torch.ones_like(x), tuple(sensor_size))[0].numpy()


def sharpness_gain(
    events: Events,
    flow_xy: np.ndarray,
    t_start_us: int,
    t_end_us: int,
    sensor_size: tuple[int, int],
    bilinear: bool = False,
) -> float:
    """Variance of the image of events warped by ``flow_xy`` divided by that with zero flow (> 1 = sharper).

    By default both images use nearest-pixel accumulation, so the ratio is not biased towards zero
    flow (bilinear splatting blurs sub-pixel positions but not the integer positions of unwarped
    events); ``bilinear=True`` splats both bilinearly (exactly mirror-symmetric, for invariance checks).
    """
    warped = warped_event_image(events, flow_xy, t_start_us, t_end_us, sensor_size, bilinear=bilinear)
    still = warped_event_image(
        events, np.zeros_like(flow_xy), t_start_us, t_end_us, sensor_size, bilinear=bilinear
    )
    return float(warped.var() / max(still.var(), 1e-12))
