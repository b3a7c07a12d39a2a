"""MVSEC (Zhu et al., RA-L 2018; two DAVIS346): the original HDF5 files, the GT flow npz, the calibration.

Files of recording ``<name>`` (https://daniilidis-group.github.io/mvsec/), anywhere below the root::

    <name>_data.hdf5          davis/left/events float64 [N, 4] = (x, y, t[s], p in {-1, +1}),
                              davis/right/events (the same, right camera; optional),
                              davis/left/image_raw uint8 [K, 260, 346], davis/left/image_raw_ts float64 [K] (s)
    <name>_gt.hdf5            davis/left/flow_dist [M, 2, 260, 346], davis/left/flow_dist_ts [M] (s),
                              davis/left/depth_image_raw [D, 260, 346] (m), depth_image_raw_ts [D],
                              davis/left/depth_image_rect [D, 260, 346] (m), depth_image_rect_ts [D], ...
    <name>_gt_flow_dist.npz   timestamps [M], x_flow_dist, y_flow_dist [M, 260, 346] (EV-FlowNet's GT)
    <scene>_calib/            <scene>_{left,right}_{x,y}_map.txt [260, 346]: rectified x, y of every raw pixel;
                              camchain-imucam-<scene>.yaml: cam1 ``projection_matrix`` [[f, 0, cx, -f b], ...]
                              (``<scene>`` is the name without its number: indoor_flying1 -> indoor_flying)

Two grids. Raw (the default): the events on the distorted pixel grid, like the GT flow, and depth from
``depth_image_raw``. Rectified (``rectify=True``, the stereo protocol of Tulyakov et al. ICCV 2019 and
StereoSpike): each camera's events move to ``(x_map[y, x], y_map[y, x])`` rounded to the nearest pixel
(events landing outside drop), depth is ``depth_image_rect`` of the left camera, and the stereo facts
``focal_px`` = f and ``baseline_m`` = |f b| / f come from the camchain's cam1 projection matrix; the GT
flow (distorted grid) and the frames are not offered there. Depths that are not finite or <= 0 are NaN.

GT flow map m is the displacement in pixels from ``flow_dist_ts[m]`` to ``flow_dist_ts[m + 1]``; it is
exposed as flow set ``gt``. The evaluation sets ``dt1`` and ``dt4`` cover 1 and 4 intervals of the
grey-frame clock (``image_raw_ts``), non-overlapping, and are computed as EV-FlowNet's
``estimate_corresponding_gt_flow`` does: a frame interval shorter than the GT interval it starts in
scales that GT map; a longer one moves every pixel through the GT maps it spans (nearest-pixel lookup,
partial first and last intervals scaled). Pixels whose GT is (0, 0), not finite or that leave the image
are invalid. Times are µs since the first event of the left camera, the time base of both cameras (right
events before it are skipped).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from tinyflow.events.camera import remap_events
from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, FlowGT, Frames
from tinyflow.io.checks import EventKeys, check_non_decreasing
from tinyflow.io.h5 import H5Recording, check_array, hdf5_errors, open_hdf5, polarity_to_uint8, require_key
from tinyflow.io.lazy import LazyMaps
from tinyflow.io.npz import open_npz_array
from tinyflow.io.recording import LEFT, RIGHT, Recording, ms_index_in_chunks, seconds_to_us

SENSOR_SIZE = (260, 346)  # DAVIS346 (height, width)
FRAMES_APART = (1, 4)

# StereoSpike's split 1 (Rançon et al. 2022, after Tulyakov et al. ICCV 2019), on the left camera's
# depth_image_rect maps: train on indoor_flying2 maps 160-1579 and indoor_flying3 maps 125-1814, test on
# indoor_flying1 maps 140-1200 (take-off and landing cut), of which 200 are held out for validation.
# The 200 are counted from map 140 (urancon/StereoSpike datasets/MVSEC/indices.py SPLIT1_VALID_INDICES;
# DDES dataset.py FRAMES_FILTER_FOR_TEST); config/data/mvsec_depth.yaml holds the frame ranges.
SPLIT1_TEST_MAPS = 1201 - 140
# fmt: off
SPLIT1_VALIDATION_LABELS: tuple[int, ...] = (
    1, 11, 15, 25, 29, 47, 53, 56, 60, 67, 80, 82, 89, 95, 100, 107, 108, 110, 112, 114, 124, 136, 138,
    139, 140, 153, 155, 158, 173, 177, 185, 190, 193, 215, 216, 223, 231, 235, 236, 242, 244, 271, 281,
    286, 287, 292, 293, 300, 303, 304, 305, 308, 312, 314, 323, 328, 332, 338, 348, 351, 355, 359, 372,
    375, 383, 385, 393, 396, 397, 402, 409, 411, 418, 423, 433, 440, 441, 451, 455, 458, 477, 478, 479,
    481, 486, 488, 494, 495, 500, 524, 525, 527, 533, 537, 538, 539, 541, 546, 562, 567, 569, 574, 576,
    587, 590, 595, 603, 614, 619, 621, 627, 633, 638, 652, 659, 668, 671, 673, 676, 680, 682, 689, 690,
    691, 706, 707, 720, 735, 742, 744, 745, 748, 749, 752, 755, 757, 770, 773, 774, 776, 780, 782, 784,
    788, 801, 808, 809, 810, 814, 819, 823, 831, 834, 839, 840, 846, 858, 863, 872, 874, 878, 881, 883,
    884, 885, 887, 898, 899, 900, 904, 908, 914, 916, 926, 927, 936, 941, 943, 951, 954, 963, 965, 974,
    978, 989, 999, 1002, 1005, 1009, 1012, 1015, 1018, 1023, 1032, 1034, 1035, 1040, 1044, 1045, 1059
)
# fmt: on
DEPTH_LABEL_SETS: dict[str, tuple[int, ...]] = {
    "split1_val": SPLIT1_VALIDATION_LABELS,
    "split1_test": tuple(sorted(set(range(SPLIT1_TEST_MAPS)) - set(SPLIT1_VALIDATION_LABELS))),
}


def events_key(camera: str) -> str:
    """``davis/<camera>/events``."""
    return f"davis/{camera}/events"


def event_keys(camera: str) -> EventKeys:
    """How camera ``camera`` stores its events, as quoted in errors."""
    key = events_key(camera)
    return EventKeys(
        f"{key}[:, 0]",
        f"{key}[:, 1]",
        f"{key}[:, 2]",
        f"{key}[:, 3]",
        polarities=(-1, 1),
        polarity_words="-1 (OFF) or +1 (ON) (0 is read as OFF)",
        t_unit="s",
    )


@dataclass(frozen=True)
class StereoCalibration:
    """MVSEC's rectification of the DAVIS pair.

    Attributes:
        left_map, right_map: float32 [260, 346, 2], the rectified (x, y) of every raw pixel of each camera.
        focal_px, baseline_m: rectified focal length (px) and baseline (m), or None without the camchain yaml.
    """

    left_map: np.ndarray
    right_map: np.ndarray
    focal_px: float | None = None
    baseline_m: float | None = None

    def map_of(self, camera: str) -> np.ndarray:
        return self.left_map if camera == LEFT else self.right_map


def scene_of(name: str) -> str:
    """The scene of a recording, which names its calibration: ``indoor_flying1`` -> ``indoor_flying``."""
    return re.sub(r"\d+$", "", name)


def read_rectification_map(folder: Path, scene: str, camera: str) -> np.ndarray:
    """``<scene>_<camera>_{x,y}_map.txt`` as float32 [260, 346, 2] (rectified x, y of every raw pixel)."""
    maps = []
    for axis in ("x", "y"):
        path = folder / f"{scene}_{camera}_{axis}_map.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such file (MVSEC rectification map; unzip {scene}_calib.zip)"
            )
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
        check_array(values, "rows x columns", str(path), SENSOR_SIZE, "f")
        maps.append(values.astype(np.float32))
    return np.stack(maps, axis=-1)


def read_stereo_facts(path: Path) -> tuple[float, float]:
    """``(focal_px, baseline_m)`` of a camchain yaml: cam1's rectified projection ``[[f, 0, cx, -f b], ...]``."""
    cam1 = (yaml.safe_load(path.read_text()) or {}).get("cam1")
    projection = np.asarray(cam1.get("projection_matrix") if isinstance(cam1, dict) else None, dtype=object)
    if projection.shape != (3, 4):
        raise EventDataError(f"{path}: expected a 'cam1' entry with a 3x4 'projection_matrix'")
    focal_px, focal_baseline = float(projection[0, 0]), abs(float(projection[0, 3]))
    if not focal_px > 0 or not focal_baseline > 0:
        raise EventDataError(
            f"{path}: cam1 'projection_matrix' must have f > 0 at [0][0] and -f b != 0 at [0][3], got "
            f"{projection[0].tolist()}"
        )
    return focal_px, focal_baseline / focal_px


def read_calibration(folder: Path, scene: str) -> StereoCalibration:
    """The rectification maps of both cameras in ``folder`` and, when there, the camchain's stereo facts."""
    left, right = (read_rectification_map(folder, scene, camera) for camera in (LEFT, RIGHT))
    camchain = folder / f"camchain-imucam-{scene}.yaml"
    facts = read_stereo_facts(camchain) if camchain.is_file() else (None, None)
    return StereoCalibration(left, right, *facts)


def find_calibration(root: Path, name: str) -> Path:
    """The folder below ``root`` holding the rectification maps of recording ``name``'s scene."""
    scene = scene_of(name)
    matches = sorted(Path(root).rglob(f"{scene}_{LEFT}_x_map.txt"))
    if not matches:
        raise FileNotFoundError(
            f"{root}: no '{scene}_{LEFT}_x_map.txt' below it; rectified MVSEC events need the scene's "
            f"calibration (unzip {scene}_calib.zip there)"
        )
    return matches[0].parent


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


def _first_index_at_or_after(events: h5py.Dataset, t_s: float) -> int:
    """Index of the first row of ``events`` [N, 4] with time column >= ``t_s`` (bisection, O(log N) reads)."""
    lo, hi = 0, events.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid, 2] < t_s:
            lo = mid + 1
        else:
            hi = mid
    return lo


class MVSECEvents(H5Recording):
    """One DAVIS camera of an MVSEC ``*_data.hdf5`` (``davis/<camera>/events``), read lazily in place.

    Args:
        path: the ``<name>_data.hdf5`` file.
        camera: ``left`` or ``right``.
        t0_s: the time base (s): None = this camera's first event (the left camera); the right camera
            takes the left camera's and skips its events before it.
        rectify_map: float [260, 346, 2] rectified (x, y) of every raw pixel, or None for raw pixels.
    """

    ms_index_chunk = 1_000_000

    def __init__(
        self,
        path: str | Path,
        camera: str = LEFT,
        t0_s: float | None = None,
        rectify_map: np.ndarray | None = None,
    ) -> None:
        super().__init__(path)
        src, key = str(self.path), events_key(camera)
        self.camera_name, self._key, self._rectify = camera, key, rectify_map
        self.sensor_size = SENSOR_SIZE
        with open_hdf5(self.path) as file, hdf5_errors(self.path):
            events = check_array(require_key(file, key, src), key, src, ("N", 4), "f")
            if events.shape[0] == 0:
                raise EventDataError(f"{src}: recording has no events (key '{key}' is empty)")
            self._t0_s = float(events[0, 2]) if t0_s is None else float(t0_s)
            self._offset = 0 if t0_s is None else _first_index_at_or_after(events, self._t0_s)
            self._num_events = events.shape[0] - self._offset
            if self._num_events == 0:
                raise EventDataError(f"{src}: key '{key}' has no event at or after t0 = {self._t0_s} s")
            self.t0_us = round(self._t0_s * 1e6)
            self._check_metadata(file)
            self._ms_table: np.ndarray | None = self._check_once(lambda: self._check_contents(file))

    @property
    def check_spec(self) -> str:
        camera = "" if self.camera_name == LEFT else f" camera={self.camera_name} t0_s={self._t0_s!r}"
        return f"{super().check_spec}{camera}"

    @property
    def name(self) -> str:
        return self.path.stem.removesuffix("_data")

    def _check_metadata(self, file: h5py.File) -> None:
        """Shapes and dtypes of what the reader offers besides the events (none: events only)."""

    def _check_contents(self, file: h5py.File) -> np.ndarray:
        """The whole-file pass over the camera's events; returns the 'ms_to_idx' it builds on the way."""
        events, offset = file[self._key], self._offset

        def read(start: int, stop: int) -> tuple[np.ndarray, ...]:
            block = events[offset + start : offset + stop]
            with np.errstate(invalid="ignore"):  # NaN seconds: the check reports them from the raw column
                t_us = seconds_to_us(block[:, 2], self._t0_s)
            return block[:, 0], block[:, 1], t_us, block[:, 3], block[:, 2]

        return self._scan(file, event_keys(self.camera_name), read)

    def _read_events(self, start: int, stop: int) -> Events:
        block = self._dataset(self._key)[self._offset + start : self._offset + stop]
        xy = block[:, :2]
        if np.any(xy != np.rint(xy)) or np.any(xy < 0):
            raise EventDataError(
                f"{self.path}: key '{self._key}' columns x, y must be whole non-negative pixels"
            )
        events = Events(
            xy[:, 0].astype(np.uint16),
            xy[:, 1].astype(np.uint16),
            seconds_to_us(block[:, 2], self._t0_s),
            polarity_to_uint8(block[:, 3], f"{self._key}[:, 3]", str(self.path)),
        )
        if self._rectify is None:
            return events
        return remap_events(events.validate(SENSOR_SIZE, source=str(self.path)), self._rectify, SENSOR_SIZE)

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return seconds_to_us(
            self._dataset(self._key)[self._offset + start : self._offset + stop, 2], self._t0_s
        )

    def ms_to_idx(self) -> np.ndarray:
        """Built by the check at open, or on first use by one chunked pass when the check's verdict was cached."""
        if self._ms_table is None:
            self._ms_table = ms_index_in_chunks(
                self._read_t_us, self._num_events, str(self.path), self._key, self.ms_index_chunk
            )
        return self._ms_table


class MVSECRecording(MVSECEvents):
    """An MVSEC recording: the left camera's events with its GT from ``*_gt.hdf5`` or the GT flow npz, and
    the right camera (:meth:`camera`) when the data file holds it.

    Args:
        path: the ``<name>_data.hdf5`` file.
        gt_path: the ``<name>_gt.hdf5`` file, or None.
        npz_path: the ``<name>_gt_flow_dist.npz`` file, or None (used when ``gt_path`` is None).
        frames_apart: frame intervals of the evaluation flow sets ``dt<n>``.
        calibration: rectify both cameras' events with it (depth from ``depth_image_rect``, no GT flow
            and no frames: they live on the distorted grid), or None for the raw grid.
    """

    def __init__(
        self,
        path: str | Path,
        gt_path: str | Path | None = None,
        npz_path: str | Path | None = None,
        frames_apart: tuple[int, ...] = FRAMES_APART,
        calibration: StereoCalibration | None = None,
    ) -> None:
        self.gt_path = None if gt_path is None else Path(gt_path)
        self.npz_path = None if npz_path is None or gt_path is not None else Path(npz_path)
        self.calibration = calibration
        super().__init__(path, LEFT, None, None if calibration is None else calibration.left_map)
        self._depth_key = "depth_image_raw" if calibration is None else "depth_image_rect"
        self._gt_t_us, self._depth_t_us = self._check_gt()
        self._intervals = {} if calibration is not None else self._flow_intervals(frames_apart)
        self._npz_maps: tuple[np.ndarray, np.ndarray] | None = None
        self._gt_handle: h5py.File | None = None
        self._gt_pid: int | None = None

    def _check_metadata(self, file: h5py.File) -> None:
        src, dims = str(self.path), {}
        for key, shape, kind in (
            ("davis/left/image_raw", ("K", *SENSOR_SIZE), "u"),
            ("davis/left/image_raw_ts", ("K",), "f"),
        ):
            check_array(require_key(file, key, src), key, src, shape, kind, dims)
        self._frame_t_us = seconds_to_us(file["davis/left/image_raw_ts"][:], self._t0_s)
        check_non_decreasing(self._frame_t_us, "davis/left/image_raw_ts", src)
        if events_key(RIGHT) in file:
            check_array(file[events_key(RIGHT)], events_key(RIGHT), src, ("N", 4), "f")
        self._cameras = (LEFT, RIGHT) if events_key(RIGHT) in file else (LEFT,)

    def _check_gt(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The GT flow clock (µs) and the depth clock (µs), each None where the files hold none."""
        if self.gt_path is not None:
            src = str(self.gt_path)
            with open_hdf5(self.gt_path) as gt, hdf5_errors(self.gt_path):
                gt_t_us = None if self.calibration is not None else self._check_gt_flow(gt)
                depth_key = f"davis/left/{self._depth_key}"
                if depth_key not in gt:
                    if self.calibration is not None:
                        require_key(gt, depth_key, src)
                    return gt_t_us, None
                dims: dict[str, int] = {}
                check_array(gt[depth_key], depth_key, src, ("D", *SENSOR_SIZE), "f", dims)
                ts_key = f"{depth_key}_ts"
                check_array(require_key(gt, ts_key, src), ts_key, src, ("D",), "f", dims)
                depth_t_us = seconds_to_us(gt[ts_key][:], self._t0_s)
                check_non_decreasing(depth_t_us, ts_key, src)
                return gt_t_us, depth_t_us
        if self.npz_path is not None and self.calibration is None:
            src, dims = str(self.npz_path), {}
            check_array(open_npz_array(self.npz_path, "timestamps"), "timestamps", src, ("M",), "f", dims)
            for key in ("x_flow_dist", "y_flow_dist"):
                check_array(open_npz_array(self.npz_path, key), key, src, ("M", *SENSOR_SIZE), "f", dims)
            gt_t_us = seconds_to_us(open_npz_array(self.npz_path, "timestamps")[:], self._t0_s)
            check_non_decreasing(gt_t_us, "timestamps", src)
            return gt_t_us, None
        if self.calibration is not None:
            raise FileNotFoundError(f"{self.path}: no '{self.name}_gt.hdf5' beside it (rectified depth GT)")
        return None, None

    def _check_gt_flow(self, gt: h5py.File) -> np.ndarray:
        src, dims = str(self.gt_path), {}
        flow_key, ts_key = "davis/left/flow_dist", "davis/left/flow_dist_ts"
        check_array(require_key(gt, flow_key, src), flow_key, src, ("M", 2, *SENSOR_SIZE), "f", dims)
        check_array(require_key(gt, ts_key, src), ts_key, src, ("M",), "f", dims)
        gt_t_us = seconds_to_us(gt[ts_key][:], self._t0_s)
        check_non_decreasing(gt_t_us, ts_key, src)
        return gt_t_us

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

    def frames(self) -> Frames | None:
        """The left grey frames (raw grid), read lazily (an HDF5 dataset); None on the rectified grid."""
        if self.calibration is not None:
            return None
        return Frames(self._file["davis/left/image_raw"], self._frame_t_us)

    def depth_t_us(self) -> np.ndarray | None:
        return self._depth_t_us

    def depth_map(self, k: int) -> np.ndarray:
        """Depth map ``k`` of the grid's depth set, float32 [260, 346] metres (NaN where not finite or <= 0)."""
        if self._depth_t_us is None:
            raise KeyError(f"{self.path}: no depth ground truth")
        with hdf5_errors(self.gt_path):
            depth = self._gt_file[f"davis/left/{self._depth_key}"][k].astype(np.float32)
        with np.errstate(invalid="ignore"):
            depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
        return depth

    def depth(self) -> DepthGT | None:
        """Depth in metres (NaN = invalid), ``depth_image_raw`` or (rectified) ``depth_image_rect``, read lazily."""
        if self._depth_t_us is None:
            return None
        maps = LazyMaps(self.depth_map, len(self._depth_t_us), SENSOR_SIZE, np.float32)
        return DepthGT(maps, self._depth_t_us)

    def calib(self) -> dict[str, object]:
        """The stereo facts ``focal_px`` and ``baseline_m`` of the rectified grid (when known); else empty."""
        if self.calibration is None or self.calibration.focal_px is None:
            return {}
        return {"focal_px": self.calibration.focal_px, "baseline_m": self.calibration.baseline_m}

    @property
    def cameras(self) -> tuple[str, ...]:
        return self._cameras

    def camera(self, name: str) -> Recording:
        if name == LEFT or name not in self._cameras:
            return super().camera(name)
        rectify = None if self.calibration is None else self.calibration.map_of(name)
        return MVSECEvents(self.path, name, self._t0_s, rectify)

    def close(self) -> None:
        super().close()
        if self._gt_handle is not None and self._gt_pid == os.getpid():
            self._gt_handle.close()
        self._gt_handle = None

    def __getstate__(self) -> dict[str, object]:
        return {**super().__getstate__(), "_gt_handle": None, "_gt_pid": None, "_npz_maps": None}


def open_mvsec(
    root: Path, name: str, frames_apart: tuple[int, ...] = FRAMES_APART, rectify: bool = False
) -> MVSECRecording:
    """MVSEC recording ``name`` below ``root``: its data file and, when present, its GT file or npz.

    Args:
        rectify: move both cameras' events to the rectified grid with the scene's calibration (found
            below ``root``, see :func:`find_calibration`); depth is then ``depth_image_rect``.
    """
    data = _data_path(root, name, "_data.hdf5")
    if data is None:
        raise FileNotFoundError(f"{root}: no '{name}_data.hdf5' below it (MVSEC layout)")
    calibration = read_calibration(find_calibration(root, name), scene_of(name)) if rectify else None
    return MVSECRecording(
        data,
        _data_path(root, name, "_gt.hdf5"),
        _data_path(root, name, "_gt_flow_dist.npz"),
        tuple(frames_apart),
        calibration,
    )
