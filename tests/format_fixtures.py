"""Tiny camera files in their original layouts, written through the libraries that write them: faery (Prophesee
RAW EVT 2.0 / 3.0, AEDAT4) and rosbags (ROS 1 and ROS 2 bags with event messages)."""

from __future__ import annotations

from pathlib import Path

import faery
import numpy as np
from faery.extension import evt
from rosbags import rosbag1, rosbag2

from tinyflow.io.prophesee import read_header
from tinyflow.io.rosbag import PACKET_TYPE, typestore

SENSOR = (48, 64)  # (height, width) of every fixture
FORMATS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "formats"


def random_events(
    rng: np.random.Generator, n: int = 6000, t0_us: int = 1_000, span_us: int = 200_000
) -> np.ndarray:
    """faery's event array (t µs, x, y, on), time-sorted, inside :data:`SENSOR`."""
    events = np.zeros(n, dtype=faery.EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(t0_us, t0_us + span_us, n))
    events["x"] = rng.integers(0, SENSOR[1], n)
    events["y"] = rng.integers(0, SENSOR[0], n)
    events["on"] = rng.integers(0, 2, n).astype(bool)
    return events


def write_raw(path: Path, events: np.ndarray, version: str) -> Path:
    """A Prophesee RAW file (``evt2`` or ``evt3``) through faery's encoder (its header gives the geometry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with evt.Encoder(path, version, False, (SENSOR[1], SENSOR[0]), True) as encoder:
        encoder.write({"events": events})
    return path


def write_aedat4(path: Path, events: np.ndarray) -> Path:
    """An AEDAT4 file with one events track through faery."""
    path.parent.mkdir(parents=True, exist_ok=True)
    faery.events_stream_from_array(events, dimensions=(SENSOR[1], SENSOR[0])).to_file(path)
    return path


def raw_body(path: Path) -> bytes:
    """The event words of a RAW file (what follows its ``%`` header lines)."""
    _, offset = read_header(path)
    return path.read_bytes()[offset:]


def _stamp(store, t_us: int):
    return store.types["builtin_interfaces/msg/Time"](
        sec=t_us // 1_000_000, nanosec=(t_us % 1_000_000) * 1000
    )


def _header(store, t_us: int):
    return store.types["std_msgs/msg/Header"](stamp=_stamp(store, t_us), frame_id="camera")


def write_packet_bag(path: Path, evt3_body: bytes, stamp_us: int, packet_bytes: int = 1024) -> Path:
    """A ROS 1 bag of ``event_camera_msgs/EventPacket`` messages: the EVT 3.0 words cut into packets (whole
    16-bit words), as metavision_driver publishes them."""
    store = typestore()
    packet = store.types[PACKET_TYPE]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rosbag1.Writer(path) as writer:
        connection = writer.add_connection("/event_camera/events", PACKET_TYPE, typestore=store)
        for index, start in enumerate(range(0, len(evt3_body), packet_bytes)):
            chunk = np.frombuffer(evt3_body[start : start + packet_bytes], np.uint8)
            message = packet(
                header=_header(store, stamp_us), height=SENSOR[0], width=SENSOR[1], seq=index, time_base=0,
                encoding="evt3", is_bigendian=False, events=chunk,
            )  # fmt: skip
            writer.write(connection, stamp_us * 1000 + index, store.serialize_ros1(message, PACKET_TYPE))
    return path


def write_array_bag(path: Path, events: np.ndarray, ros2: bool = False, per_message: int = 1000) -> Path:
    """A bag of ``dvs_msgs/EventArray`` messages (ROS 1 file, or ROS 2 folder without stored definitions)."""
    store = typestore()
    event, array, name = (
        store.types["dvs_msgs/msg/Event"],
        store.types["dvs_msgs/msg/EventArray"],
        "dvs_msgs/msg/EventArray",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if ros2:
        writer, serialize = rosbag2.Writer(path, version=8), store.serialize_cdr
    else:
        writer, serialize = rosbag1.Writer(path), store.serialize_ros1
    with writer:
        connection = writer.add_connection("/dvs/events", name, typestore=store)
        for start in range(0, len(events), per_message):
            part = events[start : start + per_message]
            items = [
                event(x=int(e["x"]), y=int(e["y"]), ts=_stamp(store, int(e["t"])), polarity=bool(e["on"]))
                for e in part
            ]
            message = array(
                header=_header(store, int(part["t"][0])), height=SENSOR[0], width=SENSOR[1], events=items
            )
            writer.write(connection, int(part["t"][0]) * 1000, serialize(message, name))
    return path
