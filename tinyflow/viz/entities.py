"""Log event images, flow fields, errors, frames and depth to a Rerun recording stream."""

from __future__ import annotations

import numpy as np
import rerun as rr

from tinyflow.viz.colors import colour_wheel_legend, events_to_rgb, flow_to_rgb, scalar_to_rgb
from tinyflow.viz.images import sparse_arrows

ARROW_COLOUR = (30, 30, 30)


def log_events(stream: rr.RecordingStream, path: str, counts: np.ndarray) -> None:
    """ON/OFF image of per-polarity counts [2, H, W] (ON blue, OFF red)."""
    stream.log(path, rr.Image(events_to_rgb(counts)))


def log_flow(
    stream: rr.RecordingStream,
    path: str,
    flow: np.ndarray,
    arrow_stride: int,
    mask: np.ndarray | None = None,
    max_magnitude: float | None = None,
) -> None:
    """Colour-wheel image of ``flow`` [2, H, W] (pixels) at ``path`` and sparse arrows at ``path/arrows``.

    Args:
        arrow_stride: pixels between arrows; 0 logs no arrows.
        mask: bool [H, W]: arrows only where True (e.g. valid ground truth).
        max_magnitude: pixels shown fully saturated; None = the field's largest magnitude.
    """
    stream.log(path, rr.Image(flow_to_rgb(flow, max_magnitude)))
    if arrow_stride <= 0:
        return
    origins, vectors = sparse_arrows(flow, arrow_stride, mask)
    if len(origins):
        stream.log(f"{path}/arrows", rr.Arrows2D(origins=origins, vectors=vectors, colors=ARROW_COLOUR))
    else:
        stream.log(f"{path}/arrows", rr.Clear(recursive=False))


def log_scalar_map(
    stream: rr.RecordingStream, path: str, values: np.ndarray, mask: np.ndarray | None = None
) -> None:
    """Colour ramp of a non-negative map [H, W] (e.g. endpoint error in pixels); masked-out pixels black."""
    stream.log(path, rr.Image(scalar_to_rgb(values, mask=mask)))


def log_frame(stream: rr.RecordingStream, path: str, frame: np.ndarray) -> None:
    """Grey-level intensity frame uint8 [H, W]."""
    stream.log(path, rr.Image(frame, color_model="L"))


def log_depth(stream: rr.RecordingStream, path: str, depth_m: np.ndarray) -> None:
    """Depth map [H, W] in metres; NaN (invalid) is shown as empty."""
    stream.log(path, rr.DepthImage(np.nan_to_num(depth_m, nan=0.0).astype(np.float32), meter=1.0))


def log_colour_wheel(stream: rr.RecordingStream, path: str = "legend/flow_colour_wheel") -> None:
    """The flow colour key as a static image."""
    stream.log(path, rr.Image(colour_wheel_legend()), static=True)
