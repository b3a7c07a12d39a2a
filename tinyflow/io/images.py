"""Image files: 8-bit grey frames and 16-bit PNGs, through OpenCV (``pip install opencv-python-headless``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from tinyflow.events.core import EventDataError
from tinyflow.events.groundtruth import Frames
from tinyflow.io.recording import seconds_to_us


def opencv() -> ModuleType:
    """The ``cv2`` module, or an ImportError saying how to install it."""
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            "reading and writing dataset images needs OpenCV: pip install 'tinyflow[datasets]' "
            "(opencv-python-headless)"
        ) from error
    return cv2


def read_image(path: Path, flags: int) -> np.ndarray:
    """An image file read with OpenCV ``flags``; an error naming the file if it is missing or unreadable."""
    cv2 = opencv()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise EventDataError(f"{path}: not a readable image file")
    return image


def read_gray_images(
    paths: Sequence[Path], sensor_size: tuple[int, int], remap_xy: np.ndarray | None = None
) -> np.ndarray:
    """uint8 [K, H, W] grey frames; ``remap_xy`` float32 [H, W, 2] samples each output pixel (bilinear)."""
    cv2 = opencv()
    images = np.zeros((len(paths), *sensor_size), np.uint8)
    for k, path in enumerate(paths):
        image = read_image(path, cv2.IMREAD_GRAYSCALE)
        if image.shape != tuple(sensor_size):
            raise EventDataError(
                f"{path}: expected a {sensor_size[1]}x{sensor_size[0]} image, got {image.shape[::-1]}"
            )
        if remap_xy is not None:
            image = cv2.remap(image, remap_xy[..., 0], remap_xy[..., 1], cv2.INTER_LINEAR)
        images[k] = image
    return images


def read_listed_frames(
    listing: Path,
    t0_s: float,
    t_last_us: int,
    sensor_size: tuple[int, int],
    remap_xy: np.ndarray | None = None,
    with_id: bool = False,
) -> Frames:
    """Frames of an ``images.txt`` (``[id] t[s] path`` per line) up to ``t_last_us`` µs since ``t0_s``.

    Frames after the last event are skipped (a cut recording may lack their files); paths are
    relative to the listing's folder.
    """
    fields = 3 if with_id else 2
    rows = [
        line.split() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    if any(len(row) != fields for row in rows):
        raise EventDataError(f"{listing}: expected lines '{'id ' if with_id else ''}t[s] image_path'")
    t_us = seconds_to_us(np.array([float(row[-2]) for row in rows]), t0_s)
    keep = t_us <= t_last_us
    paths = [listing.parent / row[-1] for row, k in zip(rows, keep, strict=True) if k]
    return Frames(read_gray_images(paths, sensor_size, remap_xy), t_us[keep])
