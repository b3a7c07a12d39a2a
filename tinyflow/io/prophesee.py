"""Prophesee RAW files (Metavision): EVT 2.0 / 2.1 through faery, EVT 3.0 through evt3.

A RAW file is an ASCII header (lines ``% key value``) followed by the camera's event words. Read from
the header: the encoding (``% evt 3.0``, or ``% format EVT3;height=720;width=1280``) and the sensor size
(``% geometry 1280x720`` or the ``format`` line). Older files (Metavision 2.x) carry neither size: the
documented default of the camera their ``plugin_name`` names is used (:data:`CAMERA_SENSOR_SIZES`), or
the reader's ``sensor_size`` option.

Times are the camera clock in µs (since the camera started); ``t0_us`` of a converted file is the
first event's time on that clock. Polarity: the CD event's polarity bit, 1 = ON (brightness increase).
Triggers (``EXT_TRIGGER`` words) are kept on request as the table ``triggers``.

Why two decoders: evt3 (MIT) follows the file's ``TIME_HIGH``/``TIME_LOW`` words exactly, decodes byte
chunks (the ROS bag packets) as well as files, and decodes about as fast as faery (both far faster than the
HDF5 writer: ``scripts/bench_formats.py``); faery (LGPL-3.0) also reads EVT 2.0 and 2.1, which evt3 does not. On the EVT 3.0 sample they agree on every (x, y, p) and differ in time only where
the file has a ``TIME_LOW`` word out of order: faery keeps the later time, evt3 the word's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.io.h5 import check_sensor_size
from tinyflow.io.stream import CameraFile, Packet, SensorInfo, formats_module, structured_columns

HEADER_LIMIT = 1 << 20  # a header longer than this is not a RAW header
EVT3_BATCH_BYTES = 8 << 20  # bytes decoded per evt3 batch
# plugin_name pattern -> (height, width) of the sensor, for headers without a size (Prophesee's sensors)
CAMERA_SENSOR_SIZES: tuple[tuple[str, tuple[int, int], str], ...] = (
    (r"imx636|imx646|gen41|gen4(?!\d)", (720, 1280), "Prophesee Gen4 / Gen4.1 / IMX636 (HD)"),
    (r"genx320", (320, 320), "Prophesee GenX320"),
    (r"gen31|gen3(?!\d)", (480, 640), "Prophesee Gen3 / Gen3.1 (VGA)"),
)
_VERSIONS = {"2.0": "evt2", "2.1": "evt2.1", "3.0": "evt3", "evt2": "evt2", "evt21": "evt2.1", "evt3": "evt3"}
_NAMES = {"evt2": "EVT 2.0", "evt2.1": "EVT 2.1", "evt3": "EVT 3.0"}


def read_header(path: Path) -> tuple[dict[str, str], int]:
    """The ``% key value`` lines of a RAW file's header and the byte offset where the event words start."""
    header: dict[str, str] = {}
    offset = 0
    with Path(path).open("rb") as file:
        while file.peek(1)[:1] == b"%" and offset < HEADER_LIMIT:
            line = file.readline()
            offset += len(line)
            text = line[1:].decode("ascii", errors="replace").strip()
            if text == "end":
                break
            key, _, value = text.partition(" ")
            header[key] = value.strip()
    if not header:
        raise EventDataError(f"{path}: no RAW header (lines '% key value'); not a Prophesee RAW file?")
    return header, offset


def evt_version(header: dict[str, str], path: Path) -> str:
    """``evt2``, ``evt2.1`` or ``evt3`` from the ``evt`` or ``format`` header line."""
    raw = header.get("evt") or header.get("format", "").split(";")[0]
    version = _VERSIONS.get(raw.strip().lower())
    if version is None:
        raise EventDataError(
            f"{path}: header names no known event encoding (expected '% evt 2.0|2.1|3.0' or "
            f"'% format EVT2|EVT21|EVT3;...'), got evt={header.get('evt')!r} format={header.get('format')!r}"
        )
    return version


def header_sensor_size(header: dict[str, str]) -> tuple[int, int] | None:
    """``(height, width)`` from ``% geometry WxH`` or ``% format EVT3;height=H;width=W``, else None."""
    if match := re.fullmatch(r"(\d+)\s*x\s*(\d+)", header.get("geometry", "")):
        return int(match[2]), int(match[1])
    fields = dict(part.split("=", 1) for part in header.get("format", "").split(";")[1:] if "=" in part)
    if "height" in fields and "width" in fields:
        return int(fields["height"]), int(fields["width"])
    return None


def camera_sensor_size(header: dict[str, str]) -> tuple[tuple[int, int], str] | None:
    """The documented sensor size of the camera the header's ``plugin_name`` names, and its name."""
    plugin = header.get("plugin_name", "").lower()
    for pattern, size, name in CAMERA_SENSOR_SIZES:
        if re.search(pattern, plugin):
            return size, name
    return None


class PropheseeRawFile(CameraFile):
    """A Prophesee RAW file (EVT 2.0, 2.1 or 3.0).

    Args:
        path: the ``.raw`` file.
        streams: ``["triggers"]`` to keep the external trigger events (table ``triggers``: ``t_us``, ``id``,
            ``polarity``), else nothing besides the events.
        sensor_size: ``(height, width)`` for a header without a size and an unknown camera (ignored when
            the header gives one; an error when it disagrees).
    """

    layout = "prophesee_raw"
    side_streams = ("triggers",)

    def __init__(
        self, path: str | Path, streams: Sequence[str] = (), sensor_size: Sequence[int] | None = None
    ) -> None:
        super().__init__(path, streams)
        self.header, self.data_offset = read_header(self.path)
        self.version = evt_version(self.header, self.path)
        size, origin = header_sensor_size(self.header), "header"
        option = (
            None if sensor_size is None else check_sensor_size(sensor_size, "sensor_size", str(self.path))
        )
        if size is not None and option is not None and size != option:
            raise EventDataError(
                f"{self.path}: sensor_size={list(option)} disagrees with the header's {list(size)}"
            )
        if size is None and option is not None:
            size, origin = option, "the sensor_size option"
        if size is None and (known := camera_sensor_size(self.header)) is not None:
            size, origin = known[0], f"the default of {known[1]} (plugin_name {self.header['plugin_name']})"
        if size is None:
            raise EventDataError(
                f"{self.path}: the header gives no sensor size (no 'geometry' or 'format' line) and its "
                f"plugin_name {self.header.get('plugin_name')!r} is no known camera; pass sensor_size=[height, width]"
            )
        camera = " ".join(filter(None, [self.header.get("integrator_name"), self.header.get("plugin_name")]))
        self.info = SensorInfo(
            size,
            origin,
            camera or "unknown",
            _NAMES[self.version],
            "camera clock (µs)",
            "polarity bit, 1 = ON",
        )

    def packets(self) -> Iterator[Packet]:
        return self._evt3_packets() if self.version == "evt3" else self._faery_packets()

    def _evt3_packets(self) -> Iterator[Packet]:
        evt3 = formats_module("evt3", "EVT 3.0")
        size = self.path.stat().st_size
        keep = "triggers" in self.streams
        batches = evt3.decode_file_batches_with_triggers(str(self.path), batch_bytes=EVT3_BATCH_BYTES)
        for index, (events, triggers) in enumerate(batches):
            tables = {}
            if keep and len(triggers.timestamp):
                tables["triggers"] = {
                    "t_us": triggers.timestamp.astype(np.int64),
                    "id": triggers.id.astype(np.uint8),
                    "polarity": triggers.value.astype(np.uint8),
                }
            fraction = min(1.0, (index + 1) * EVT3_BATCH_BYTES / size)
            yield Packet(
                Events(events.x, events.y, events.t.astype(np.int64), events.p), fraction, None, tables
            )

    def _faery_packets(self) -> Iterator[Packet]:
        evt = formats_module("faery.extension", "EVT 2.0").evt
        height, width = self.info.sensor_size
        words = self.path.stat().st_size / 4
        count = 0
        with evt.Decoder(self.path, (width, height), self.version) as decoder:
            for packet in decoder:
                events, tables = packet.get("events"), {}
                if events is None:
                    events = np.zeros(0, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
                triggers = packet.get("triggers")
                if "triggers" in self.streams and triggers is not None and len(triggers):
                    tables["triggers"] = structured_columns(triggers)
                count += len(events) + (0 if triggers is None else len(triggers))
                yield Packet(
                    Events(
                        events["x"], events["y"], events["t"].astype(np.int64), events["on"].astype(np.uint8)
                    ),
                    min(1.0, count / words),
                    None,
                    tables,
                )
