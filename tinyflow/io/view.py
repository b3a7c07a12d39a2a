"""A recording seen through an evaluation protocol: a time range, a centre crop, a downscale, a valid region of
its GT, a selection of its depth maps."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.events.transforms import WindowSample, downsample
from tinyflow.io.lazy import LazyMaps
from tinyflow.io.recording import LEFT, READ_SPAN, QueryIntervals, Recording, window_bounds


def centre_crop(sensor_size: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the centred ``size`` crop (EV-FlowNet: offsets rounded down)."""
    (full_h, full_w), (height, width) = sensor_size, size
    if not (0 < height <= full_h and 0 < width <= full_w):
        raise ValueError(
            f"crop (height, width)={tuple(size)} does not fit in sensor_size {tuple(sensor_size)}"
        )
    return (full_h - height) // 2, (full_w - width) // 2, height, width


class RecordingView(Recording):
    """A time slice, centre crop and downscale of a recording; ground truth is sliced, cropped, downscaled
    and masked to match.

    Times are re-based to the start of the slice (``t0_us`` moves with it); event indices count from
    the first event of the slice. Cropped-out events are dropped from each read, so a window of N
    indices holds at most N events.

    Args:
        base: the recording.
        time_range_us: ``(begin, end)`` µs since ``base.t0_us``, rounded to whole milliseconds
            (down, up); GT maps must lie inside it. None: the whole recording.
        crop: ``(height, width)`` of a centre crop, or None.
        valid_rows: ``(first, stop)`` rows (after the crop) where GT is valid, e.g. to exclude a car hood.
        downscale: integer factor applied after the crop: pixel (x, y) -> (x // f, y // f); the rows and
            columns beyond a multiple of f are dropped; GT flow is averaged over each f x f block and
            divided by f (pixels of the coarser grid, :func:`~tinyflow.events.transforms.downsample`),
            depth and frames keep every f-th pixel.
        depth_maps: indices of the base's depth maps that the view holds (its depth clock, e.g. the maps of
            a protocol's frame range), in order; None: those inside the time range.
        depth_labels: the subset of ``depth_maps`` whose maps are ground truth (e.g. a held-out validation
            set); the others read as all NaN (no valid pixel: no target). None: all of them.
    """

    def __init__(
        self,
        base: Recording,
        time_range_us: tuple[int, int] | None = None,
        crop: tuple[int, int] | None = None,
        valid_rows: tuple[int, int] | None = None,
        downscale: int = 1,
        depth_maps: np.ndarray | None = None,
        depth_labels: np.ndarray | None = None,
    ) -> None:
        if int(downscale) != downscale or downscale < 1:
            raise ValueError(f"{base.path}: downscale must be an integer factor >= 1, got {downscale!r}")
        self.base, self.path = base, base.path
        end_of_base = base.t_end_us + 1
        begin, end = (0, end_of_base) if time_range_us is None else time_range_us
        begin, end = int(begin) // 1000 * 1000, -(-int(end) // 1000) * 1000
        if not 0 <= begin < min(end, end_of_base):
            raise EventDataError(
                f"{base.path}: time range [{begin}, {end}) µs since t0 does not overlap the recording "
                f"[0, {end_of_base}) µs"
            )
        self._begin_us, self._end_us = begin, end
        self._start, self._stop = (int(i) for i in base.index_at_time(np.array([begin, end])))
        self.t0_us = base.t0_us + begin
        self._box = (0, 0, *base.sensor_size) if crop is None else centre_crop(base.sensor_size, crop)
        self._factor = int(downscale)
        height, width = self._box[2:]
        if height < self._factor or width < self._factor:
            raise ValueError(f"{base.path}: downscale {self._factor} leaves no pixel of {height}x{width}")
        self.sensor_size = (height // self._factor, width // self._factor)
        self._crop, self._valid_rows = crop, valid_rows
        self._maps = {name: self._maps_inside(name) for name in base.flow_names}
        self._depth_maps, self._depth_labels = self._select_depth(depth_maps, depth_labels)

    def _select_depth(
        self, maps: np.ndarray | None, labels: np.ndarray | None
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Base indices of the view's depth maps and a bool mask of those that are labels (None: no depth)."""
        t_us = self.base.depth_t_us()
        if t_us is None:
            if maps is not None or labels is not None:
                raise EventDataError(
                    f"{self.base.path}: has no depth maps to select (depth_maps, depth_labels)"
                )
            return None, None
        chosen = self._time_slice(t_us) if maps is None else np.asarray(maps, np.int64)
        if chosen.size and (chosen.min() < 0 or chosen.max() >= len(t_us)):
            raise EventDataError(
                f"{self.base.path}: depth_maps {int(chosen.min())}..{int(chosen.max())} are outside its "
                f"{len(t_us)} depth maps"
            )
        outside = chosen[(t_us[chosen] < self._begin_us) | (t_us[chosen] >= self._end_us)]
        if outside.size:
            raise EventDataError(
                f"{self.base.path}: depth map {int(outside[0])} at {int(t_us[outside[0]])} µs lies outside the "
                f"view's time range [{self._begin_us}, {self._end_us}) µs"
            )
        labelled = np.ones(len(chosen), bool) if labels is None else np.isin(chosen, labels)
        if labels is not None and not np.isin(labels, chosen).all():
            missing = np.setdiff1d(labels, chosen)
            raise EventDataError(
                f"{self.base.path}: depth_labels {missing[:5].tolist()} are not among the view's depth maps"
            )
        return chosen, labelled

    @property
    def name(self) -> str:
        return self.base.name

    def _maps_inside(self, name: str) -> np.ndarray:
        t_start, t_end = self.base.flow_intervals(name)
        return np.flatnonzero((t_start >= self._begin_us) & (t_end <= self._end_us))

    @property
    def num_events(self) -> int:
        return self._stop - self._start

    def _crop_events(self, events: Events) -> Events:
        top, left, _, _ = self._box
        if self.sensor_size == self.base.sensor_size:
            return events
        height, width = self.sensor_size
        x, y = (
            (events.x.astype(np.int64) - left) // self._factor,
            (events.y.astype(np.int64) - top) // self._factor,
        )
        keep = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        return Events(x[keep].astype(np.uint16), y[keep].astype(np.uint16), events.t_us[keep], events.p[keep])

    def _seen(self, events: Events) -> Events:
        """Base events as the view sees them: times since the slice's start, cropped and downscaled."""
        return self._crop_events(Events(events.x, events.y, events.t_us - self._begin_us, events.p))

    def events(self, start: int, stop: int) -> Events:
        if not 0 <= start <= stop <= self.num_events:
            raise IndexError(f"{self.path}: event range [{start}, {stop}) is outside [0, {self.num_events})")
        return self._seen(self.base.events(self._start + start, self._start + stop))

    def window_events(self, bounds: np.ndarray, span: int = READ_SPAN) -> Iterator[Events]:
        bounds = window_bounds(bounds, self.num_events, self.path)
        for events in self.base.window_events(bounds + self._start, span):
            yield self._seen(events)

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return self.base._read_t_us(self._start + start, self._start + stop) - self._begin_us

    def ms_to_idx(self) -> np.ndarray:
        table = self.base.ms_to_idx().astype(np.int64)
        first_ms = self._begin_us // 1000
        num_ms = (self.t_end_us // 1000 + 2) if self.num_events else 1
        ticks = np.arange(first_ms, first_ms + num_ms)
        indices = np.where(ticks < len(table), table[np.minimum(ticks, len(table) - 1)], self.base.num_events)
        return (np.clip(indices, self._start, self._stop) - self._start).astype(np.uint64)

    @property
    def flow_names(self) -> list[str]:
        return self.base.flow_names

    def _base_index(self, name: str) -> np.ndarray:
        if name not in self._maps:
            raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")
        return self._maps[name]

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        inside = self._base_index(name)
        t_start, t_end = self.base.flow_intervals(name)
        return t_start[inside] - self._begin_us, t_end[inside] - self._begin_us

    def _crop_map(self, maps: np.ndarray, step: int | None = None) -> np.ndarray:
        """Maps cropped to the box's multiple of the factor, keeping every ``step``-th pixel (default: the factor)."""
        top, left = self._box[:2]
        height, width = (n * self._factor for n in self.sensor_size)
        step = self._factor if step is None else step
        return maps[..., top : top + height : step, left : left + width : step]

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        inside = self._base_index(name)
        if not 0 <= k < len(inside):
            raise IndexError(
                f"{self.path}: flow '{name}' has {len(inside)} maps in the view, asked for map {k}"
            )
        flow, valid = self.base.flow_map(name, int(inside[k]))
        flow, valid = self._crop_map(flow, 1), None if valid is None else self._crop_map(valid, 1)
        if self._factor > 1:
            sample = downsample(
                WindowSample(Events.empty(), flow.shape[-2:], 0, 0, flow, valid), self._factor
            )
            flow, valid = sample.flow, sample.valid
        if self._valid_rows is None:
            return flow, valid
        rows = np.zeros(self.sensor_size, bool)
        rows[slice(*self._valid_rows)] = True
        return flow, rows if valid is None else valid & rows

    def flow(self, name: str) -> FlowGT:
        maps = [self.flow_map(name, k) for k in range(len(self._base_index(name)))]
        height, width = self.sensor_size
        flow = np.array([m for m, _ in maps], np.float32).reshape(len(maps), 2, height, width)
        has_valid = any(v is not None for _, v in maps)
        valid = (
            np.array([np.ones((height, width), bool) if v is None else v for _, v in maps])
            if has_valid
            else None
        )
        return FlowGT(flow, *self.flow_intervals(name), valid)

    def _time_slice(self, t_us: np.ndarray) -> np.ndarray:
        return np.flatnonzero((t_us >= self._begin_us) & (t_us < self._end_us))

    def depth_t_us(self) -> np.ndarray | None:
        if self._depth_maps is None:
            return None
        return self.base.depth_t_us()[self._depth_maps] - self._begin_us

    def depth_map(self, k: int) -> np.ndarray:
        if self._depth_maps is None:
            raise KeyError(f"{self.path}: no depth ground truth")
        if not self._depth_labels[k]:
            return np.full(self.sensor_size, np.nan, np.float32)
        return self._crop_map(self.base.depth_map(int(self._depth_maps[k])))

    def depth(self) -> DepthGT | None:
        """The view's depth maps, read one at a time on access (a protocol's span holds ~1000 of them)."""
        if self._depth_maps is None:
            return None
        maps = LazyMaps(self.depth_map, len(self._depth_maps), self.sensor_size, np.float32)
        return DepthGT(maps, self.depth_t_us())

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.base.cameras

    def camera(self, name: str) -> Recording:
        """The same time range and crop of the base's camera ``name`` (events only)."""
        if name == LEFT:
            return self
        return RecordingView(
            self.base.camera(name), (self._begin_us, self._end_us), self._crop, downscale=self._factor
        )

    def frames(self) -> Frames | None:
        frames = self.base.frames()
        if frames is None:
            return None
        keep = self._time_slice(np.asarray(frames.t_us))
        return Frames(
            self._crop_map(np.asarray(frames.images)[keep]), np.asarray(frames.t_us)[keep] - self._begin_us
        )

    def query_intervals(self) -> QueryIntervals | None:
        queries = self.base.query_intervals()
        if queries is None:
            return None
        keep = (queries.t_start_us >= self._begin_us) & (queries.t_end_us <= self._end_us)
        return QueryIntervals(
            queries.t_start_us[keep] - self._begin_us,
            queries.t_end_us[keep] - self._begin_us,
            queries.ids[keep],
        )

    def close(self) -> None:
        self.base.close()
