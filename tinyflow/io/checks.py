"""Whole-file checks of event recordings, run once when a file is opened and cached by file identity.

A reader checks a file's metadata (keys, shapes, dtypes, attributes) on every open, which reads no
event data. The contents are checked by one chunked pass over every event (:class:`EventStreamCheck`):
non-decreasing timestamps (also across chunks), coordinates inside the sensor, polarity values, finite
float timestamps; and the small per-file arrays (GT flow intervals, ``ms_to_idx``). Every error is one
:class:`~tinyflow.events.core.EventDataError` naming the file, the key, the event's index counted from
the start of the file (or its line in a text file) and what was expected.

The verdict of the pass is cached (:func:`check_once`), one small JSON file per checked file, in
``~/.cache/tinyflow/file_checks/`` (``$TINYFLOW_CACHE_DIR/file_checks/`` when that is set, else
``$XDG_CACHE_HOME/tinyflow/file_checks/`` when that is), named by a hash of the file's absolute path::

    {"format": 1, "path": "/abs/path/rec.h5", "size": 123, "mtime_ns": 1, "ctime_ns": 1, "inode": 9,
     "checker": 1, "specs": ["CanonicalRecording sensor_size=(64, 64)"], "seconds": 0.41, "checked_at": 1.7e9}

A verdict holds only when the file's size, mtime, ctime and inode and the checker version match and
it lists the spec (the reader and the options that change the verdict); a changed file is checked
again. Only successful checks are cached, and not those of files modified less than ``RACY_NS``
before the check began (file times tick coarsely: a rewrite right after the check could keep size and
mtime). One file per verdict keeps a lookup and a write O(1) however many recordings were checked,
and needs no lock: each entry is written to a temporary file in the same folder and moved in place
with ``os.replace``, so concurrent processes never see a torn entry (two writers of one entry both
hold a valid verdict; the last stays). A cache that cannot be read or written only costs a new check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from tinyflow.events.core import EventDataError

CHECKER_VERSION = 1  # bump when a check changes: cached verdicts of older checkers are ignored
CHECK_CHUNK = 1 << 21  # events per read of the whole-file pass (2,097,152: ~27 MB of canonical columns)
CACHE_ENV = "TINYFLOW_CACHE_DIR"
CACHE_NAME = "file_checks"  # the folder of verdicts inside the cache folder
CACHE_FORMAT = 1
MAX_CACHE_ENTRIES = 4096  # above this, verdicts of deleted or changed files go, then the oldest
RACY_NS = 2_000_000_000  # a file modified this recently when its check starts is not cached (see check_once)

_log = logging.getLogger(__name__)
T = TypeVar("T")

# ----------------------------------------------------------------------------- the event pass


@dataclass(frozen=True)
class EventKeys:
    """How a layout stores its events, as quoted in errors.

    Attributes:
        x, y, t, p: where each column lives, e.g. ``events/t`` or ``davis/left/events[:, 2]``.
        polarities: ``(lowest, highest)`` whole polarity values allowed (bool is always allowed).
        polarity_words: the allowed values in words.
        t_unit: unit of the raw timestamps (``µs``, or ``s`` for float seconds).
    """

    x: str
    y: str
    t: str
    p: str
    polarities: tuple[int, int] = (0, 1)
    polarity_words: str = "0 (OFF) or 1 (ON)"
    t_unit: str = "µs"


def file_position(index: int) -> str:
    """Where event ``index`` of an HDF5 file is, in words."""
    return f"event {index:,} of the file"


def _number(value: object) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class EventStreamCheck:
    """Checks one file's events chunk by chunk, in order; errors quote indices from the start of the file.

    Also builds ``ms_to_idx`` (entry k: the first event with ``t_us >= k`` ms) as the chunks pass.

    Args:
        source: the file, quoted in errors.
        keys: the layout's columns.
        sensor_size: ``(height, width)``: coordinates must lie in ``[0, width) x [0, height)``.
        min_t_us: the lowest timestamp allowed (µs since t0), or None for no bound.
        position: event index -> where it is in the file, in words (e.g. a text file's line).
    """

    def __init__(
        self,
        source: str,
        keys: EventKeys,
        sensor_size: tuple[int, int],
        *,
        min_t_us: int | None = 0,
        position: Callable[[int], str] = file_position,
    ) -> None:
        self.source, self.keys, self.sensor_size = source, keys, tuple(sensor_size)
        self.min_t_us, self.position = min_t_us, position
        self.num_events = 0
        self._last_t_us: int | None = None
        self._next_ms = 0
        self._ms_parts: list[np.ndarray] = []

    def _fail(self, what: str, key: str, index: int) -> EventDataError:
        return EventDataError(f"{self.source}: {what} (key '{key}', {self.position(index)})")

    def add(
        self,
        x: np.ndarray,
        y: np.ndarray,
        t_us: np.ndarray,
        p: np.ndarray,
        t_raw: np.ndarray | None = None,
    ) -> None:
        """Check the next chunk: columns as stored, timestamps as int64 µs since t0.

        Args:
            t_raw: the stored timestamps when they are float (checked to be finite before ``t_us``).
        """
        start = self.num_events
        lengths = {len(x), len(y), len(t_us), len(p)}
        if len(lengths) != 1:
            raise EventDataError(
                f"{self.source}: event columns of one read differ in length {sorted(lengths)} "
                f"(events from {start:,})"
            )
        if len(t_us) == 0:
            return
        self._check_time(t_us, t_raw, start)
        height, width = self.sensor_size
        self._check_coordinate("x", x, width, self.keys.x, start)
        self._check_coordinate("y", y, height, self.keys.y, start)
        self._check_polarity(p, start)
        last_ms = int(t_us[-1]) // 1000
        ticks = np.arange(self._next_ms, last_ms + 1, dtype=np.int64) * 1000
        self._ms_parts.append(start + np.searchsorted(t_us, ticks, side="left"))
        self._next_ms = last_ms + 1
        self._last_t_us = int(t_us[-1])
        self.num_events += len(t_us)

    def _check_time(self, t_us: np.ndarray, t_raw: np.ndarray | None, start: int) -> None:
        key, unit = self.keys.t, self.keys.t_unit
        if t_raw is not None and t_raw.dtype.kind == "f":
            finite = np.isfinite(t_raw)
            if not finite.all():
                i = int(np.argmin(finite))
                raise self._fail(
                    f"events key 't' must be finite timestamps; t[{start + i}]={t_raw[i]} {unit}",
                    key,
                    start + i,
                )
        if self._last_t_us is None and self.min_t_us is not None and t_us[0] < self.min_t_us:
            raise self._fail(
                f"events key 't' must be >= {self.min_t_us} µs since t0; t[{start}]={int(t_us[0])} µs",
                key,
                start,
            )
        if self._last_t_us is not None and t_us[0] < self._last_t_us:
            self._raise_decrease(start, int(t_us[0]), self._last_t_us)
        drops = t_us[1:] < t_us[:-1]
        if drops.any():
            i = int(np.argmax(drops)) + 1
            self._raise_decrease(start + i, int(t_us[i]), int(t_us[i - 1]))

    def _raise_decrease(self, index: int, t_us: int, previous_us: int) -> None:
        raise self._fail(
            f"events key 't' must be non-decreasing; t[{index}]={t_us} µs < t[{index - 1}]={previous_us} µs",
            self.keys.t,
            index,
        )

    def _check_coordinate(self, name: str, values: np.ndarray, limit: int, key: str, start: int) -> None:
        expected = f"must lie in [0, {limit - 1}] for sensor_size (height, width)={self.sensor_size}"
        if values.dtype.kind == "f":
            whole = values == np.rint(values)  # False for NaN
            if not whole.all():
                i = int(np.argmin(whole))
                raise self._fail(
                    f"events key '{name}' must be whole pixels; {name}[{start + i}]={values[i]}",
                    key,
                    start + i,
                )
        elif values.dtype.kind not in "iu":
            raise EventDataError(
                f"{self.source}: key '{key}' must have an integer dtype (pixel coordinates), got {values.dtype}"
            )
        low_ok = values.dtype.kind == "u" or values.min() >= 0
        if low_ok and values.max() < limit:
            return
        i = int(np.argmax((values < 0) | (values >= limit)))
        raise self._fail(
            f"events key '{name}' {expected}; {name}[{start + i}]={_number(values[i])}", key, start + i
        )

    def _check_polarity(self, p: np.ndarray, start: int) -> None:
        if p.dtype == np.bool_:
            return
        low, high = self.keys.polarities
        if p.dtype.kind == "f":
            bad = (p != np.rint(p)) | (p < low) | (p > high)  # NaN != NaN
        elif p.dtype.kind in "iu":
            if p.min() >= low and p.max() <= high:
                return
            bad = (p < low) | (p > high)
        else:
            raise EventDataError(
                f"{self.source}: key '{self.keys.p}' must have an integer, float or bool dtype, got {p.dtype}"
            )
        if bad.any():
            i = int(np.argmax(bad))
            raise self._fail(
                f"events key 'p' must be {self.keys.polarity_words}; p[{start + i}]={_number(p[i])}",
                self.keys.p,
                start + i,
            )

    def ms_to_idx(self) -> np.ndarray:
        """uint64 [last_ms + 2]: entry k is the first event with ``t_us >= k`` ms (the last one: N)."""
        return np.concatenate([*self._ms_parts, [self.num_events]]).astype(np.uint64)


Reader = Callable[[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]


def scan_events(
    source: str,
    keys: EventKeys,
    num_events: int,
    read: Reader,
    sensor_size: tuple[int, int],
    *,
    chunk: int = CHECK_CHUNK,
    min_t_us: int | None = 0,
) -> np.ndarray:
    """Check every event of a file, ``chunk`` events per read; returns the ``ms_to_idx`` it implies.

    Args:
        read: ``read(start, stop)`` -> ``(x, y, t_us, p, t_raw)`` of events ``[start, stop)``: columns as
            stored, ``t_us`` int64 µs since t0, ``t_raw`` the stored float timestamps or None.

    Raises:
        EventDataError: the first bad event, quoting the file, key and index; also when HDF5 cannot read
            a chunk (a corrupted file).
    """
    if num_events <= 0:
        raise EventDataError(f"{source}: recording has no events (key '{keys.t}' is empty)")
    check = EventStreamCheck(source, keys, sensor_size, min_t_us=min_t_us)
    for start in range(0, num_events, chunk):
        stop = min(start + chunk, num_events)
        try:
            columns = read(start, stop)
        except OSError as error:
            raise EventDataError(
                f"{source}: HDF5 cannot read events [{start:,}, {stop:,}) ({error}); a corrupted file?"
            ) from error
        check.add(*columns)
    return check.ms_to_idx()


def check_ms_to_idx(stored: np.ndarray, built: np.ndarray, key: str, t_key: str, source: str) -> None:
    """A stored ``ms_to_idx`` agrees with the one the timestamps give (entries past the last event: N).

    Args:
        stored: the file's table (at least one entry per ms up to the last event's ms).
        built: :meth:`EventStreamCheck.ms_to_idx` of the file's timestamps (its last entry is N).
    """
    num_events = int(built[-1])
    expected = np.full(len(stored), num_events, np.uint64)
    common = min(len(stored), len(built))
    expected[:common] = built[:common]
    stored = np.asarray(stored).astype(np.uint64, copy=False)
    wrong = stored != expected
    if wrong.any():
        k = int(np.argmax(wrong))
        raise EventDataError(
            f"{source}: key '{key}' disagrees with '{t_key}' at entry {k:,}: it holds {int(stored[k])}, but the "
            f"first event with t >= {k * 1000} µs is event {int(expected[k])}"
        )


def check_non_decreasing(values: np.ndarray, key: str, source: str, unit: str = "µs") -> None:
    """A small array of times (GT map times, frame times) is non-decreasing; the error quotes the entry."""
    values = np.asarray(values)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        k = int(np.argmin(np.isfinite(values)))
        raise EventDataError(f"{source}: key '{key}' must be finite; entry {k} is {values[k]}")
    drops = values[1:] < values[:-1]
    if drops.any():
        k = int(np.argmax(drops)) + 1
        raise EventDataError(
            f"{source}: key '{key}' must be non-decreasing; entry {k} is {_number(values[k])} {unit} "
            f"< {_number(values[k - 1])} {unit} of entry {k - 1}"
        )


def check_intervals(t_start: np.ndarray, t_end: np.ndarray, key: str, source: str) -> None:
    """GT intervals ``[t_start[k], t_end[k]]``: both ends non-decreasing over k, and ``t_end >= t_start``."""
    check_non_decreasing(t_start, f"{key}/t_start_us", source)
    check_non_decreasing(t_end, f"{key}/t_end_us", source)
    backwards = np.asarray(t_end) < np.asarray(t_start)
    if backwards.any():
        k = int(np.argmax(backwards))
        raise EventDataError(
            f"{source}: key '{key}/t_end_us' must be >= t_start_us for every map; map {k} ends at "
            f"{int(t_end[k])} µs, before it starts ({int(t_start[k])} µs)"
        )


# ----------------------------------------------------------------------------- the verdict cache


def cache_dir() -> Path:
    """The cache folder: ``$TINYFLOW_CACHE_DIR/file_checks``, else ``~/.cache/tinyflow/file_checks``."""
    folder = os.environ.get(CACHE_ENV)
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "tinyflow"
    return Path(folder) / CACHE_NAME


def entry_path(path: str | Path) -> Path:
    """The cache entry of a file: ``<cache_dir>/<sha256 of its absolute path, 32 hex digits>.json``."""
    key = str(Path(path).resolve())
    return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def file_identity(path: str | Path) -> dict[str, int]:
    """What changes when a file is rewritten: size, mtime and ctime (ns) and inode."""
    stat = os.stat(path)
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
    }


def _read_entry(entry: Path) -> dict | None:
    try:
        data = json.loads(entry.read_text())
    except (OSError, ValueError):  # missing, unreadable, or torn by a crash: no verdict
        return None
    return data if isinstance(data, dict) and data.get("format") == CACHE_FORMAT else None


def _matches(entry: dict | None, path: str, identity: dict[str, int], spec: str) -> bool:
    return (
        entry is not None
        and entry.get("path") == path
        and entry.get("checker") == CHECKER_VERSION
        and spec in entry.get("specs", ())
        and all(entry.get(k) == v for k, v in identity.items())
    )


def is_checked(path: str | Path, spec: str) -> bool:
    """Whether the cache holds a successful check of this very file (same identity) with this ``spec``."""
    key = str(Path(path).resolve())
    return _matches(_read_entry(entry_path(key)), key, file_identity(key), spec)


def _write_atomic(target: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=1, sort_keys=True)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record_checked(path: str | Path, spec: str, identity: dict[str, int], seconds: float) -> None:
    """Record a successful verdict (keeping the other specs checked on the same file version)."""
    key = str(Path(path).resolve())
    entry = entry_path(key)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        old = _read_entry(entry)
        same = old is not None and all(old.get(k) == v for k, v in identity.items())
        kept = (
            [s for s in old.get("specs", []) if s != spec]
            if same and old.get("checker") == CHECKER_VERSION
            else []
        )
        _write_atomic(
            entry,
            {
                "format": CACHE_FORMAT,
                "path": key,
                **identity,
                "checker": CHECKER_VERSION,
                "specs": [*kept, spec][-8:],
                "seconds": round(seconds, 4),
                "checked_at": time.time(),
            },
        )
        if old is None:
            prune_cache()
    except OSError as error:  # a read-only or full cache folder: the file is checked again next time
        _log.debug("file check cache %s not written: %s", entry, error)


def prune_cache(max_entries: int = MAX_CACHE_ENTRIES) -> int:
    """Above ``max_entries`` entries, drop those of deleted or changed files, then the oldest; returns the number dropped."""
    folder = cache_dir()
    entries = [e for e in os.scandir(folder) if e.name.endswith(".json")] if folder.is_dir() else []
    if len(entries) <= max_entries:
        return 0
    stale, live = [], []
    for item in entries:
        data = _read_entry(Path(item.path))
        path = data.get("path") if data else None
        try:
            current = file_identity(path) if isinstance(path, str) else None
        except OSError:
            current = None
        if current is None or any(data.get(k) != v for k, v in current.items()):
            stale.append(item.path)
        else:
            live.append((data.get("checked_at", 0), item.path))
    drop = stale + [p for _, p in sorted(live)[: max(0, len(live) - max_entries)]]
    for entry in drop:
        with contextlib.suppress(OSError):
            os.unlink(entry)
    return len(drop)


def check_once(path: str | Path, spec: str, check: Callable[[], T]) -> T | None:
    """Run ``check()`` unless the cache holds a successful verdict for this file and ``spec``.

    Returns:
        What ``check`` returned, or None when the cached verdict stood.

    The verdict is recorded only when ``check`` returns, the file did not change meanwhile and its mtime
    is more than ``RACY_NS`` older than the start of the check: file times tick coarsely (a few ms on
    Linux, up to 2 s elsewhere), so a file written again right after its check could keep its size and
    mtime (the "racy clean" case of git's index). Such a file is checked again on its next open.
    """
    key = str(Path(path).resolve())
    identity = file_identity(key)
    if _matches(_read_entry(entry_path(key)), key, identity, spec):
        return None
    start, started_ns = time.perf_counter(), time.time_ns()
    result = check()
    settled = started_ns - identity["mtime_ns"] > RACY_NS
    if settled and file_identity(key) == identity:
        record_checked(key, spec, identity, time.perf_counter() - start)
    return result
