"""AEDAT 4.0 files (iniVation DV): events, and on request frames, IMU samples and triggers, through faery.

An AEDAT4 file holds tracks (streams), each a series of LZ4/zstd-compressed packets; its XML description
names each track's type and, for events and frames, the sensor size (``sizeX``, ``sizeY``): the reader
takes the size from there. Times are µs of Unix time (DV's clock); ``t0_us`` of a converted file is the
first event's time. Polarity: DV's ``polarity`` flag, true = ON (brightness increase).

Side streams, kept on request: ``frames`` (8-bit grey APS frames at their exposure-centre time ``t``, to
``/images``), ``imu`` (DV's IMU samples: accelerometer in g, gyroscope in °/s, magnetometer, temperature °C,
to the table ``imu``) and ``triggers`` (DV's trigger events with their ``source`` code, table ``triggers``).

faery (LGPL-3.0, Rust) is the decoder: it embeds the ``aedat`` package's decoder (same authors, MIT) and
reads RAW EVT 2.0 too, so one package serves both layouts; their speeds are the same
(``scripts/bench_formats.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.events.groundtruth import Frames
from tinyflow.io.stream import CameraFile, Packet, SensorInfo, formats_module, structured_columns

_TRACK_STREAMS = {"frame": "frames", "imus": "imu", "triggers": "triggers"}


def _walk(nodes: list) -> Iterator:
    """Every node of an AEDAT4 description tree, depth first."""
    for node in nodes:
        yield node
        yield from _walk(node.nodes)


def _aedat():
    return formats_module("faery.extension", "AEDAT4").aedat


class Aedat4File(CameraFile):
    """An AEDAT 4.0 file; its first events track (or track ``track``) is the recording.

    Args:
        path: the ``.aedat4`` file.
        streams: side streams to keep: ``frames``, ``imu``, ``triggers``.
        track: id of the events track to read, or None for the first one.
    """

    layout = "aedat4"
    side_streams = ("frames", "imu", "triggers")

    def __init__(self, path: str | Path, streams: Sequence[str] = (), track: int | None = None) -> None:
        super().__init__(path, streams)
        try:
            with _aedat().Decoder(self.path) as decoder:
                tracks = decoder.tracks()
                self._packet_count = len(decoder.file_data_definitions())
                sources = {
                    node.path: str(node.attributes["source"].value)
                    for node in _walk(decoder.description())
                    if "source" in node.attributes
                }
        except RuntimeError as error:
            raise EventDataError(f"{self.path}: not a readable AEDAT 4.0 file ({error})") from error
        events = [t for t in tracks if t.data_type == "events" and (track is None or t.id == track)]
        if not events:
            found = [(t.id, t.data_type) for t in tracks]
            wanted = "an events track" if track is None else f"events track {track}"
            raise EventDataError(f"{self.path}: no {wanted}; tracks (id, type) found: {found}")
        self.track = events[0].id
        width, height = events[0].dimensions
        self._kept = {
            t.id: _TRACK_STREAMS[t.data_type] for t in tracks if _TRACK_STREAMS.get(t.data_type) in streams
        }
        camera = sources.get(f"/mainloop/Recorder/outInfo/{self.track}/info/", "iniVation DV")
        self.info = SensorInfo(
            (height, width),
            "header",
            camera,
            "AEDAT 4.0 events",
            "Unix time (µs, DV clock)",
            "polarity flag, true = ON",
        )

    def packets(self) -> Iterator[Packet]:
        with _aedat().Decoder(self.path) as decoder:
            for index, (track, data) in enumerate(decoder):
                fraction = (index + 1) / max(self._packet_count, 1)
                if track.id == self.track:
                    yield Packet(
                        Events(data["x"], data["y"], data["t"].astype(np.int64), data["on"].astype(np.uint8)),
                        fraction,
                    )
                elif track.id in self._kept:
                    yield self._side_packet(self._kept[track.id], data, fraction)

    def _side_packet(self, stream: str, data: object, fraction: float) -> Packet:
        none = Events.empty()
        if stream != "frames":
            return Packet(none, fraction, tables={stream: structured_columns(data)})
        if data.format != "L" or data.pixels.shape != self.info.sensor_size:
            raise EventDataError(
                f"{self.path}: frames to keep must be 8-bit grey ('L') of the sensor size "
                f"{list(self.info.sensor_size)}, got {data.format!r} {list(data.pixels.shape)}"
            )
        return Packet(
            none, fraction, Frames(data.pixels[None].astype(np.uint8), np.array([data.t], np.int64))
        )
