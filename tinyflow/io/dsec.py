"""DSEC / DSEC-Flow (Gehrig et al., RA-L 2021, 3DV 2021; Prophesee Gen3.1, 640x480, left camera).

Layout below the root (https://dsec.ifi.uzh.ch/, ``train_events.zip``, ``train_optical_flow.zip``,
``test_events.zip``), the ``train_*`` / ``test_*`` level being optional::

    [train_events/]<seq>/events/left/events.h5       events/{x, y, t, p}, ms_to_idx, t_offset (Blosc zstd)
    [train_events/]<seq>/events/left/rectify_map.h5  rectify_map float32 [480, 640, 2]
    [train_optical_flow/]<seq>/flow/forward/XXXXXX.png         16-bit RGB: x, y, valid
    [train_optical_flow/]<seq>/flow/forward_timestamps.txt     "# from_timestamp_us, to_timestamp_us"
    [test_forward_optical_flow_timestamps/]<seq>.csv            test: "from_timestamp_us, to_timestamp_us, file_index"

Event times are µs since ``t_offset`` (the image clock is ``t + t_offset``). Events are moved to the
rectified grid (``rectify_map[y, x]`` rounded to the nearest pixel; events landing outside drop), where
the GT flow lives. GT flow set ``forward``: map k is the displacement in pixels from ``from[k]`` to
``to[k]``; a PNG channel value v encodes ``(v - 2^15) / 128`` pixels, channel 3 is the valid flag.
Maps starting before the first event are skipped. The benchmark's submission PNGs use the same
encoding with the valid channel ignored (:func:`write_submission`); a test sequence's ``<seq>.csv``
gives its query intervals (:meth:`DSECRecording.query_intervals`: forward flow from ``from`` to ``to``,
named by ``file_index``), and :func:`check_submission` checks that a submission folder is complete.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from tinyflow.events.camera import remap_events
from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import FlowGT
from tinyflow.io.checks import EventKeys, check_ms_to_idx
from tinyflow.io.h5 import H5Recording, check_array, check_event_columns, hdf5_errors, open_hdf5, require_key
from tinyflow.io.images import opencv, read_image
from tinyflow.io.lazy import LazyMaps
from tinyflow.io.recording import QueryIntervals

SENSOR_SIZE = (480, 640)
FLOW_NAME = "forward"
FLOW_OFFSET, FLOW_SCALE = 2**15, 128.0
DSEC_KEYS = EventKeys("events/x", "events/y", "events/t", "events/p")


def read_flow_png(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DSEC flow PNG: float32 [2, H, W] (x, y) pixels and the valid mask bool [H, W]."""
    cv2 = opencv()
    image = read_image(path, cv2.IMREAD_UNCHANGED)
    if image.dtype != np.uint16 or image.ndim != 3 or image.shape[2] != 3:
        raise EventDataError(
            f"{path}: expected a 16-bit 3-channel PNG (x, y, valid), got {image.dtype} {image.shape}"
        )
    rgb = image[..., ::-1].astype(np.float32)  # OpenCV reads BGR
    valid = image[..., 0] == 1
    flow = (np.moveaxis(rgb[..., :2], -1, 0) - FLOW_OFFSET) / FLOW_SCALE
    return np.where(valid, flow, 0).astype(np.float32), valid


def write_flow_png(path: Path, flow: np.ndarray, valid: np.ndarray | None = None) -> Path:
    """Write float [2, H, W] (x, y) flow in pixels as a DSEC 16-bit PNG (valid channel all 1 when None)."""
    cv2 = opencv()
    flow = np.asarray(flow, np.float64)
    encoded = np.rint(flow * FLOW_SCALE + FLOW_OFFSET)
    if np.any(encoded < 0) or np.any(encoded > 2**16 - 1):
        raise ValueError(f"{path}: flow must lie in [-256, 256) pixels to fit a DSEC PNG")
    valid_channel = np.ones(flow.shape[1:], np.uint16) if valid is None else np.asarray(valid, np.uint16)
    rgb = np.stack([encoded[0], encoded[1], valid_channel], axis=-1).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), rgb[..., ::-1]):
        raise OSError(f"{path}: could not write the PNG")
    return path


def write_submission(folder: Path, sequence: str, file_index: int, flow: np.ndarray) -> Path:
    """Benchmark submission file ``folder/<sequence>/<file_index:06d>.png`` of a [2, 480, 640] forward flow."""
    if tuple(np.shape(flow)) != (2, *SENSOR_SIZE):
        raise ValueError(f"DSEC submission flow must be [2, 480, 640], got {list(np.shape(flow))}")
    return write_flow_png(submission_file(folder, sequence, file_index), flow)


def submission_file(folder: Path, sequence: str, file_index: int) -> Path:
    """Where the benchmark expects the prediction ``file_index`` of ``sequence``: ``<seq>/<index:06d>.png``."""
    return Path(folder) / sequence / f"{int(file_index):06d}.png"


def check_submission(folder: Path, expected: dict[str, np.ndarray]) -> None:
    """Raise :class:`EventDataError` unless ``folder`` holds exactly the PNGs ``expected`` names
    (sequence -> file indices) in DSEC's layout: one folder per sequence, nothing else."""
    folder = Path(folder)
    wanted = {submission_file(folder, seq, i) for seq, indices in expected.items() for i in indices}
    present = {p for p in folder.rglob("*") if p.is_file()}
    missing, extra = sorted(wanted - present), sorted(present - wanted)
    if missing or extra:
        raise EventDataError(
            f"{folder}: incomplete DSEC submission: {len(missing)} predictions missing "
            f"({[str(p.relative_to(folder)) for p in missing[:3]]}...), {len(extra)} files not asked for "
            f"({[str(p.relative_to(folder)) for p in extra[:3]]}); expected {len(wanted)} PNGs"
        )


def read_submission_timestamps(path: Path) -> np.ndarray:
    """int64 [K, 3] ``(from_timestamp_us, to_timestamp_us, file_index)`` of a test sequence's csv."""
    table = np.loadtxt(path, dtype=np.int64, delimiter=",", comments="#", ndmin=2)
    if table.shape[1] != 3:
        raise EventDataError(f"{path}: expected lines 'from_timestamp_us, to_timestamp_us, file_index'")
    return table


def find_recordings(root: Path) -> list[str]:
    """Names of the sequences with an ``events/left/events.h5`` below ``root``."""
    return sorted({p.parents[2].name for p in Path(root).rglob("events/left/events.h5")})


class DSECRecording(H5Recording):
    """A DSEC left ``events.h5`` read lazily, rectified on read, with its GT flow PNGs when given.

    Args:
        path: ``events.h5``.
        rectify_map: ``rectify_map.h5`` (None: keep raw pixels; GT flow then does not match).
        flow_dir: the sequence's ``flow`` folder (``forward/`` and ``forward_timestamps.txt``), or None.
        test_timestamps: a test sequence's ``<seq>.csv`` (its query intervals), or None.
    """

    def __init__(
        self,
        path: str | Path,
        rectify_map: str | Path | None = None,
        flow_dir: str | Path | None = None,
        test_timestamps: str | Path | None = None,
    ) -> None:
        super().__init__(path)
        src = str(self.path)
        self.sensor_size = SENSOR_SIZE
        with open_hdf5(self.path) as file, hdf5_errors(self.path):
            self._num_events = check_event_columns(file, [f"events/{key}" for key in "xytp"], src)
            self.t0_us = int(require_key(file, "t_offset", src)[()])
            table = check_array(require_key(file, "ms_to_idx", src), "ms_to_idx", src, ("M",), "iu")
            last_us = int(file["events/t"][-1])
            if table.shape[0] < last_us // 1000 + 1:
                raise EventDataError(
                    f"{src}: key 'ms_to_idx' must have at least {last_us // 1000 + 1} entries (last event at "
                    f"{last_us} µs), got {table.shape[0]}"
                )
            self._ms_table = np.append(table[:], self._num_events).astype(np.uint64)
            self._check_once(lambda: self._check_contents(file))
        self._rectify = None if rectify_map is None else self._read_rectify_map(Path(rectify_map))
        self._flow = self._read_flow_listing(Path(flow_dir)) if flow_dir is not None else None
        self._queries = None
        if test_timestamps is not None:
            table = read_submission_timestamps(Path(test_timestamps))
            self._queries = QueryIntervals(table[:, 0] - self.t0_us, table[:, 1] - self.t0_us, table[:, 2])

    def _check_contents(self, file: h5py.File) -> None:
        """The whole-file pass: every event (raw pixels), and 'ms_to_idx' against the timestamps."""
        built = self._scan(file, DSEC_KEYS)
        check_ms_to_idx(file["ms_to_idx"][()], built, "ms_to_idx", "events/t", str(self.path))

    @property
    def name(self) -> str:
        """The sequence: ``<seq>/events/left/events.h5``."""
        return self.path.parents[2].name if len(self.path.parents) > 2 else self.path.stem

    @staticmethod
    def _read_rectify_map(path: Path) -> np.ndarray:
        with open_hdf5(path) as file, hdf5_errors(path):
            key = "rectify_map"
            return check_array(require_key(file, key, str(path)), key, str(path), (*SENSOR_SIZE, 2), "f")[()]

    def _read_flow_listing(self, flow_dir: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
        listing = flow_dir / "forward_timestamps.txt"
        if not listing.is_file():
            raise FileNotFoundError(f"{listing}: no such file (DSEC forward flow timestamps)")
        times = np.loadtxt(listing, dtype=np.int64, delimiter=",", comments="#", ndmin=2)
        pngs = sorted((flow_dir / "forward").glob("*.png"))
        if times.shape[1] != 2 or len(pngs) != len(times):
            raise EventDataError(
                f"{listing}: expected one line 'from_timestamp_us, to_timestamp_us' per PNG in "
                f"{flow_dir / 'forward'} ({len(pngs)}), got {times.shape[0]} lines of {times.shape[1]} values"
            )
        t_start, t_end = times[:, 0] - self.t0_us, times[:, 1] - self.t0_us
        keep = t_start >= 0
        return [p for p, k in zip(pngs, keep, strict=True) if k], t_start[keep], t_end[keep]

    def _read_events(self, start: int, stop: int) -> Events:
        events = self._file["events"]
        raw = Events(*(events[key][start:stop] for key in ("x", "y", "t", "p")))
        if self._rectify is None:
            return raw
        return remap_events(raw.validate(SENSOR_SIZE, source=str(self.path)), self._rectify, SENSOR_SIZE)

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return self._file["events/t"][start:stop].astype(np.int64, copy=False)

    def ms_to_idx(self) -> np.ndarray:
        return self._ms_table

    @property
    def flow_names(self) -> list[str]:
        return [] if self._flow is None else [FLOW_NAME]

    def query_intervals(self) -> QueryIntervals | None:
        """The test timestamps (µs since ``t_offset``) and file indices of a test sequence, or None."""
        return self._queries

    def _listing(self, name: str) -> tuple[list[Path], np.ndarray, np.ndarray]:
        if name not in self.flow_names:
            raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")
        return self._flow

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        _, t_start, t_end = self._listing(name)
        return t_start, t_end

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        pngs = self._listing(name)[0]
        if not 0 <= k < len(pngs):
            raise IndexError(f"{self.path}: flow '{name}' has {len(pngs)} maps, asked for map {k}")
        return read_flow_png(pngs[k])

    def flow(self, name: str) -> FlowGT:
        pngs, t_start, t_end = self._listing(name)
        return FlowGT(
            LazyMaps(lambda k: read_flow_png(pngs[k])[0], len(pngs), (2, *SENSOR_SIZE), np.float32),
            t_start,
            t_end,
            LazyMaps(lambda k: read_flow_png(pngs[k])[1], len(pngs), SENSOR_SIZE, np.bool_),
        )


def _sequence_dir(root: Path, name: str, marker: str) -> Path | None:
    matches = sorted(p.parents[len(Path(marker).parts) - 1] for p in Path(root).rglob(f"{name}/{marker}"))
    return matches[0] if matches else None


def find_test_timestamps(root: Path, name: str) -> Path | None:
    """A test sequence's ``<name>.csv`` below ``root`` (the unpacked ``test_forward_optical_flow_timestamps``)."""
    matches = sorted(p for p in Path(root).rglob(f"{name}.csv") if p.is_file())
    return matches[0] if matches else None


def open_dsec(root: Path, name: str, *, rectify: bool = True) -> DSECRecording:
    """DSEC sequence ``name`` below ``root``: left events, rectification map, forward GT flow and test
    timestamps when present."""
    events_dir = _sequence_dir(root, name, "events/left/events.h5")
    if events_dir is None:
        raise FileNotFoundError(f"{root}: no '{name}/events/left/events.h5' below it (DSEC layout)")
    flow_dir = _sequence_dir(root, name, "flow/forward_timestamps.txt")
    left = events_dir / "events" / "left"
    return DSECRecording(
        left / "events.h5",
        left / "rectify_map.h5" if rectify else None,
        None if flow_dir is None else flow_dir / "flow",
        find_test_timestamps(root, name),
    )
