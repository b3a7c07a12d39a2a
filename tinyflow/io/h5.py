"""HDF5 plumbing shared by the readers: checks that name the file and key, and a lazily opened handle."""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the blosc/zstd HDF5 filters for every reader)
import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.io.checks import CHECK_CHUNK, EventKeys, Reader, check_once, file_identity, scan_events
from tinyflow.io.recording import Recording


def check_hdf5_file(path: Path) -> Path:
    """Return ``path`` if it is an existing, readable HDF5 file, else raise naming the path."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected an HDF5 event recording)")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{path}: no permission to read it (expected an HDF5 event recording)")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as error:
        raise EventDataError(f"{path}: cannot be read ({error})") from error
    if not is_hdf5:
        raise EventDataError(f"{path}: not an HDF5 file (expected an HDF5 event recording)")
    return path


def open_hdf5(path: Path, **options: object) -> h5py.File:
    """``path`` opened read-only; an error naming it when HDF5 cannot read it (e.g. a truncated file).

    ``options`` go to :class:`h5py.File` (e.g. ``rdcc_nbytes``).
    """
    path = check_hdf5_file(Path(path))
    try:
        return h5py.File(path, "r", **options)
    except OSError as error:
        raise EventDataError(
            f"{path}: HDF5 cannot read it ({error}); a truncated or corrupted file?"
        ) from error


@contextlib.contextmanager
def hdf5_errors(source: str | Path) -> Iterator[None]:
    """Turn an HDF5 read error (e.g. a corrupted chunk) inside the block into one naming ``source``."""
    try:
        yield
    except (FileNotFoundError, PermissionError):
        raise
    except OSError as error:
        raise EventDataError(
            f"{source}: HDF5 cannot read it ({error}); a truncated or corrupted file?"
        ) from error


def require_key(group: h5py.Group, key: str, source: str) -> h5py.Dataset | h5py.Group:
    """``group[key]``, or an error naming the missing key and the keys found beside it."""
    if key in group:
        return group[key]
    parent = key.rpartition("/")[0]
    found = sorted(group[parent].keys()) if parent and parent in group else sorted(group.keys())
    where = f"'{parent}'" if parent else "the root"
    raise EventDataError(f"{source}: missing key '{key}'; keys found in {where}: {found}")


def require_attr(obj: h5py.Group | h5py.Dataset, name: str, source: str) -> object:
    """The HDF5 attribute ``name`` of ``obj``, or an error naming it and the attributes found."""
    if name in obj.attrs:
        return obj.attrs[name]
    raise EventDataError(
        f"{source}: key '{obj.name.lstrip('/')}' has no attribute '{name}'; "
        f"attributes found: {sorted(obj.attrs)}"
    )


_KIND_WORDS = {"i": "signed integer", "u": "unsigned integer", "f": "floating-point", "b": "bool"}


def check_array(
    array: np.ndarray | h5py.Dataset,
    key: str,
    source: str,
    shape: Sequence[int | str],
    kinds: str,
    dims: dict[str, int] | None = None,
) -> np.ndarray | h5py.Dataset:
    """Check the shape and dtype kind of an array or HDF5 dataset (no data is read).

    Args:
        array: the numpy array or HDF5 dataset.
        key: its name, quoted in errors.
        source: the file it belongs to, quoted in errors.
        shape: expected shape, one entry per axis: an int for a fixed size, or a name (``"K"``)
            for a size that must agree with every other axis of that name checked with ``dims``.
        kinds: accepted numpy dtype kinds, e.g. ``"iu"`` (any integer), ``"f"``, ``"b"``.
        dims: sizes bound to names so far; updated in place.

    Raises:
        EventDataError: naming the source, the key, the expected and the actual shape or dtype.
    """
    dims = {} if dims is None else dims
    expected = ", ".join(f"{s}={dims[s]}" if isinstance(s, str) and s in dims else str(s) for s in shape)
    actual = tuple(array.shape)
    fits = len(actual) == len(shape) and all(
        dims.setdefault(s, size) == size if isinstance(s, str) else size == s
        for s, size in zip(shape, actual, strict=True)
    )
    if not fits:
        raise EventDataError(f"{source}: key '{key}' must have shape [{expected}], got {list(actual)}")
    if array.dtype.kind not in kinds:
        words = " or ".join(_KIND_WORDS[k] for k in kinds)
        raise EventDataError(f"{source}: key '{key}' must have a {words} dtype, got {array.dtype}")
    return array


def check_event_columns(file: h5py.File, keys: Sequence[str], source: str, time_kinds: str = "iu") -> int:
    """Check the per-event arrays ``keys`` (x, y, t, p, in that order): 1-D, of one length N > 0; return N.

    ``time_kinds`` are the numpy dtype kinds accepted for the timestamps (``"iu"`` for integer µs,
    ``"f"`` for float seconds).
    """
    dims: dict[str, int] = {}
    for key, kinds in zip(keys, ("iu", "iu", time_kinds, "iub"), strict=True):
        check_array(require_key(file, key, source), key, source, ("N",), kinds, dims)
    if dims["N"] == 0:
        raise EventDataError(f"{source}: recording has no events (key {keys[2]!r} is empty)")
    return dims["N"]


def polarity_to_uint8(raw: np.ndarray, key: str, source: str) -> np.ndarray:
    """Stored polarity (bool, {0, 1} or {-1, +1}, integer or float) -> uint8 0 = OFF, 1 = ON."""
    if raw.dtype == np.bool_:
        return raw.astype(np.uint8)
    bad = (raw != 0) & (raw != 1) & (raw != -1)
    if np.any(bad):
        raise EventDataError(f"{source}: key '{key}' must hold polarities 0/1 or -1/+1, got {raw[bad][0]}")
    return (raw == 1).astype(np.uint8)


def check_sensor_size(value: object, key: str, source: str) -> tuple[int, int]:
    """``(height, width)`` from two whole numbers in [1, 65536] (pixel coordinates fit uint16)."""
    size = np.asarray(value)
    whole = size.shape == (2,) and size.dtype.kind in "iuf" and bool(np.all(size == np.round(size)))
    if not whole or size.min() < 1 or size.max() > 65536:
        raise EventDataError(
            f"{source}: '{key}' must be (height, width), two integers in [1, 65536], got {value!r}"
        )
    return int(size[0]), int(size[1])


def column_reader(
    file: h5py.File, keys: EventKeys, to_us: Callable[[np.ndarray], np.ndarray] | None = None
) -> Reader:
    """A :func:`~tinyflow.io.checks.scan_events` reader of four 1-D event datasets ``keys.x`` .. ``keys.p``.

    Args:
        to_us: stored timestamps -> int64 µs since t0 (None: they are integer µs already).
    """
    columns = [file[key] for key in (keys.x, keys.y, keys.t, keys.p)]
    num_events = columns[2].shape[0]

    def read(
        start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        whole = (start, stop) == (0, num_events)  # [()] skips h5py's slice parsing: ~10 % on small files
        x, y, raw_t, p = (column[()] if whole else column[start:stop] for column in columns)
        if to_us is None:
            return x, y, raw_t.astype(np.int64, copy=False), p, None
        with np.errstate(invalid="ignore"):  # NaN seconds: the check reports them from raw_t
            t_us = to_us(raw_t)
        return x, y, t_us, p, raw_t

    return read


class H5Recording(Recording):
    """Base of the HDF5 readers: a lazily opened, per-process file handle that survives pickling.

    Subclasses read only attributes and shapes in ``__init__`` and check the contents once through
    :meth:`_check_once` (cached by file identity, see :mod:`tinyflow.io.checks`), closing the file
    again; they set ``sensor_size``, ``t0_us`` and ``_num_events``, and implement ``_read_events``.
    The handle is reopened in each process that reads (e.g. DataLoader workers), through
    :func:`open_hdf5`, and is never pickled; a file that changed on disk since it was opened is an
    error then, as its checked metadata no longer holds.
    """

    _chunk_cache_bytes = 32 * 2**20
    check_chunk = CHECK_CHUNK  # events per read of the whole-file check at open

    def __init__(self, path: str | Path) -> None:
        self.path = check_hdf5_file(Path(path))
        self._identity = file_identity(self.path)
        self._num_events = 0
        self._handle: h5py.File | None = None
        self._handle_pid: int | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._datasets_of: h5py.File | None = None

    @property
    def num_events(self) -> int:
        return self._num_events

    @property
    def check_spec(self) -> str:
        """The reader and the options its verdict depends on (part of the cache key of the check)."""
        return f"{type(self).__name__} sensor_size={tuple(self.sensor_size)}"

    def _check_once(self, check: Callable[[], np.ndarray | None]) -> np.ndarray | None:
        """Run the whole-file ``check`` unless a cached verdict holds; returns its result (None if cached)."""
        return check_once(self.path, self.check_spec, check)

    def _scan(
        self, file: h5py.File, keys: EventKeys, read: Reader | None = None, **options: object
    ) -> np.ndarray:
        """Check every event (:func:`~tinyflow.io.checks.scan_events`); returns the ``ms_to_idx`` they give."""
        reader = column_reader(file, keys) if read is None else read
        return scan_events(
            str(self.path),
            keys,
            self._num_events,
            reader,
            self.sensor_size,
            chunk=self.check_chunk,
            **options,
        )

    @property
    def _file(self) -> h5py.File:
        if self._handle is None or self._handle_pid != os.getpid():
            if file_identity(self.path) != self._identity:
                raise EventDataError(
                    f"{self.path}: the file changed on disk since it was opened and checked (size, mtime or "
                    "inode differ); open it again"
                )
            self._handle = open_hdf5(self.path, rdcc_nbytes=self._chunk_cache_bytes)
            self._handle_pid = os.getpid()
        return self._handle

    def _dataset(self, key: str) -> h5py.Dataset:
        """Dataset ``key`` of the file, opened once per handle: an open dataset keeps its decompressed chunks
        (HDF5's chunk cache, ``_chunk_cache_bytes``) between reads, so nearby windows decompress nothing
        again (reopening it per read costs a whole chunk's decompression each time)."""
        file = self._file
        if self._datasets_of is not file:
            self._datasets, self._datasets_of = {}, file
        if key not in self._datasets:
            self._datasets[key] = file[key]
        return self._datasets[key]

    @abc.abstractmethod
    def _read_events(self, start: int, stop: int) -> Events:
        """Events ``[start, stop)`` as stored (converted to x, y, t_us, p but not yet validated)."""

    def events(self, start: int, stop: int) -> Events:
        """Events with indices in ``[start, stop)``, validated, as uint16 x, y, int64 t_us, uint8 p."""
        if not 0 <= start <= stop <= self._num_events:
            raise IndexError(f"{self.path}: event range [{start}, {stop}) is outside [0, {self._num_events})")
        try:
            raw = self._read_events(start, stop)
        except OSError as error:
            raise EventDataError(
                f"{self.path}: HDF5 cannot read events [{start:,}, {stop:,}) ({error}); a corrupted file?"
            ) from error
        ev = raw.validate(self.sensor_size, source=str(self.path))
        return Events(
            ev.x.astype(np.uint16, copy=False),
            ev.y.astype(np.uint16, copy=False),
            ev.t_us.astype(np.int64, copy=False),
            ev.p.astype(np.uint8, copy=False),
        )

    def close(self) -> None:
        if self._handle is not None and self._handle_pid == os.getpid():
            self._handle.close()
        self._handle = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_handle": None, "_handle_pid": None, "_datasets": {}, "_datasets_of": None}
