"""A DataModule over a folder of a user's recordings in any supported layout (``data=files``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinyflow.data.datamodule import EventDataModule
from tinyflow.io.camera_files import camera_file_class, find_event_files, open_camera_file
from tinyflow.io.recording import Recording
from tinyflow.io.registry import open_recording
from tinyflow.io.stream import read_camera_file
from tinyflow.io.view import RecordingView

MAX_EVENTS_IN_MEMORY = 100_000_000  # 1.3 GB of events (13 bytes each)


def open_event_file(
    path: Path,
    reader: Mapping[str, Any] | None = None,
    max_events_in_memory: int = MAX_EVENTS_IN_MEMORY,
    crop: Sequence[int] | None = None,
    downscale: int = 1,
) -> Recording:
    """A recording of any supported file: a camera file decoded into memory, an HDF5 file read lazily;
    seen through a centre ``crop`` (height, width) and an integer ``downscale`` when given.

    Args:
        reader: camera-file reader options (``sensor_size``, ``topic``, ``track``, ``streams``).
    """
    options = dict(reader or {})
    streams = options.pop("streams", None) or ()
    if camera_file_class(path) is None:
        recording = open_recording(path)
    else:
        recording = read_camera_file(open_camera_file(path, streams, options), max_events_in_memory)
    if crop is None and downscale == 1:
        return recording
    return RecordingView(recording, crop=None if crop is None else tuple(crop), downscale=downscale)


class FilesDataModule(EventDataModule):
    """Every recording below ``root``: Prophesee RAW, AEDAT4, ROS bags and HDF5 files (canonical or
    event_flow layout) alike; ``root/train`` and ``root/val`` when both exist.

    Camera files are decoded into memory when the data is set up (up to ``max_events_in_memory`` events
    each; convert larger ones with ``scripts/convert.py files``, whose canonical files are read lazily).

    Args:
        root: the folder, searched recursively.
        reader: camera-file reader options: ``sensor_size`` (RAW files whose header has none),
            ``topic`` (bags), ``track`` (AEDAT4), ``streams`` (side streams to keep).
        max_events_in_memory: the most events a camera file may hold to be read directly.
        crop: ``[height, width]`` centre crop of every recording, or None (full sensor).
        downscale: integer factor after the crop (pixel (x, y) -> (x // f, y // f)); 1 = none.
        kwargs: :class:`~tinyflow.data.datamodule.EventDataModule` arguments.
    """

    def __init__(
        self,
        root: str | Path,
        reader: Mapping[str, Any] | None = None,
        max_events_in_memory: int = MAX_EVENTS_IN_MEMORY,
        crop: Sequence[int] | None = None,
        downscale: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.reader = dict(reader or {})
        self.max_events_in_memory = max_events_in_memory
        self.crop = None if crop is None else tuple(crop)
        self.downscale = downscale

    def _split(self, name: str) -> list[Recording]:
        both = (self.root / "train").is_dir() and (self.root / "val").is_dir()
        paths = find_event_files(self.root / name if both else self.root)
        return [
            open_event_file(path, self.reader, self.max_events_in_memory, self.crop, self.downscale)
            for path in paths
        ]

    def train_paths(self) -> list[Recording]:
        return self._split("train")

    def val_paths(self) -> list[Recording]:
        return self._split("val")
