"""A map-style dataset of windows over a set of recordings, and its time-major collation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tinyflow.data.sampler import WindowKey
from tinyflow.data.targets import EpisodeView, FlowTarget, WindowTarget
from tinyflow.events.encodings import encode, event_counts, event_list, pad_event_lists
from tinyflow.events.transforms import FlowAugmentation, WindowSample, hot_pixel_mask, remove_pixels
from tinyflow.events.windows import (
    Window,
    windows_by_count,
    windows_by_duration,
    windows_for_queries,
    windows_from_depth,
    windows_from_gt,
)
from tinyflow.io import open_recording
from tinyflow.io.recording import CAMERAS, LEFT, Recording

HOT_PIXEL_CHUNK = 1_000_000
ITEM_KEYS = (  # the dataset's own
    "input", "events", "t_start_us", "dt_us", "query", "gt_first", "recording", "end_of_recording", "active",
)  # fmt: skip
BATCH_KEYS = (*ITEM_KEYS, "event_mask")  # what collation adds


@dataclass(frozen=True)
class Windowing:
    """How a recording is cut into windows.

    Attributes:
        mode: ``count`` (``events_per_window`` events each), ``duration`` (``duration_us`` each),
            ``gt`` (one window per map of GT flow set ``flow_name``, e.g. ``dt1`` or ``dt4``), ``depth`` (one
            window per depth map, the ``duration_us`` before it: :func:`~tinyflow.events.windows.windows_from_depth`)
            or ``queries`` (windows of ``duration_us`` through the recording, one ending at each of its query
            intervals: :meth:`~tinyflow.io.recording.Recording.query_intervals`, e.g. DSEC's test timestamps;
            none for a recording without queries).
        without_gt: in ``gt`` and ``depth`` mode, the windows of a recording without that GT: ``skip``
            (none), ``count`` or ``duration``.
        model_window_us: in ``gt`` mode, the network's own window length (µs): each GT interval is split
            into the nearest whole number (at least 1) of equal windows of about that length, whose
            predictions the task composes over the interval
            (:func:`~tinyflow.events.windows.windows_from_gt`); None = one window per GT interval.
    """

    mode: str = "count"
    events_per_window: int = 1000
    duration_us: int = 10_000
    flow_name: str = "dt1"
    without_gt: str = "skip"
    model_window_us: int | None = None

    def windows(self, recording: Recording) -> list[Window]:
        """The recording's windows; in ``gt`` mode a recording without flow set ``flow_name`` gets none
        (``without_gt="skip"``) or ``count`` / ``duration`` windows (``without_gt="count"`` / ``"duration"``)."""
        if self.mode == "count":
            return windows_by_count(recording, self.events_per_window)
        if self.mode == "duration":
            return windows_by_duration(recording, self.duration_us)
        if self.mode == "queries":
            queries = recording.query_intervals()
            return (
                [] if queries is None else windows_for_queries(recording, queries.t_end_us, self.duration_us)
            )
        if self.mode in ("gt", "depth"):
            if self.mode == "gt" and self.flow_name in recording.flow_names:
                return windows_from_gt(recording, self.flow_name, self.model_window_us)
            if self.mode == "depth" and recording.depth_t_us() is not None:
                return windows_from_depth(recording, self.duration_us)
            if self.without_gt == "skip":
                return []
            if self.without_gt in ("count", "duration"):
                return replace(self, mode=self.without_gt).windows(recording)
            raise ValueError(
                f"unknown without_gt '{self.without_gt}'; expected 'skip', 'count' or 'duration'"
            )
        raise ValueError(
            f"unknown windowing mode '{self.mode}'; expected 'count', 'duration', 'gt', 'depth' or 'queries'"
        )


@dataclass(frozen=True)
class HotPixelFilter:
    """Drop pixels whose rate over the whole recording exceeds ``max_rate_hz`` or mean + ``num_std`` std."""

    max_rate_hz: float | None = None
    num_std: float | None = 5.0

    def mask(self, recording: Recording) -> np.ndarray:
        counts = np.zeros(recording.sensor_size, np.float64)
        for start in range(0, recording.num_events, HOT_PIXEL_CHUNK):
            stop = min(start + HOT_PIXEL_CHUNK, recording.num_events)
            counts += event_counts(recording.events(start, stop), recording.sensor_size).sum(0)
        return hot_pixel_mask(counts, max(recording.t_end_us, 1), self.max_rate_hz, self.num_std)


class WindowDataset(Dataset):
    """Windows of events from several recordings, indexed by :class:`WindowKey` (or a flat int).

    Each item is a dict of numpy arrays: the dataset's own ``input`` float32 [len(cameras) * C, H, W]
    (the encoding of each camera's events of the window, C channels each, concatenated along channels
    in ``cameras`` order, the left camera first), ``events`` float32 [N, 4] event list
    ``(x, y, t_norm, p_sign)`` of the left camera with t_norm over the window span, ``t_start_us`` and
    ``dt_us`` (window start since the recording's t0, and span, in µs), ``query`` (the query interval the
    window answers, or -1), ``gt_first`` (the window begins a GT interval, or stands alone: see
    :attr:`Windowing.model_window_us`), ``recording``, ``end_of_recording``, ``active``; and the entries of each of
    ``targets`` (default: :class:`~tinyflow.data.targets.FlowTarget` of the windowing's flow set:
    ``flow_gt``, ``gt_valid``, ``has_gt``).

    Recordings of different sensor sizes need ``crop_size``, or ``mixed_sizes=True`` for a loader whose
    batches hold one window (validation with one stream): ``sensor_size`` is None then.

    Windows are cut from the left camera; another camera contributes its events of the same time span
    ``[t_start_us, t_end_us)``. Augmentation and crop are drawn once per episode (one stream's visit of a
    recording), so all windows of a visit share them; every camera's events and the targets follow them
    alike. A horizontal flip of a stereo pair would make the mirrored left image a right camera's view (and
    the disparity negative), so ``flip_x`` is refused with more than one camera. Works with
    ``num_workers > 0``: recordings reopen per process.
    """

    def __init__(
        self,
        paths: Sequence[str | Path | Recording],
        windowing: Windowing,
        encoding: str = "counts",
        num_bins: int = 2,
        augmentation: FlowAugmentation | None = None,
        crop_size: tuple[int, int] | None = None,
        hot_pixels: HotPixelFilter | None = None,
        seed: int = 0,
        targets: Sequence[WindowTarget] | None = None,
        *,
        mixed_sizes: bool = False,
        cameras: Sequence[str] = (LEFT,),
    ) -> None:
        if not paths:
            raise ValueError("WindowDataset needs at least one recording path, got none")
        self.cameras = check_cameras(cameras, augmentation)
        self.targets = tuple(t.bind(windowing) for t in (targets if targets is not None else [FlowTarget()]))
        _check_target_keys(self.targets)
        self.recordings = [p if isinstance(p, Recording) else open_recording(p) for p in paths]
        self.windowing = windowing
        self.encoding = encoding
        self.num_bins = num_bins
        self.augmentation = augmentation
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.seed = seed
        self.windows = [windowing.windows(r) for r in self.recordings]
        self.camera_views = [[r.camera(name) for name in self.cameras] for r in self.recordings]
        self.camera_bounds = [
            [_index_bounds(view, windows, own=c == 0) for c, view in enumerate(views)]
            for views, windows in zip(self.camera_views, self.windows, strict=True)
        ]
        self.hot_masks = [
            [hot_pixels.mask(view) if hot_pixels else None for view in views] for views in self.camera_views
        ]
        self._flat = np.cumsum([0] + [len(w) for w in self.windows])
        sizes = {r.sensor_size for r in self.recordings}
        if self.crop_size is None and len(sizes) > 1 and not mixed_sizes:
            raise ValueError(
                f"recordings have different sensor sizes {sorted(sizes)}; set crop_size to batch them"
            )
        self.sensor_size = self.crop_size or (None if len(sizes) > 1 else self.recordings[0].sensor_size)

    @property
    def window_counts(self) -> list[int]:
        return [len(w) for w in self.windows]

    @property
    def recording_names(self) -> list[str]:
        return [r.name for r in self.recordings]

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    def __len__(self) -> int:
        return int(self._flat[-1])

    def _key(self, index: int | WindowKey) -> WindowKey:
        if isinstance(index, WindowKey):
            return index
        rec = int(np.searchsorted(self._flat, index, side="right") - 1)
        win = int(index - self._flat[rec])
        return WindowKey(rec, win, episode=0, end_of_recording=win == len(self.windows[rec]) - 1)

    def _load_events(self, rec: int, win: int, camera: int) -> WindowSample:
        """Events of window ``win`` of recording ``rec`` seen by camera ``camera`` (an index of ``cameras``)."""
        view, window = self.camera_views[rec][camera], self.windows[rec][win]
        start, stop = self.camera_bounds[rec][camera][win]
        events = view.events(int(start), int(stop))
        if self.hot_masks[rec][camera] is not None:
            events = remove_pixels(events, self.hot_masks[rec][camera])
        return WindowSample(events, view.sensor_size, window.t_start_us, window.t_end_us)

    def episode_view(self, key: WindowKey) -> EpisodeView:
        """The crop and augmentation of the key's episode, drawn from its own seed (crop first)."""
        rng = np.random.default_rng((self.seed, key.recording, key.episode))
        sensor_size = self.recordings[key.recording].sensor_size
        box = None
        if self.crop_size is not None:
            height, width = sensor_size
            ch, cw = self.crop_size
            if ch > height or cw > width:
                raise ValueError(f"crop_size {self.crop_size} is larger than sensor_size {sensor_size}")
            box = (int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw)
        transforms = self.augmentation.draw(rng) if self.augmentation is not None else ()
        return EpisodeView(box, transforms)

    def __getitem__(self, index: int | WindowKey) -> dict[str, np.ndarray | int | bool]:
        key = self._key(index)
        if not key.active:
            height, width = self.sensor_size or self.recordings[0].sensor_size
            channels = (2 if self.encoding == "counts" else self.num_bins) * len(self.cameras)
            return {
                "input": np.zeros((channels, height, width), np.float32),
                "events": np.zeros((0, 4), np.float32),
                **self._target_arrays([None] * len(self.targets), (height, width)),
                "t_start_us": 0,
                "dt_us": 0,
                "query": -1,
                "gt_first": True,
                "recording": -1,
                "end_of_recording": True,
                "active": False,
            }
        recording, window = self.recordings[key.recording], self.windows[key.recording][key.window]
        view = self.episode_view(key)
        samples = [view(self._load_events(key.recording, key.window, c)) for c in range(len(self.cameras))]
        data = [t.load(recording, window) for t in self.targets]
        data = [None if d is None else t.view(d, view) for t, d in zip(self.targets, data, strict=True)]
        sample = samples[0]
        return {
            "input": np.concatenate(
                [
                    encode(s.events, s.sensor_size, self.encoding, self.num_bins, s.t_start_us, s.t_end_us)
                    for s in samples
                ]
            ),
            "events": event_list(sample.events, sample.t_start_us, sample.t_end_us),
            **self._target_arrays(data, sample.sensor_size),
            "t_start_us": window.t_start_us,
            "dt_us": window.duration_us,
            "query": window.query_index,
            "gt_first": window.starts_gt_interval,
            "recording": key.recording,
            "end_of_recording": key.end_of_recording,
            "active": True,
        }

    def _target_arrays(self, data: list, sensor_size: tuple[int, int]) -> dict[str, np.ndarray | bool]:
        out: dict[str, np.ndarray | bool] = {}
        for target, d in zip(self.targets, data, strict=True):
            out.update(target.absent(sensor_size) if d is None else target.arrays(d))
        return out


def check_cameras(cameras: Sequence[str], augmentation: FlowAugmentation | None = None) -> tuple[str, ...]:
    """``cameras`` as a tuple: ``(left,)`` or ``(left, right)`` (the left camera first: it carries the
    ground truth); a horizontal flip is refused for a stereo pair (it would swap the cameras' geometry)."""
    cameras = tuple(cameras)
    allowed = [list(CAMERAS[:n]) for n in range(1, len(CAMERAS) + 1)]
    if list(cameras) not in allowed:
        raise ValueError(
            f"cameras={list(cameras)}: expected one of {allowed} (the cameras whose events form the input, "
            "the left camera first: the ground truth is the left camera's)"
        )
    if len(cameras) > 1 and augmentation is not None and augmentation.p_flip_x > 0:
        raise ValueError(
            f"augmentation p_flip_x={augmentation.p_flip_x}: a horizontal flip of a stereo pair mirrors the left "
            "image into a right camera's view (disparity changes sign); set p_flip_x to 0 for cameras "
            f"{list(cameras)} (p_flip_y is fine)"
        )
    return cameras


def _index_bounds(recording: Recording, windows: Sequence[Window], own: bool) -> np.ndarray:
    """int64 [W, 2]: each window's ``[start, stop)`` event indices in ``recording``: the window's own indices
    (``own``: the camera it was cut from), else the events of its time span ``[t_start_us, t_end_us)``."""
    if own:
        return np.array([(w.start, w.stop) for w in windows], np.int64).reshape(-1, 2)
    t_us = np.array([(w.t_start_us, w.t_end_us) for w in windows], np.int64).reshape(-1)
    return recording.index_at_time(t_us).reshape(-1, 2)


def _check_target_keys(targets: Sequence[WindowTarget]) -> None:
    """Each target's item keys are its own: not the dataset's, not another target's."""
    owners: dict[str, str] = dict.fromkeys(BATCH_KEYS, "the dataset")
    for target in targets:
        if not isinstance(target, WindowTarget):
            raise TypeError(f"WindowDataset targets must be WindowTarget instances, got {target!r}")
        for name in target.absent((1, 1)):
            if name in owners:
                raise ValueError(
                    f"target '{target.name}' adds item key '{name}', which {owners[name]} already adds"
                )
            owners[name] = f"target '{target.name}'"


@dataclass(frozen=True)
class SequenceCollate:
    """Collate ``seq_len * batch_size`` items (time-major) into tensors shaped [T, B, ...].

    Event lists are zero-padded to the longest window of the batch, with ``event_mask`` [T, B, N].
    """

    batch_size: int

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        if len(items) % self.batch_size:
            raise ValueError(f"got {len(items)} items, not a multiple of batch_size={self.batch_size}")
        steps = len(items) // self.batch_size
        out: dict[str, torch.Tensor] = {}
        for key in items[0]:
            if key == "events":
                continue
            stacked = torch.as_tensor(np.stack([np.asarray(item[key]) for item in items]))
            out[key] = stacked.reshape(steps, self.batch_size, *stacked.shape[1:])
        events, mask = pad_event_lists([item["events"] for item in items])
        out["events"] = torch.from_numpy(events).reshape(steps, self.batch_size, *events.shape[1:])
        out["event_mask"] = torch.from_numpy(mask).reshape(steps, self.batch_size, -1)
        return out
