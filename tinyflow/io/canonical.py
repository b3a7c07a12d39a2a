"""The canonical HDF5 layout: a streaming, atomic writer and a lazy reader.

Layout (format_version 1)::

    /events/x uint16 [N]  /events/y uint16 [N]  column, row in pixels
    /events/t int64 [N]   µs since the root attribute t0_us, non-decreasing
    /events/p uint8 [N]   0 = OFF, 1 = ON
    /events/ms_to_idx uint64 [M]   index of the first event with t >= k ms
    /flow/<name>/flow float32 [K, 2, H, W]  (x, y) displacement in pixels from t_start_us to t_end_us
    /flow/<name>/t_start_us, t_end_us int64 [K]   /flow/<name>/valid bool [K, H, W] (optional)
    /depth/depth float32 [K, H, W] metres (NaN = invalid)   /depth/t_us int64 [K]
    /images/images uint8 [K, H, W]   /images/t_us int64 [K]
    /calib/...   arrays as given (nested groups for nested dicts)
    root attributes: sensor_size = (height, width), t0_us (absolute µs), source, format_version

Stereo recordings add the right camera of a rectified pair and the left camera's disparity::

    /right/events/x, y, t, p, ms_to_idx   as /events, same sensor size and time base (t0_us)
    /disparity/disparity float32 [K, H, W] pixels, x_right = x_left - d, NaN = seen by the left camera
        only (occluded in the right view or outside it)   /disparity/t_us int64 [K]
    /calib/baseline_m, /calib/focal_px   float64 scalars: the pair's baseline (m) and focal length (px)

``/events``, ``/flow``, ``/depth`` and ``/images`` are the left camera's, unchanged from a mono file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import h5py
import hdf5plugin
import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import DepthGT, DisparityGT, FlowGT, Frames
from tinyflow.io.checks import EventKeys, check_intervals, check_ms_to_idx, check_non_decreasing
from tinyflow.io.h5 import (
    H5Recording,
    check_array,
    check_event_columns,
    check_sensor_size,
    hdf5_errors,
    open_hdf5,
    require_attr,
    require_key,
)
from tinyflow.io.lazy import ArrayLike, as_maps
from tinyflow.io.recording import CAMERAS, LEFT, MsIndexBuilder, Recording

FORMAT_VERSION = 1
EVENT_CHUNK = 1 << 16  # events per HDF5 chunk: a 100k-event window touches 2-3 chunks
MAP_BLOCK = 16  # GT maps / frames read from their source and written at once

Compression = Literal["gzip", "lzf", "blosc", "zstd"] | None
_EVENT_DTYPES = {"x": np.uint16, "y": np.uint16, "t": np.int64, "p": np.uint8}
_EVENT_FIELDS = {"x": "x", "y": "y", "t": "t_us", "p": "p"}
_TIMED_MAPS = {
    "depth": "depth",
    "disparity": "disparity",
    "images": "images",
}  # group -> maps, beside t_us [K]


def events_group(camera: str) -> str:
    """Where a camera's events live: ``events`` (left), ``right/events`` (right)."""
    if camera not in CAMERAS:
        raise ValueError(f"unknown camera {camera!r}; expected one of {list(CAMERAS)}")
    return "events" if camera == LEFT else f"{camera}/events"


def event_keys(camera: str) -> EventKeys:
    group = events_group(camera)
    return EventKeys(f"{group}/x", f"{group}/y", f"{group}/t", f"{group}/p")


def compression_options(compression: Compression) -> dict[str, object]:
    """``create_dataset`` keyword arguments of a compression choice (shuffle + codec)."""
    options: dict[str | None, dict[str, object]] = {
        None: {},
        "gzip": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
        "lzf": {"compression": "lzf", "shuffle": True},
        "blosc": dict(hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)),
        "zstd": {**hdf5plugin.Zstd(clevel=3), "shuffle": True},
    }
    if compression not in options:
        raise ValueError(f"compression must be one of {list(options)}, got {compression!r}")
    return options[compression]


def _check_non_decreasing(t_us: np.ndarray, key: str, source: str) -> None:
    if np.any(np.diff(t_us) < 0):
        raise EventDataError(f"{source}: key '{key}' must be non-decreasing µs timestamps")


@dataclass
class _EventColumns:
    """One camera's event datasets being written, its ``ms_to_idx`` builder and its event count."""

    datasets: dict[str, h5py.Dataset]
    ms_index: MsIndexBuilder
    num_events: int = 0


class CanonicalWriter:
    """Writes a canonical recording, streaming events in chunks; use as a context manager.

    Everything goes to a hidden temporary file beside ``path``, renamed to ``path`` only when
    the context exits without an exception (or at :meth:`close`), so a crash leaves no file at
    the target. Events are validated per append (coordinates against ``sensor_size``, time
    order also across appends, timestamps >= 0 µs since ``t0_us``).

    Args:
        path: target file.
        sensor_size: ``(height, width)`` in pixels.
        t0_us: absolute time (µs) of the recording's time origin; event times are relative to it.
        source: where the data came from (dataset / generator name), stored as an attribute.
        compression: ``"gzip"``, ``"lzf"``, ``"blosc"`` (zstd inside blosc), ``"zstd"`` or None.
        overwrite: replace an existing ``path``; otherwise an existing target is an error.
    """

    def __init__(
        self,
        path: str | Path,
        sensor_size: tuple[int, int],
        *,
        t0_us: int = 0,
        source: str = "unknown",
        compression: Compression = "gzip",
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self._source = str(self.path)
        self.sensor_size = check_sensor_size(sensor_size, "sensor_size", self._source)
        self._overwrite = overwrite
        self._refuse_existing_target()
        self._options = compression_options(compression)
        self._tmp_path = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp")
        self._file: h5py.File | None = h5py.File(self._tmp_path, "w-")
        self._file.attrs.update(
            sensor_size=np.asarray(self.sensor_size, np.int64),
            t0_us=np.int64(t0_us),
            source=source,
            format_version=FORMAT_VERSION,
        )
        self._columns: dict[str, _EventColumns] = {}
        self._event_columns(LEFT)

    def _refuse_existing_target(self) -> None:
        if self.path.exists() and not self._overwrite:
            raise FileExistsError(f"{self.path}: already exists; pass overwrite=True to replace it")

    def _open_file(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError(f"{self.path}: writer is already closed")
        return self._file

    @property
    def num_events(self) -> int:
        """Events of the left camera appended so far."""
        return self._columns[LEFT].num_events

    def _event_columns(self, camera: str) -> _EventColumns:
        if camera not in self._columns:
            group = events_group(camera)
            datasets = {
                key: self._open_file().create_dataset(
                    f"{group}/{key}",
                    shape=(0,),
                    maxshape=(None,),
                    dtype=dtype,
                    chunks=(EVENT_CHUNK,),
                    **self._options,
                )
                for key, dtype in _EVENT_DTYPES.items()
            }
            self._columns[camera] = _EventColumns(datasets, MsIndexBuilder(self._source, f"{group}/t"))
        return self._columns[camera]

    def append(self, events: Events, camera: str = LEFT) -> None:
        """Append events of ``camera`` (``left`` or ``right``) that continue its stream in time (µs since
        ``t0_us``, the time base of both cameras)."""
        self._open_file()
        events.validate(
            self.sensor_size, source=self._source if camera == LEFT else f"{self._source} ({camera})"
        )
        columns = self._event_columns(camera)
        columns.ms_index.add(events.t_us)
        start, stop = columns.num_events, columns.num_events + len(events)
        for key, dataset in columns.datasets.items():
            dataset.resize((stop,))
            dataset[start:stop] = getattr(events, _EVENT_FIELDS[key])
        columns.num_events = stop

    def _new_group(self, key: str) -> h5py.Group:
        file = self._open_file()
        if key in file:
            raise ValueError(f"{self.path}: '{key}' is already written")
        return file.create_group(key)

    def _write_maps(self, group: h5py.Group, name: str, maps: ArrayLike, dtype: type) -> None:
        """One chunk per map, so a reader decompresses only the maps it asks for.

        ``maps`` may be any array-like with ``shape``, ``dtype`` and slicing along the first axis
        (an HDF5 dataset, :class:`~tinyflow.events.groundtruth.LazyMaps`): it is read block by block.
        """
        dataset = group.create_dataset(
            name, shape=maps.shape, dtype=dtype, chunks=(1, *maps.shape[1:]), **self._options
        )
        for start in range(0, maps.shape[0], MAP_BLOCK):
            stop = min(start + MAP_BLOCK, maps.shape[0])
            dataset[start:stop] = np.asarray(maps[start:stop]).astype(dtype, copy=False)

    def _check_maps(
        self, maps: ArrayLike, key: str, shape: tuple[int | str, ...], kinds: str, dims: dict
    ) -> None:
        check_array(maps, key, self._source, shape, kinds, dims)
        if maps.shape[0] == 0:
            raise EventDataError(f"{self._source}: key '{key}' has no maps; expected at least one")

    def add_flow(self, name: str, flow: FlowGT) -> None:
        """Store ground-truth flow set ``name`` (maps must have the sensor's H, W)."""
        if not name or "/" in name:
            raise ValueError(f"{self.path}: flow name must be non-empty without '/', got {name!r}")
        key, (height, width), dims = f"flow/{name}", self.sensor_size, {}
        maps, t_start, t_end = as_maps(flow.flow), np.asarray(flow.t_start_us), np.asarray(flow.t_end_us)
        self._check_maps(maps, f"{key}/flow", ("K", 2, height, width), "f", dims)
        check_array(t_start, f"{key}/t_start_us", self._source, ("K",), "iu", dims)
        check_array(t_end, f"{key}/t_end_us", self._source, ("K",), "iu", dims)
        check_intervals(t_start, t_end, key, self._source)  # as the reader checks them at open
        valid = None if flow.valid is None else as_maps(flow.valid)
        if valid is not None:
            check_array(valid, f"{key}/valid", self._source, ("K", height, width), "b", dims)
        group = self._new_group(key)
        self._write_maps(group, "flow", maps, np.float32)
        group.create_dataset("t_start_us", data=t_start.astype(np.int64))
        group.create_dataset("t_end_us", data=t_end.astype(np.int64))
        if valid is not None:
            self._write_maps(group, "valid", valid, np.bool_)

    def set_depth(self, depth: DepthGT) -> None:
        """Store depth maps float32 [K, H, W] in metres (NaN = invalid) at ``t_us`` [K]."""
        self._set_timed_maps("depth", "depth", as_maps(depth.depth), np.asarray(depth.t_us), "f", np.float32)

    def set_disparity(self, disparity: DisparityGT) -> None:
        """Store the left camera's disparity maps float32 [K, H, W] in pixels (NaN = left camera only)."""
        self._set_timed_maps(
            "disparity",
            "disparity",
            as_maps(disparity.disparity),
            np.asarray(disparity.t_us),
            "f",
            np.float32,
        )

    def set_frames(self, frames: Frames) -> None:
        """Store intensity frames uint8 [K, H, W] at ``t_us`` [K]."""
        images = as_maps(frames.images)
        if images.dtype != np.uint8:
            raise EventDataError(f"{self._source}: key 'images/images' must be uint8, got {images.dtype}")
        self._set_timed_maps("images", "images", images, np.asarray(frames.t_us), "u", np.uint8)

    def _set_timed_maps(
        self, group_key: str, name: str, maps: ArrayLike, t_us: np.ndarray, kinds: str, dtype: type
    ) -> None:
        dims: dict[str, int] = {}
        self._check_maps(maps, f"{group_key}/{name}", ("K", *self.sensor_size), kinds, dims)
        check_array(t_us, f"{group_key}/t_us", self._source, ("K",), "iu", dims)
        _check_non_decreasing(t_us, f"{group_key}/t_us", self._source)
        group = self._new_group(group_key)
        self._write_maps(group, name, maps, dtype)
        group.create_dataset("t_us", data=t_us.astype(np.int64))

    def set_calib(self, calib: Mapping[str, object]) -> None:
        """Store calibration arrays (intrinsics, distortion, rectification maps, ...) under /calib.

        Values are numeric arrays or scalars; nested mappings become nested groups.
        """
        self._write_tree(self._new_group("calib"), calib)

    def _write_tree(self, group: h5py.Group, tree: Mapping[str, object]) -> None:
        for key, value in tree.items():
            if isinstance(value, Mapping):
                self._write_tree(group.create_group(key), value)
                continue
            array, path = np.asarray(value), f"{group.name.lstrip('/')}/{key}"
            if array.dtype.kind not in "biuf":
                raise EventDataError(f"{self._source}: key '{path}' must be numeric, got dtype {array.dtype}")
            group.create_dataset(key, data=array)

    def close(self) -> Path:
        """Finish the file (``ms_to_idx``) and move it to the target path; returns the path."""
        file = self._open_file()
        if self.num_events == 0:
            self.abort()
            raise EventDataError(
                f"{self._source}: recording has no events; expected at least one appended event"
            )
        for camera, columns in self._columns.items():
            file.create_dataset(f"{events_group(camera)}/ms_to_idx", data=columns.ms_index.finish())
        file.close()
        self._file = None
        try:
            self._refuse_existing_target()
        except FileExistsError:
            self._tmp_path.unlink()
            raise
        os.replace(self._tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Discard everything written; the target path is left untouched."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> CanonicalWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_canonical(
    path: str | Path,
    events: Events,
    sensor_size: tuple[int, int],
    *,
    t0_us: int = 0,
    source: str = "unknown",
    flows: Mapping[str, FlowGT] | None = None,
    depth: DepthGT | None = None,
    frames: Frames | None = None,
    calib: Mapping[str, object] | None = None,
    right_events: Events | None = None,
    disparity: DisparityGT | None = None,
    compression: Compression = "gzip",
    overwrite: bool = False,
) -> Path:
    """Write a whole recording (events + optional ground truth) in the canonical layout; returns the path.

    ``events`` are the left camera's; ``right_events`` (same time base) make it a stereo recording.
    """
    with CanonicalWriter(
        path, sensor_size, t0_us=t0_us, source=source, compression=compression, overwrite=overwrite
    ) as writer:
        writer.append(events)
        if right_events is not None:
            writer.append(right_events, camera="right")
        for name, flow in (flows or {}).items():
            writer.add_flow(name, flow)
        if depth is not None:
            writer.set_depth(depth)
        if disparity is not None:
            writer.set_disparity(disparity)
        if frames is not None:
            writer.set_frames(frames)
        if calib is not None:
            writer.set_calib(calib)
    return writer.path


def _read_tree(group: h5py.Group) -> dict[str, object]:
    return {
        key: _read_tree(item) if isinstance(item, h5py.Group) else item[()] for key, item in group.items()
    }


class CanonicalEvents(H5Recording):
    """The events of one camera of a canonical file (``events/`` or ``right/events/``), read lazily.

    ``__init__`` reads only attributes and shapes and checks them (the whole-file pass over the events
    runs once, cached); data is read on access through a per-process handle, so the object can be sent to
    DataLoader worker processes. :class:`CanonicalRecording` is the left camera with its ground truth.
    """

    def __init__(self, path: str | Path, camera: str = LEFT) -> None:
        super().__init__(path)
        self.camera_name, self._group = camera, events_group(camera)
        src = str(self.path)
        with open_hdf5(self.path) as file, hdf5_errors(self.path):
            self.sensor_size = check_sensor_size(require_attr(file, "sensor_size", src), "sensor_size", src)
            self.t0_us = int(require_attr(file, "t0_us", src))
            version = int(file.attrs.get("format_version", FORMAT_VERSION))
            if version > FORMAT_VERSION:
                raise EventDataError(
                    f"{src}: format_version {version} is newer than supported ({FORMAT_VERSION})"
                )
            keys = event_keys(camera)
            self._num_events = check_event_columns(file, [keys.x, keys.y, keys.t, keys.p], src)
            table_key = f"{self._group}/ms_to_idx"
            table = check_array(require_key(file, table_key, src), table_key, src, ("M",), "iu")
            min_len = int(file[keys.t][-1]) // 1000 + 1
            if table.shape[0] < min_len:
                raise EventDataError(
                    f"{src}: key '{table_key}' must have at least {min_len} entries (last event at "
                    f"{int(file[keys.t][-1])} µs), got {table.shape[0]}"
                )
            self._check_metadata(file)
            self._check_once(lambda: self._check_contents(file))
        self._ms_table: np.ndarray | None = None

    @property
    def check_spec(self) -> str:
        camera = "" if self.camera_name == LEFT else f" camera={self.camera_name}"
        return f"{super().check_spec}{camera}"

    def _check_metadata(self, file: h5py.File) -> None:
        """Shapes and dtypes of what the reader offers besides the events (none: events only)."""

    def _check_contents(self, file: h5py.File) -> None:
        """The whole-file pass: every event and 'ms_to_idx' against the timestamps."""
        keys = event_keys(self.camera_name)
        built = self._scan(file, keys)
        check_ms_to_idx(
            file[f"{self._group}/ms_to_idx"][()], built, f"{self._group}/ms_to_idx", keys.t, str(self.path)
        )

    def _read_events(self, start: int, stop: int) -> Events:
        return Events(*(self._dataset(f"{self._group}/{key}")[start:stop] for key in ("x", "y", "t", "p")))

    def _read_t_us(self, start: int, stop: int) -> np.ndarray:
        return self._dataset(f"{self._group}/t")[start:stop].astype(np.int64, copy=False)

    def ms_to_idx(self) -> np.ndarray:
        if self._ms_table is None:
            self._ms_table = self._file[f"{self._group}/ms_to_idx"][:].astype(np.uint64, copy=False)
        return self._ms_table


class CanonicalRecording(CanonicalEvents):
    """Reads a canonical recording lazily: windows by slicing, GT maps one at a time on request.

    The recording is the left camera (``events/``) with the ground truth; :meth:`camera` gives the right
    camera of a stereo file (``right/events/``) as a :class:`CanonicalEvents`.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, LEFT)

    def _check_metadata(self, file: h5py.File) -> None:
        self._flow_sizes = {name: self._check_flow(file, name) for name in file.get("flow", {})}
        self._has = {key: self._check_timed_maps(file, key, name) for key, name in _TIMED_MAPS.items()}
        self._cameras = tuple(c for c in CAMERAS if events_group(c) in file)

    def _check_contents(self, file: h5py.File) -> None:
        """The whole-file pass: every event, 'ms_to_idx' against the timestamps, GT and frame times."""
        super()._check_contents(file)
        src = str(self.path)
        for name in self._flow_sizes:
            key = f"flow/{name}"
            check_intervals(file[f"{key}/t_start_us"][()], file[f"{key}/t_end_us"][()], key, src)
        for group, present in self._has.items():
            if present:
                check_non_decreasing(file[f"{group}/t_us"][()], f"{group}/t_us", src)

    @property
    def cameras(self) -> tuple[str, ...]:
        return self._cameras

    def camera(self, name: str) -> Recording:
        if name == LEFT or name not in self._cameras:
            return super().camera(name)
        return CanonicalEvents(self.path, name)

    def _check_flow(self, file: h5py.File, name: str) -> int:
        src, key, dims = str(self.path), f"flow/{name}", {}
        height, width = self.sensor_size
        check_array(
            require_key(file, f"{key}/flow", src), f"{key}/flow", src, ("K", 2, height, width), "f", dims
        )
        for times in ("t_start_us", "t_end_us"):
            check_array(require_key(file, f"{key}/{times}", src), f"{key}/{times}", src, ("K",), "iu", dims)
        if f"{key}/valid" in file:
            check_array(file[f"{key}/valid"], f"{key}/valid", src, ("K", height, width), "b", dims)
        return dims["K"]

    def _check_timed_maps(self, file: h5py.File, group: str, name: str) -> bool:
        if group not in file:
            return False
        src, dims = str(self.path), {}
        kinds = "u" if group == "images" else "f"
        check_array(
            require_key(file, f"{group}/{name}", src),
            f"{group}/{name}",
            src,
            ("K", *self.sensor_size),
            kinds,
            dims,
        )
        check_array(require_key(file, f"{group}/t_us", src), f"{group}/t_us", src, ("K",), "iu", dims)
        return True

    @property
    def flow_names(self) -> list[str]:
        return sorted(self._flow_sizes)

    def _flow_group(self, name: str) -> h5py.Group:
        if name not in self._flow_sizes:
            raise KeyError(f"{self.path}: no ground-truth flow '{name}' (available: {self.flow_names})")
        return self._file[f"flow/{name}"]

    def flow(self, name: str) -> FlowGT:
        group = self._flow_group(name)
        valid = group["valid"][:] if "valid" in group else None
        return FlowGT(group["flow"][:], group["t_start_us"][:], group["t_end_us"][:], valid)

    def flow_intervals(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        group = self._flow_group(name)
        return group["t_start_us"][:].astype(np.int64), group["t_end_us"][:].astype(np.int64)

    def flow_map(self, name: str, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        group = self._flow_group(name)
        if not 0 <= k < self._flow_sizes[name]:
            raise IndexError(
                f"{self.path}: flow '{name}' has {self._flow_sizes[name]} maps, asked for map {k}"
            )
        with hdf5_errors(self.path):
            return group["flow"][k], group["valid"][k] if "valid" in group else None

    def depth(self) -> DepthGT | None:
        if not self._has["depth"]:
            return None
        return DepthGT(self._file["depth/depth"][:], self._file["depth/t_us"][:])

    def depth_t_us(self) -> np.ndarray | None:
        return self._file["depth/t_us"][:].astype(np.int64) if self._has["depth"] else None

    def depth_map(self, k: int) -> np.ndarray:
        if not self._has["depth"]:
            raise KeyError(f"{self.path}: no depth ground truth")
        with hdf5_errors(self.path):
            return self._file["depth/depth"][k].astype(np.float32, copy=False)

    def disparity(self) -> DisparityGT | None:
        if not self._has["disparity"]:
            return None
        return DisparityGT(self._file["disparity/disparity"][:], self._file["disparity/t_us"][:])

    def frames(self) -> Frames | None:
        if not self._has["images"]:
            return None
        return Frames(self._file["images/images"][:], self._file["images/t_us"][:])

    def calib(self) -> dict[str, object]:
        """Calibration arrays stored under /calib (nested dicts for groups); empty if none."""
        return _read_tree(self._file["calib"]) if "calib" in self._file else {}
