"""ROS bags (ROS 1 ``.bag`` files, ROS 2 bag folders) holding event messages, through rosbags and evt3.

One topic of event messages is the recording (the reader's ``topic``, or the bag's only event topic):

- ``event_camera_msgs/EventPacket`` (ros-event-camera drivers, e.g. metavision_driver): each packet's
  ``events`` bytes continue one camera stream in ``encoding`` ``evt3``, decoded by evt3's streaming
  decoder across packets. Times: the sensor clock, placed on ROS time by the first packet's
  ``header.stamp`` (the ROS time of its first event). Polarity: the EVT 3.0 bit, 1 = ON.
- ``dvs_msgs/EventArray`` (rpg_dvs_ros) and ``prophesee_event_msgs/EventArray`` (prophesee_ros_wrapper):
  one ``Event`` (``x``, ``y``, ``ts``, ``polarity``) per event; times: each event's ``ts`` (ROS time).
  Polarity: true / 1 = ON.

The sensor size is the messages' ``height`` and ``width``. Other topics (images, IMU, ...) are skipped.
Message definitions are read from the bag (ROS 1 bags carry them); for ROS 2 bags without them the
definitions of these three messages are registered (:data:`MESSAGE_DEFINITIONS`). rosbags (Apache-2.0) is
pure Python and needs no ROS install; evt3 (MIT) is the EVT 3.0 decoder that takes byte chunks. evt3's
streaming decoder returns no trigger events, so triggers in packets are not kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.io.stream import CameraFile, Packet, SensorInfo, formats_module

PACKET_TYPE = "event_camera_msgs/msg/EventPacket"
ARRAY_TYPES = ("dvs_msgs/msg/EventArray", "prophesee_event_msgs/msg/EventArray")
MESSAGE_DEFINITIONS = {
    PACKET_TYPE: "std_msgs/Header header\nuint32 height\nuint32 width\nuint64 seq\nuint64 time_base\n"
    "string encoding\nbool is_bigendian\nuint8[] events\n",
    "dvs_msgs/msg/Event": "uint16 x\nuint16 y\ntime ts\nbool polarity\n",
    "dvs_msgs/msg/EventArray": "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n",
    "prophesee_event_msgs/msg/Event": "uint16 x\nuint16 y\ntime ts\nint16 polarity\n",
    "prophesee_event_msgs/msg/EventArray": "std_msgs/Header header\nuint32 height\nuint32 width\n"
    "prophesee_event_msgs/Event[] events\n",
}
ENCODINGS = ("evt3",)


def typestore():
    """rosbags' ROS 2 Humble type store with the event messages of :data:`MESSAGE_DEFINITIONS` added."""
    typesys = formats_module("rosbags.typesys", "ROS bag")
    store = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
    types = {}
    for name, text in MESSAGE_DEFINITIONS.items():
        types.update(typesys.get_types_from_msg(text, name))
    store.register(types)
    return store


def _time_us(stamp: object) -> int:
    return int(stamp.sec) * 1_000_000 + int(stamp.nanosec) // 1000


def is_ros2_bag(path: Path) -> bool:
    """Whether ``path`` is a ROS 2 bag folder (it holds ``metadata.yaml``)."""
    return path.is_dir() and (path / "metadata.yaml").is_file()


class RosBagFile(CameraFile):
    """One topic of event messages of a ROS 1 or ROS 2 bag.

    Args:
        path: a ROS 1 ``.bag`` file or a ROS 2 bag folder.
        streams: no side streams are kept from bags (only ``[]``).
        topic: the topic to read; None: the bag's only topic of event messages.
    """

    layout = "rosbag"
    side_streams = ()

    def __init__(self, path: str | Path, streams: Sequence[str] = (), topic: str | None = None) -> None:
        super().__init__(path, streams)
        with self._reader() as reader:
            events = [c for c in reader.connections if c.msgtype in (PACKET_TYPE, *ARRAY_TYPES)]
            chosen = [c for c in events if topic is None or c.topic == topic]
            found = sorted({(c.topic, c.msgtype) for c in reader.connections})
            if not chosen or len({c.topic for c in chosen}) > 1:
                what = "no topic of event messages" if not chosen else "several topics of event messages"
                wanted = f" named {topic!r}" if topic is not None and not chosen else ""
                raise EventDataError(
                    f"{self.path}: {what}{wanted} ({', '.join((PACKET_TYPE, *ARRAY_TYPES))}); pass topic=...; "
                    f"topics (topic, type) found: {found}"
                )
            self.topic, self.msgtype = chosen[0].topic, chosen[0].msgtype
            self._count = sum(c.msgcount for c in chosen)
            first = next(reader.messages(connections=chosen), None)
            if first is None:
                raise EventDataError(f"{self.path}: topic {self.topic} has no messages")
            message = reader.deserialize(first[2], first[0].msgtype)
        if self.msgtype == PACKET_TYPE and message.encoding not in ENCODINGS:
            raise EventDataError(
                f"{self.path}: topic {self.topic}: event packets of encoding {message.encoding!r}; "
                f"readable encodings: {list(ENCODINGS)}"
            )
        encoding = f"{self.msgtype}" + (f" ({message.encoding})" if self.msgtype == PACKET_TYPE else "")
        polarity = "EVT 3.0 polarity bit, 1 = ON" if self.msgtype == PACKET_TYPE else "polarity true / 1 = ON"
        self.info = SensorInfo(
            (int(message.height), int(message.width)),
            "header",
            f"ROS topic {self.topic} (frame_id {message.header.frame_id!r})",
            encoding,
            "ROS time (µs)",
            polarity,
        )

    def _reader(self):
        highlevel = formats_module("rosbags.highlevel", "ROS bag")
        try:
            return highlevel.AnyReader([self.path], default_typestore=typestore())
        except highlevel.AnyReaderError as error:
            raise EventDataError(f"{self.path}: not a readable ROS bag ({error})") from error

    def packets(self) -> Iterator[Packet]:
        decode = self._decode_packets if self.msgtype == PACKET_TYPE else self._decode_arrays
        with self._reader() as reader:
            connections = [c for c in reader.connections if c.topic == self.topic]
            messages = (
                reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=connections)
            )
            for index, events in enumerate(decode(messages)):
                yield Packet(events, (index + 1) / max(self._count, 1))

    def _decode_packets(self, messages: Iterator) -> Iterator[Events]:
        evt3 = formats_module("evt3", "EVT 3.0 event packet")
        height, width = self.info.sensor_size
        decoder = evt3.Decoder(sensor_width=width, sensor_height=height)
        offset_us = None
        for message in messages:
            events = decoder.feed(np.asarray(message.events, np.uint8).tobytes())
            t_us = events.t.astype(np.int64)
            if offset_us is None and len(t_us):
                offset_us = _time_us(message.header.stamp) - int(t_us[0])
            yield Events(events.x, events.y, t_us + (offset_us or 0), events.p)
        decoder.finish()

    @staticmethod
    def _decode_arrays(messages: Iterator) -> Iterator[Events]:
        for message in messages:
            events = message.events
            yield Events(
                np.array([e.x for e in events], np.uint16),
                np.array([e.y for e in events], np.uint16),
                np.array([_time_us(e.ts) for e in events], np.int64),
                np.array([int(e.polarity) > 0 for e in events], np.uint8),
            )
