"""MVSEC (Zhu et al., RA-L 2018; DAVIS346, left camera): the original HDF5 files and the GT flow npz.

Files of recording ``<name>`` (https://daniilidis-group.github.io/mvsec/), anywhere below the root::

    <name>_data.hdf5          davis/left/events float64 [N, 4] = (x, y, t[s], p in {-1, +1}),
                              davis/left/image_raw uint8 [K, 260, 346], davis/left/image_raw_ts float64 [K] (s)
    <name>_gt.hdf5            davis/left/flow_dist [M, 2, 260, 346], davis/left/flow_dist_ts [M] (s),
                              davis/left/depth_image_raw [D, 260, 346] (m), depth_image_raw_ts [D], ...
    <name>_gt_flow_dist.npz   timestamps [M], x_flow_dist, y_flow_dist [M, 260, 346] (EV-FlowNet's GT)

GT flow (on the raw, distorted pixel grid, like the events) map m is the displacement in pixels from
``flow_dist_ts[m]`` to ``flow_dist_ts[m + 1]``; it is exposed as flow set ``gt``. The evaluation sets
``dt1`` and ``dt4`` cover 1 and 4 intervals of the grey-frame clock (``image_raw_ts``), non-overlapping,
and are computed as EV-FlowNet's ``estimate_corresponding_gt_flow`` does: a frame interval shorter than
the GT interval it starts in scales that GT map; a longer one moves every pixel through the GT maps it
spans (nearest-pixel lookup, partial first and last intervals scaled). Pixels whose GT is (0, 0), not
finite or that leave the image are invalid. Times are µs since the first event.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.io.checks import EventKeys, check_non_decreasing
from tinyflow.io.h5 import H5Recording, check_array, hdf5_errors, open_hdf5, polarity_to_uint8, require_key
from tinyflow.io.lazy import LazyMaps
from tinyflow.io.npz import open_npz_array
from tinyflow.io.recording import ms_index_in_chunks, seconds_to_us

SENSOR_SIZE = (260, 346)  # DAVIS346 (height, width)
FRAMES_APART = (1, 4)
EVENTS_KEY = "davis/left/events"
MVSEC_KEYS = EventKeys(
    f"{EVENTS_KEY}[:, 0]",
    f"{EVENTS_KEY}[:, 1]",
    f"{EVENTS_KEY}[:, 2]",
    f"{EVENTS_KEY}[:, 3]",
    polarities=(-1, 1),
    polarity_words="-1 (OFF) or +1 (ON) (0 is read as OFF)",
    t_unit="s",
)


def _data_path(root: Path, name: str, suffix: str) -> Path | None:
    matches = sorted(Path(root).rglob(f"{name}{suffix}"))
    return matches[0] if matches else None


def find_recordings(root: Path) -> list[str]:
    """Names of the recordings with a ``<name>_data.hdf5`` anywhere below ``root``."""
    return sorted({p.name.removesuffix("_data.hdf5") for p in Path(root).rglob("*_data.hdf5")})


def _sample_nearest(maps: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[2, H, W] flow sampled at the nearest pixel of (x, y); 0 outside the image (as cv2.remap's border)."""
    height, width = maps.shape[1:]
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    out = np.zeros((2, *x.shape), np.float64)
    out[:, inside] = maps[:, yi[inside], xi[inside]]
    return out


def accumulate_gt_flow(
    gt_map: Callable[[int], np.ndarray], gt_t_us: np.ndarray, t_start_us: int, t_end_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """GT flow float32 [2, H, W] from ``t_start_us`` to ``t_end_us`` and its valid mask [H, W].

    Args:
        gt_map: GT map m, float [2, H, W]: displacement from ``gt_t_us[m]`` to ``gt_t_us[m + 1]``.
        gt_t_us: int64 [M] GT timestamps; the interval must lie inside ``[gt_t_us[0], gt_t_us[-1]]``.
    """
    m = int(np.searchsorted(gt_t_us, t_start_us, side="right")) - 1
    if m < 0 or t_end_us > gt_t_us[-1]:
        raise ValueError(
            f"interval [{t_start_us}, {t_end_us}] µs is outside the GT [{gt_t_us[0]}, {gt_t_us[-1]}]"
        )
    flow = np.asarray(gt_map(m), np.float64)
    gt_dt = gt_t_us[m + 1] - gt_t_us[m]
    if gt_dt > t_end_us - t_start_us:
        out = flow * ((t_end_us - t_start_us) / gt_dt)
        moved = np.ones(out.shape[1:], bool)
    else:
        height, width = flow.shape[1:]
        y0, x0 = np.mgrid[0:height, 0:width].astype(np.float64)
        x, y = x0.copy(), y0.copy()
        moved = np.ones((height, width), bool)
        t = t_start_us
        while t < t_end_us:
            stop = min(gt_t_us[m + 1], t_end_us)
            step = _sample_nearest(np.asarray(gt_map(m), np.float64), x, y)
            moved &= (step[0] != 0) | (step[1] != 0)
            scale = (stop - t) / (gt_t_us[m + 1] - gt_t_us[m])
            x, y = x + step[0] * scale, y + step[1] * scale
            t, m = stop, m + 1
        out = np.stack([x - x0, y - y0])
        out[:, ~moved] = 0
    valid = moved & np.all(np.isfinite(out), axis=0) & (np.hypot(out[0], out[1]) > 0)
    out[:, ~valid] = 0
    return out.astype(np.float32), valid


class MVSECRecording(H5Recording):
    """An MVSEC ``*_data.hdf5`` read lazily in place, with GT from ``*_gt.hdf5`` or the GT flow npz.

    Args:
        path: the ``<name>_data.hdf5`` file.
        gt_path: the ``<name>_gt.hdf5`` file, or None.
        npz_path: the ``<name>_gt_flow_dist.npz`` file, or None (used when ``gt_path`` is None).
        frames_apart: frame intervals of the evaluation flow sets ``dt<n>``.
    """

    ms_index_chunk = 1_000_000

    def __init__(
        self,
        path: str | Path,
        gt_path: str | Path | None = None,
        npz_path: str | Path | None = None,
        frames_apart: tuple[int, ...] = FRAMES_APART,
    ) -> None:
        super().__init__(path)
        src = str(self.path)
        self.sensor_size = SENSOR_SIZE
        self.gt_path = None if gt_path is None else Path(gt_path)
        self.npz_path = None if npz_path is None or gt_path is not None else Path(npz_path)
        with open_hdf5(self.path) as file, hdf5_errors(self.path):
            events = check_array(require_key(file, EVENTS_KEY, src), EVENTS_KEY, src, ("N", 4), "f")
            self._num_events = events.shape[0]
            if self._num_events == 0:
                raise EventDataError(f"{src}: recording has no events (key '{EVENTS_KEY}' is empty)")
            self._t0_s = float(events[0, 2])
            self.t0_us = round(self._t0_s * 1e6)
            dims: dict[str, int] = {}
            check_array(
                require_key(file, "davis/left/image_raw", src),
                "davis/left/image_raw",
                src,
                ("K", *SENSOR_SIZE),
                "u",
                dims,
            )
            check_array(
                require_key(file, "davis/left/image_raw_ts", src),
                "davis/left/image_raw_ts",
                src,
                ("K",),
                "f",
                dims,
            )
            self._frame_t_us = seconds_to_us(file["davis/left/image_raw_ts"][:], self._t0_s)
            check_non_decreasing(self._frame_t_us, "davis/left/image_raw_ts", src)
            self._ms_table: np.ndarray | None = self._check_once(lambda: self._check_contents(file))
        self._gt_t_us, self._has_depth = self._check_gt()
        self._intervals = self._flow_intervals(frames_apart)
        self._npz_maps: tuple[np.ndarray, np.ndarray] | None = None
        self._gt_handle: h5py.File | None = None
        self._gt_pid: int | None = None

    def _check_contents(self, file: h5py.File) -> np.ndarray:
        """The whole-file pass over every event; returns the 'ms_to_idx' it builds on the way."""
        events = file[EVENTS_KEY]

        def read(start: int, stop: int) -> tuple[np.ndarray, ...]:
            block = events[start:stop]
            with np.errstate(invalid="ignore"):  # NaN seconds: the check reports them from the raw column
                t_us = seconds_to_us(block[:, 2], self._t0_s)
            return block[:, 0], block[:, 1], t_us, block[:, 3], block[:, 2]

        return self._scan(file, MVSEC_KEYS, read)

    @property
    def name(self) -> str:
        return self.path.stem.removesuffix("_data")

    def _check_gt(self) -> tuple[np.ndarray | None, bool]:
        if self.gt_path is not None:
            src, dims = str(self.gt_path), {}
            with open_hdf5(self.gt_path) as gt, hdf5_errors(self.gt_path):
                flow_key, ts_key = "davis/left/flow_dist", "davis/left/flow_dist_ts"
                check_array(require_key(gt, flow_key, src), flow_key, src, ("M", 2, *SENSOR_SIZE), "f", dims)
                check_array(require_key(gt, ts_key, src), ts_key, src, ("M",), "f", dims)
                has_depth = "davis/left/depth_image_raw" in gt
                if has_depth:
                    depth_dims: dict[str, int] = {}
                    for key, shape in (
                        ("depth_image_raw", ("D", *SENSOR_SIZE)),
                        ("depth_image_raw_ts", ("D",)),
                    ):
                        check_array(
                            require_key(gt, f"davis/left/{key}", src),
                            f"davis/left/{key}",
                            src,
                            shape,
                            "f",
                            depth_dims,
                        )
                gt_t_us = seconds_to_us(gt[ts_key][:], self._t0_s)
                check_non_decreasing(gt_t_us, ts_key, src)
                return gt_t_us, has_depth
        if self.npz_path is not None:
            src, dims = str(self.npz_path), {}
            check_array(open_npz_array(self.npz_path, "timestamps"), "timestamps", src, ("M",), "f", dims)
            for key in ("x_flow_dist", "y_flow_dist"):
                check_array(open_npz_array(self.npz_path, key), key, src, ("M", *SENSOR_SIZE), "f", dims)
            gt_t_us = seconds_to_us(open_npz_array(self.npz_path, "timestamps")[:], self._t0_s)
            check_non_decreasing(gt_t_us, "timestamps", src)
            return gt_t_us, False
        return None, False

    def _flow_intervals(self, frames_apart: tuple[int, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per flow set: int64 (t_start_us, t_end_us) of its maps, all inside the GT's time span."""
        if self._gt_t_us is None or len(self._gt_t_us) < 2:
            return {}
        gt = self._gt_t_us
        intervals = {"gt": (gt[:-1], gt[1:])}
        clock = self._frame_t_us
        for n in frames_apart:
            starts, ends = clock[:-n:n], clock[n::n]
            inside = (starts >= gt[0]) & (ends <= gt[-1]) & (ends > starts)
            intervals[f"dt{n}"] = (starts[inside], ends[inside])
        return intervals

    def _read_events(self, start: int, stop: int) -> Events:
        block = self._file[EVENTS_KEY][start:stop]
        xy = block[:, :2]
        if np.any(xy != np.rint(xy)) or np.any(xy < 0):
            raise EventDataError(
                f"{self.path}: key '{EVENTS_KEY}' columns x, y must be whole non-negative pixels"
            )
        return Events(
            xy[:, 0].astype(np.uint16),
            xy[:, 1].astype(np.uint16),
            seconds_to_us(block[:, 2], self._t0_s),
            polarity_to_uint8(block[:, 3], f"{EVENTS_KEY}[:, 3]", str(self.path)),
        )

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return seconds_to_us(self._file[EVENTS_KEY][start:stop, 2], self._t0_s)

    def ms_to_idx(self) -> np.ndarray:
        """Built by the check at open, or on first use by one chunked pass when the check's verdict was cached."""
        if self._ms_table is None:
            self._ms_table = ms_index_in_chunks(
                self._read_t_us, self._num_events, str(self.path), EVENTS_KEY, self.ms_index_chunk
            )
        return self._ms_table

    @property
    def _gt_file(self) -> h5py.File:
        """The GT file, opened once per process (like the data file)."""
        if self._gt_handle is None or self._gt_pid != os.getpid():
            self._gt_handle, self._gt_pid = open_hdf5(self.gt_path), os.getpid()
        return self._gt_handle

    def _gt_map(self, m: int) -> np.ndarray:
        if self.gt_path is not None:
            with hdf5_errors(self.gt_path):
                return self._gt_file["davis/left/flow_dist"][m]
        if self._npz_maps is None:
            self._npz_maps = (
                open_npz_array(self.npz_path, "x_flow_dist"),
                open_npz_array(self.npz_path, "y_flow_dist"),
            )
        return np.stack([self._npz_maps[0][m], self._npz_maps[1][m]])

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._intervals)

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._intervals:
            raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")
        return self._intervals[name]

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        t_start, t_end = self.flow_intervals(name)
        if not 0 <= k < len(t_start):
            raise IndexError(f"{self.path}: flow '{name}' has {len(t_start)} maps, asked for map {k}")
        if name == "gt":
            flow = np.asarray(self._gt_map(k), np.float32)
            valid = np.all(np.isfinite(flow), axis=0) & (np.hypot(flow[0], flow[1]) > 0)
            return np.where(valid, flow, 0).astype(np.float32), valid
        return accumulate_gt_flow(self._gt_map, self._gt_t_us, int(t_start[k]), int(t_end[k]))

    def flow(self, name: str) -> FlowGT:
        t_start, t_end = self.flow_intervals(name)
        maps = LazyMaps(lambda k: self.flow_map(name, k)[0], len(t_start), (2, *SENSOR_SIZE), np.float32)
        valid = LazyMaps(lambda k: self.flow_map(name, k)[1], len(t_start), SENSOR_SIZE, np.bool_)
        return FlowGT(maps, t_start, t_end, valid)

    def frames(self) -> Frames:
        """The left grey frames, read lazily (an HDF5 dataset)."""
        return Frames(self._file["davis/left/image_raw"], self._frame_t_us)

    def depth(self) -> DepthGT | None:
        """Depth on the raw pixel grid (``depth_image_raw``, metres, NaN = invalid), read lazily."""
        if not self._has_depth:
            return None
        ts = seconds_to_us(self._gt_file["davis/left/depth_image_raw_ts"][:], self._t0_s)
        return DepthGT(self._gt_file["davis/left/depth_image_raw"], ts)

    def close(self) -> None:
        super().close()
        if self._gt_handle is not None and self._gt_pid == os.getpid():
            self._gt_handle.close()
        self._gt_handle = None

    def __getstate__(self) -> dict[str, object]:
        return {**super().__getstate__(), "_gt_handle": None, "_gt_pid": None, "_npz_maps": None}


def open_mvsec(root: Path, name: str, frames_apart: tuple[int, ...] = FRAMES_APART) -> MVSECRecording:
    """MVSEC recording ``name`` below ``root``: its data file and, when present, its GT file or npz."""
    data = _data_path(root, name, "_data.hdf5")
    if data is None:
        raise FileNotFoundError(f"{root}: no '{name}_data.hdf5' below it (MVSEC layout)")
    return MVSECRecording(
        data,
        _data_path(root, name, "_gt.hdf5"),
        _data_path(root, name, "_gt_flow_dist.npz"),
        tuple(frames_apart),
    )
