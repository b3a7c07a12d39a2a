"""Flow-aware transforms of a window: flips, polarity flip, time reversal, crop, down-sampling.

Every transform changes the events and the ground-truth flow together, so that warping the
transformed events by the transformed flow is exactly as sharp as before. Pure functions on a
frozen :class:`WindowSample`; :class:`FlowAugmentation` draws a random combination.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tinyflow.events.core import Events


@dataclass(frozen=True)
class WindowSample:
    """A window of events with its optional ground truth.

    Attributes:
        events: the window's events.
        sensor_size: (height, width) of the pixel grid the events and maps live on.
        t_start_us, t_end_us: time span of the window (µs).
        flow: float32 [2, H, W] or None, (x, y) displacement in pixels over ``[t_start_us, t_end_us]``.
        valid: bool [H, W] or None, where ``flow`` is valid.
    """

    events: Events
    sensor_size: tuple[int, int]
    t_start_us: int
    t_end_us: int
    flow: np.ndarray | None = None
    valid: np.ndarray | None = None


def flip_horizontal(sample: WindowSample) -> WindowSample:
    """Mirror left-right: x -> W-1-x; the flow map is mirrored and its x component negated."""
    width = sample.sensor_size[1]
    ev = sample.events
    events = Events((width - 1 - ev.x.astype(np.int64)).astype(ev.x.dtype), ev.y, ev.t_us, ev.p)
    flow = None
    if sample.flow is not None:
        flow = sample.flow[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)[:, None, None]
    valid = None if sample.valid is None else sample.valid[:, ::-1]
    return replace(sample, events=events, flow=flow, valid=valid)


def flip_vertical(sample: WindowSample) -> WindowSample:
    """Mirror top-bottom: y -> H-1-y; the flow map is mirrored and its y component negated."""
    height = sample.sensor_size[0]
    ev = sample.events
    events = Events(ev.x, (height - 1 - ev.y.astype(np.int64)).astype(ev.y.dtype), ev.t_us, ev.p)
    flow = None
    if sample.flow is not None:
        flow = sample.flow[:, ::-1, :] * np.array([1.0, -1.0], np.float32)[:, None, None]
    valid = None if sample.valid is None else sample.valid[::-1, :]
    return replace(sample, events=events, flow=flow, valid=valid)


def flip_polarity(sample: WindowSample) -> WindowSample:
    """Swap ON and OFF events (a contrast inversion); the flow is unchanged."""
    ev = sample.events
    return replace(sample, events=Events(ev.x, ev.y, ev.t_us, (1 - ev.p).astype(ev.p.dtype)))


def reverse_time(sample: WindowSample) -> WindowSample:
    """Play the window backwards: t -> t_start + t_end - t (order reversed), polarity swapped, flow negated.

    Warping the reversed events to the window start equals warping the original events to the
    window end, so the sharpness of the images of warped events is preserved.
    """
    ev = sample.events
    t_us = (sample.t_start_us + sample.t_end_us - ev.t_us)[::-1]
    events = Events(ev.x[::-1], ev.y[::-1], t_us, (1 - ev.p[::-1]).astype(ev.p.dtype))
    flow = None if sample.flow is None else -sample.flow
    return replace(sample, events=events, flow=flow)


def crop(sample: WindowSample, top: int, left: int, height: int, width: int) -> WindowSample:
    """Keep the pixels in rows ``[top, top+height)`` and columns ``[left, left+width)``; coordinates shift."""
    full_h, full_w = sample.sensor_size
    if top < 0 or left < 0 or top + height > full_h or left + width > full_w:
        raise ValueError(
            f"crop (top={top}, left={left}, height={height}, width={width}) does not fit in sensor_size "
            f"(height, width)={sample.sensor_size}"
        )
    ev = sample.events
    keep = (ev.x >= left) & (ev.x < left + width) & (ev.y >= top) & (ev.y < top + height)
    kept = ev[keep]
    events = Events(
        (kept.x.astype(np.int64) - left).astype(ev.x.dtype),
        (kept.y.astype(np.int64) - top).astype(ev.y.dtype),
        kept.t_us,
        kept.p,
    )
    rows, cols = slice(top, top + height), slice(left, left + width)
    flow = None if sample.flow is None else sample.flow[:, rows, cols]
    valid = None if sample.valid is None else sample.valid[rows, cols]
    return replace(sample, events=events, sensor_size=(height, width), flow=flow, valid=valid)


def downsample(sample: WindowSample, factor: int) -> WindowSample:
    """Spatial down-sampling by an integer ``factor``: pixel (x, y) -> (x // factor, y // factor).

    The flow map is averaged over each factor x factor block and divided by ``factor`` (a
    displacement in the coarser pixels); a block is valid only where all its pixels are valid.
    The sensor size must be divisible by ``factor``.
    """
    height, width = sample.sensor_size
    if factor < 1 or height % factor or width % factor:
        raise ValueError(
            f"downsample factor {factor} must be >= 1 and divide sensor_size {sample.sensor_size}"
        )
    ev = sample.events
    events = Events((ev.x // factor).astype(ev.x.dtype), (ev.y // factor).astype(ev.y.dtype), ev.t_us, ev.p)
    small = (height // factor, width // factor)
    flow = valid = None
    if sample.flow is not None:
        blocks = sample.flow.reshape(2, small[0], factor, small[1], factor)
        flow = (blocks.mean(axis=(2, 4)) / factor).astype(np.float32)
    if sample.valid is not None:
        valid = sample.valid.reshape(small[0], factor, small[1], factor).all(axis=(1, 3))
    return replace(sample, events=events, sensor_size=small, flow=flow, valid=valid)


_TRANSFORMS = {
    "flip_x": flip_horizontal,
    "flip_y": flip_vertical,
    "polarity": flip_polarity,
    "time_reversal": reverse_time,
}


@dataclass(frozen=True)
class FlowAugmentation:
    """Random flow-aware augmentation; each named transform is applied with its probability.

    Draw once per recording episode (:meth:`draw`) and apply the same draw to every window of
    the episode, so recurrent state sees one consistent world. Time reversal reverses each
    window on its own; keep it at 0 for recurrent training on sequences.
    """

    p_flip_x: float = 0.5
    p_flip_y: float = 0.5
    p_polarity: float = 0.0
    p_time_reversal: float = 0.0

    def draw(self, rng: np.random.Generator) -> tuple[str, ...]:
        """Names of the transforms to apply, in a fixed order."""
        chances = {
            "flip_x": self.p_flip_x,
            "flip_y": self.p_flip_y,
            "polarity": self.p_polarity,
            "time_reversal": self.p_time_reversal,
        }
        return tuple(name for name, chance in chances.items() if rng.random() < chance)


def apply_transforms(sample: WindowSample, names: tuple[str, ...]) -> WindowSample:
    """Apply named transforms (as drawn by :meth:`FlowAugmentation.draw`) in order."""
    for name in names:
        if name not in _TRANSFORMS:
            raise ValueError(f"unknown transform '{name}'; expected one of {sorted(_TRANSFORMS)}")
        sample = _TRANSFORMS[name](sample)
    return sample


def hot_pixel_mask(
    pixel_counts: np.ndarray, duration_us: int, max_rate_hz: float | None = None, num_std: float | None = 5.0
) -> np.ndarray:
    """Pixels whose event rate is abnormally high: bool [H, W].

    Args:
        pixel_counts: events per pixel over ``duration_us`` (e.g. both channels of
            :func:`~tinyflow.events.encodings.event_counts` summed).
        max_rate_hz: absolute limit on a pixel's rate (events/s); ``None`` to skip.
        num_std: relative limit: rate above mean + num_std * std over active pixels; ``None`` to skip.
    """
    rate_hz = pixel_counts.astype(np.float64) / max(duration_us, 1) * 1e6
    hot = np.zeros(rate_hz.shape, bool)
    if max_rate_hz is not None:
        hot |= rate_hz > max_rate_hz
    active = rate_hz[rate_hz > 0]
    if num_std is not None and active.size > 1:
        hot |= rate_hz > active.mean() + num_std * active.std()
    return hot


def remove_pixels(events: Events, pixel_mask: np.ndarray) -> Events:
    """Drop the events at pixels where ``pixel_mask`` [H, W] is True."""
    return events[~pixel_mask[events.y.astype(np.int64), events.x.astype(np.int64)]]
