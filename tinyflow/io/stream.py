"""Camera files read as a stream (Prophesee RAW, AEDAT4, ROS bags): the interface their readers share.

A camera file has no index: a reader (:class:`CameraFile`) decodes it in file order, packet by packet,
through a kept decoder library, with times in absolute µs on the file's own clock. :class:`CameraStream`
turns that into chunks of the canonical event model: times in µs since the first event (``t0_us``, the
first event's absolute time), made non-decreasing. Two consumers stream them in bounded memory:
:func:`write_camera_file` (to a canonical HDF5 file, atomically) and :func:`read_camera_file` (into memory,
up to a stated number of events).

Time order: a timestamp that steps back (a camera's glitch: an EVT 3.0 ``TIME_LOW`` word out of order) is
raised to the latest time before it, the rule faery applies while decoding EVT 2.0 and EVT 3.0; the
number of events raised is reported (:attr:`CameraStream.raised`).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import Frames
from tinyflow.io.canonical import CanonicalWriter, Compression
from tinyflow.io.memory import ArrayRecording

SIDE_STREAMS = ("frames", "imu", "triggers")  # what a camera file may hold besides its events
CHUNK_EVENTS = 1_000_000  # events gathered before a chunk is handed on (writes and memory stay bounded)
FORMATS_EXTRA = "pip install 'tinyflow[formats]'"


def formats_module(name: str, layout: str) -> ModuleType:
    """The decoder module ``name`` (``faery.extension``, ``evt3``, ``rosbags.highlevel``, ...), or an
    ImportError naming its package and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        package = name.split(".")[0]
        raise ImportError(f"reading {layout} files needs the '{package}' package: {FORMATS_EXTRA}") from error


@dataclass(frozen=True)
class SensorInfo:
    """What a camera file says about its sensor, or the documented default used instead.

    Attributes:
        sensor_size: ``(height, width)`` in pixels.
        sensor_size_from: where ``sensor_size`` came from (``header``, a camera default, an option).
        camera: the camera or software that wrote the file, as the file names it.
        encoding: the event encoding (``EVT 3.0``, ``AEDAT 4.0 events``, ...).
        clock: what the absolute times count (``t0_us`` is on this clock).
        polarity: how the file's polarity maps to ``p`` (1 = ON = brightness increase).
    """

    sensor_size: tuple[int, int]
    sensor_size_from: str
    camera: str
    encoding: str
    clock: str
    polarity: str


@dataclass(frozen=True)
class Packet:
    """Decoded data in file order; every time in absolute µs on the file's clock.

    Attributes:
        events: the packet's events (``t_us`` absolute), possibly none.
        fraction: how much of the file has been read after this packet, in [0, 1] (progress).
        frames: intensity frames uint8 [K, H, W] (only when kept).
        tables: side streams ``{name: {column: [K, ...]}}`` with a ``t_us`` column (only when kept).
    """

    events: Events
    fraction: float
    frames: Frames | None = None
    tables: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)


class CameraFile(abc.ABC):
    """One camera file, decoded in file order (:meth:`packets`).

    Subclasses set :attr:`layout`, :attr:`side_streams` (the side streams the layout can keep) and, in
    ``__init__``, :attr:`info`, reading only the file's header.

    Args:
        path: the file (or a ROS 2 bag's folder).
        streams: side streams to keep (``frames``, ``imu``, ``triggers``); the others are skipped.
    """

    layout: ClassVar[str]
    side_streams: ClassVar[tuple[str, ...]] = ()
    info: SensorInfo

    def __init__(self, path: str | Path, streams: Sequence[str] = ()) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file ({self.layout})")
        unknown = [s for s in streams if s not in self.side_streams]
        if unknown:
            raise EventDataError(
                f"{self.path}: {self.layout} files keep the side streams {list(self.side_streams)}, "
                f"asked for {unknown}"
            )
        self.streams = tuple(streams)

    @property
    def source(self) -> str:
        """What a converted file records as its ``source``: the layout, the file's name and the kept streams."""
        return f"{self.layout}:{self.path.name}" + (
            f" (with {', '.join(self.streams)})" if self.streams else ""
        )

    @abc.abstractmethod
    def packets(self) -> Iterator[Packet]:
        """The file's data in file order, decoded packet by packet."""


def structured_columns(array: np.ndarray) -> dict[str, np.ndarray]:
    """A decoder's structured array as table columns: field ``t`` (µs) becomes ``t_us``, the others keep
    their names (bools as uint8)."""
    columns = {"t_us": array["t"].astype(np.int64)}
    for name in array.dtype.names:
        if name != "t":
            values = array[name]
            columns[name] = values.astype(np.uint8) if values.dtype == np.bool_ else np.asarray(values)
    return columns


class MonotonicClock:
    """Makes consecutive arrays of timestamps non-decreasing: a time that steps back is raised to the
    latest time before it. :attr:`raised` counts the times changed."""

    def __init__(self) -> None:
        self.latest: int | None = None
        self.raised = 0

    def __call__(self, t_us: np.ndarray) -> np.ndarray:
        t_us = np.asarray(t_us, np.int64)
        if len(t_us) == 0:
            return t_us
        start = t_us if self.latest is None else np.concatenate([[self.latest], t_us])
        fixed = np.maximum.accumulate(start)[len(start) - len(t_us) :]
        self.raised += int(np.count_nonzero(fixed != t_us))
        self.latest = int(fixed[-1])
        return fixed


@dataclass
class StreamChunk:
    """Canonical data of a stretch of the file: times in µs since the stream's ``t0_us``."""

    events: Events
    fraction: float
    frames: Frames | None = None
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _concatenate_tables(
    parts: list[Mapping[str, Mapping[str, np.ndarray]]],
) -> dict[str, dict[str, np.ndarray]]:
    names = dict.fromkeys(name for part in parts for name in part)
    return {
        name: {
            column: np.concatenate([part[name][column] for part in parts if name in part])
            for column in next(part[name] for part in parts if name in part)
        }
        for name in names
    }


class CameraStream:
    """A camera file's packets as canonical chunks of at least ``chunk_events`` events (the last may hold
    fewer): times in µs since ``t0_us`` (the first event's absolute time), each stream made non-decreasing.

    Side-stream rows before the first event get negative times; packets before the first event are held
    back until it is known.
    """

    def __init__(self, file: CameraFile, chunk_events: int = CHUNK_EVENTS) -> None:
        self.file = file
        self.chunk_events = chunk_events
        self.t0_us: int | None = None
        self._clocks: dict[str, MonotonicClock] = {}

    @property
    def raised(self) -> int:
        """Events whose timestamp stepped back in the file and was raised to the latest before it."""
        return self._clocks["events"].raised if "events" in self._clocks else 0

    def _clock(self, name: str) -> MonotonicClock:
        return self._clocks.setdefault(name, MonotonicClock())

    def chunks(self) -> Iterator[StreamChunk]:
        """The file's chunks, in order; an :class:`EventDataError` naming the file if it holds no events."""
        pending: list[Packet] = []
        count = 0
        for packet in self.file.packets():
            if self.t0_us is None and len(packet.events):
                self.t0_us = int(packet.events.t_us[0])
            pending.append(packet)
            count += len(packet.events)
            if self.t0_us is not None and count >= self.chunk_events:
                yield self._merge(pending)
                pending, count = [], 0
        if self.t0_us is None:
            raise EventDataError(f"{self.file.path}: no events ({self.file.info.encoding})")
        if pending:
            yield self._merge(pending)

    def _merge(self, packets: list[Packet]) -> StreamChunk:
        events = Events.concatenate([p.events for p in packets])
        t_us = self._clock("events")(events.t_us) - self.t0_us
        frames = [p.frames for p in packets if p.frames is not None and len(p.frames.t_us)]
        merged_frames = None
        if frames:
            images = np.concatenate([f.images for f in frames])
            merged_frames = Frames(
                images, self._clock("frames")(np.concatenate([f.t_us for f in frames])) - self.t0_us
            )
        tables = _concatenate_tables([p.tables for p in packets])
        for name, columns in tables.items():
            columns["t_us"] = self._clock(name)(columns["t_us"]) - self.t0_us
        return StreamChunk(
            Events(events.x, events.y, t_us, events.p), packets[-1].fraction, merged_frames, tables
        )


Progress = Callable[[float, int], None]  # (fraction of the file read, events so far)


def write_camera_file(
    file: CameraFile,
    target: str | Path,
    compression: Compression = "gzip",
    progress: Progress | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> CameraStream:
    """Stream a camera file into a canonical file at ``target`` (events, and the kept side streams: frames
    to ``/images``, ``imu`` and ``triggers`` to ``/tables``), in bounded memory.

    The file appears at ``target`` only when complete; an existing ``target`` is never overwritten
    (:class:`~tinyflow.io.canonical.CanonicalWriter`). Returns the stream (its ``t0_us``, ``raised``).
    """
    stream = CameraStream(file, chunk_events)
    writer: CanonicalWriter | None = None
    count = 0
    try:
        for chunk in stream.chunks():
            if writer is None:
                writer = CanonicalWriter(
                    target,
                    file.info.sensor_size,
                    t0_us=stream.t0_us,
                    source=file.source,
                    compression=compression,
                )
            writer.append(chunk.events)
            if chunk.frames is not None:
                writer.append_frames(chunk.frames)
            for name, columns in chunk.tables.items():
                writer.append_table(name, columns)
            count += len(chunk.events)
            if progress is not None:
                progress(chunk.fraction, count)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    writer.close()
    if progress is not None:
        progress(1.0, count)
    return stream


def read_camera_file(file: CameraFile, max_events: int) -> ArrayRecording:
    """The whole camera file in memory (13 bytes per event), up to ``max_events`` events.

    Raises:
        EventDataError: the file holds more than ``max_events`` events: it should be converted
            (``scripts/convert.py files``) and read from the canonical file instead.
    """
    stream = CameraStream(file)
    parts: list[StreamChunk] = []
    count = 0
    for chunk in stream.chunks():
        count += len(chunk.events)
        if count > max_events:
            raise EventDataError(
                f"{file.path}: holds more than {max_events:,} events, the limit for reading a camera file "
                "into memory (data.max_events_in_memory); convert it to a canonical file in bounded memory "
                f"(python scripts/convert.py files {file.path} DST) and read DST with data=h5dir"
            )
        parts.append(chunk)
    frames = [c.frames for c in parts if c.frames is not None]
    return ArrayRecording(
        file.path,
        Events.concatenate([c.events for c in parts]),
        file.info.sensor_size,
        stream.t0_us,
        frames=Frames(np.concatenate([f.images for f in frames]), np.concatenate([f.t_us for f in frames]))
        if frames
        else None,
        tables=_concatenate_tables([c.tables for c in parts]),
    )
