"""Which camera files tinyflow reads (Prophesee RAW, AEDAT4, ROS bags), found by name, opened by layout."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinyflow.events.core import EventDataError
from tinyflow.io.aedat4 import Aedat4File
from tinyflow.io.prophesee import PropheseeRawFile
from tinyflow.io.rosbag import RosBagFile, is_ros2_bag
from tinyflow.io.stream import CameraFile

CAMERA_SUFFIXES: dict[str, type[CameraFile]] = {
    ".raw": PropheseeRawFile,
    ".aedat4": Aedat4File,
    ".bag": RosBagFile,
}
HDF5_SUFFIXES = (".h5", ".hdf5")
SUPPORTED = (
    "Prophesee .raw, .aedat4, ROS 1 .bag, ROS 2 bag folders (metadata.yaml), canonical / event_flow .h5"
)


def camera_file_class(path: Path) -> type[CameraFile] | None:
    """The reader of a camera file or ROS 2 bag folder, by its name; None for anything else."""
    path = Path(path)
    if is_ros2_bag(path):
        return RosBagFile
    return CAMERA_SUFFIXES.get(path.suffix.lower()) if path.is_file() else None


def open_camera_file(
    path: str | Path, streams: Sequence[str] = (), options: Mapping[str, Any] | None = None
) -> CameraFile:
    """The camera file at ``path`` opened by the reader of its layout (header read, nothing decoded).

    Args:
        streams: side streams to keep (``frames``, ``imu``, ``triggers``; what the layout has).
        options: reader options; each reader takes the ones it knows (``sensor_size`` for RAW, ``track``
            for AEDAT4, ``topic`` for bags), the others are ignored; None values are left out.
    """
    path = Path(path)
    reader = camera_file_class(path)
    if reader is None:
        what = "no such file or folder" if not path.exists() else "not a supported camera file"
        raise EventDataError(f"{path}: {what}; supported: {SUPPORTED}")
    accepted = inspect.signature(reader).parameters
    kwargs = {k: v for k, v in dict(options or {}).items() if k in accepted and v is not None}
    return reader(path, streams, **kwargs)


def find_event_files(folder: str | Path) -> list[Path]:
    """Every camera file, ROS 2 bag folder and HDF5 recording below ``folder`` (recursively), sorted.

    Raises:
        FileNotFoundError: ``folder`` does not exist, or holds no supported file (listing what it holds).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist or is not a directory")
    bags = sorted(p.parent for p in folder.rglob("metadata.yaml") if is_ros2_bag(p.parent))
    inside_bag = lambda p: any(bag in p.parents for bag in bags)  # noqa: E731
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and (p.suffix.lower() in CAMERA_SUFFIXES or p.suffix in HDF5_SUFFIXES)
        and not inside_bag(p)
    ]
    found = sorted([*files, *bags])
    if not found:
        present = sorted(p.name for p in folder.iterdir())[:10]
        raise FileNotFoundError(
            f"data folder {folder} holds no event recordings ({SUPPORTED}); found: {present}"
        )
    stems = [p.stem for p in found]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise EventDataError(
            f"data folder {folder}: recordings must have distinct names; several are named {twins}"
        )
    return found
