"""UZH-FPV Drone Racing (Delmerico et al., ICRA 2019; DAVIS346): the original text archives.

A recording is the folder of a ``<name>_davis[_with_gt].zip`` archive (https://fpv.ifi.uzh.ch/)::

    events.txt       t[s] x y p                                  raw (distorted) pixels, p in {0, 1}
    images.txt       id t[s] img/image_0_XXX.png
    imu.txt          id t[s] wx wy wz ax ay az                   (rad/s, m/s^2)
    groundtruth.txt  id t[s] tx ty tz qx qy qz qw                (only in *_with_gt)

and the environment's calibration (``<env>_calib_davis.zip``, a Kalibr ``camchain-imucam-*.yaml``
with ``cam0``: ``intrinsics [fu, fv, pu, pv]``, ``distortion_model: equidistant``,
``distortion_coeffs [k1..k4]``, ``resolution [w, h]``). Events stay on the raw pixel grid; the
equidistant (fisheye) camera and its maps go to ``/calib``: ``undistort_map`` (undistorted (x, y)
of each raw pixel) and ``distort_map`` (raw (x, y) of each undistorted pixel, to remap frames).

The drone stands on the ground at the start and end of a recording. With ground truth, the recording
is cut to its airborne span: from the first to the last pose more than ``airborne_height_m`` above
the first pose. Times are µs since the first event kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import yaml

from tinyflow.events.camera import Camera
from tinyflow.events.core import EventDataError, Events
from tinyflow.io.images import read_listed_frames
from tinyflow.io.memory import ArrayRecording
from tinyflow.io.recording import seconds_to_us
from tinyflow.io.text import read_events_txt, read_table

AIRBORNE_HEIGHT_M = 0.2
GROUNDTRUTH_COLUMNS = ("id", "t", "tx", "ty", "tz", "qx", "qy", "qz", "qw")
FOLDER_SUFFIXES = ("_davis_with_gt", "_davis", "")


def read_kalibr_camera(path: Path) -> tuple[Camera, tuple[int, int]]:
    """``cam0`` of a Kalibr camchain yaml: the camera and its sensor size ``(height, width)``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such calibration file (Kalibr camchain yaml)")
    cam = (yaml.safe_load(path.read_text()) or {}).get("cam0")
    required = ("intrinsics", "distortion_coeffs", "distortion_model", "resolution")
    if not isinstance(cam, dict) or any(key not in cam for key in required):
        raise EventDataError(f"{path}: expected a 'cam0' entry with keys {list(required)}")
    if cam["distortion_model"] != "equidistant" or len(cam["intrinsics"]) != 4 or len(cam["resolution"]) != 2:
        raise EventDataError(
            f"{path}: expected cam0 'distortion_model: equidistant', 4 intrinsics and a 2-entry resolution, "
            f"got {cam['distortion_model']!r}, {cam['intrinsics']}, {cam['resolution']}"
        )
    width, height = (int(v) for v in cam["resolution"])
    camera = Camera(
        *(float(v) for v in cam["intrinsics"]),
        tuple(float(v) for v in cam["distortion_coeffs"]),
        "equidistant",
    )
    return camera, (height, width)


def _short_name(folder_name: str) -> str:
    return next(folder_name.removesuffix(s) for s in FOLDER_SUFFIXES if folder_name.endswith(s))


def find_recordings(root: Path) -> list[str]:
    """Names (``indoor_forward_3``, ...) of the recording folders with an ``events.txt`` below ``root``."""
    return sorted({_short_name(p.parent.name) for p in Path(root).rglob("events.txt")})


def _recording_folder(root: Path, name: str) -> Path:
    for suffix in FOLDER_SUFFIXES:
        matches = sorted(p.parent for p in Path(root).rglob(f"{name}{suffix}/events.txt"))
        if matches:
            return matches[0]
    raise FileNotFoundError(
        f"{root}: no folder '{name}_davis_with_gt', '{name}_davis' or '{name}' with an events.txt"
    )


def find_calibration(root: Path, name: str) -> Path:
    """The camchain yaml of the recording's environment (``indoor_forward_3`` -> ``indoor_forward_calib_davis``)."""
    environment = re.sub(r"_\d+$", "", name)
    matches = sorted(Path(root).rglob(f"{environment}_calib_davis*/camchain-*.yaml"))
    if not matches:
        raise FileNotFoundError(
            f"{root}: no '{environment}_calib_davis/camchain-*.yaml' (unzip {environment}_calib_davis.zip there)"
        )
    return matches[0]


def airborne_span_s(groundtruth: Path, height_m: float) -> tuple[float, float]:
    """``(first, last)`` time (s) of the poses more than ``height_m`` above the first pose."""
    poses = read_table(groundtruth, GROUNDTRUTH_COLUMNS)
    airborne = np.flatnonzero(poses[:, 4] - poses[0, 4] > height_m)
    if len(airborne) == 0:
        raise EventDataError(
            f"{groundtruth}: no pose is more than {height_m} m above the first; no airborne span"
        )
    return float(poses[airborne[0], 1]), float(poses[airborne[-1], 1])


def open_uzh_fpv(
    root: Path,
    name: str,
    *,
    calibration: str | Path | None = None,
    airborne_height_m: float | None = AIRBORNE_HEIGHT_M,
    load_frames: bool = False,
) -> ArrayRecording:
    """Read UZH-FPV DAVIS recording ``name`` below ``root`` into memory (see the module docstring).

    Args:
        calibration: the camchain yaml; None: found below ``root`` by the environment's name.
        airborne_height_m: cut to the airborne span when ``groundtruth.txt`` exists; None keeps it whole.
        load_frames: also read the frames (needs OpenCV).
    """
    folder = _recording_folder(root, name)
    camera, sensor_size = read_kalibr_camera(
        Path(calibration) if calibration else find_calibration(root, name)
    )
    events, t0_s = read_events_txt(folder / "events.txt", sensor_size)
    if airborne_height_m is not None and (folder / "groundtruth.txt").is_file():
        first_s, last_s = airborne_span_s(folder / "groundtruth.txt", airborne_height_m)
        begin, end = np.searchsorted(
            events.t_us, seconds_to_us(np.array([first_s, last_s]), t0_s), side="left"
        )
        if begin >= end:
            raise EventDataError(f"{folder}: no events in the airborne span [{first_s}, {last_s}] s")
        t0_s += float(events.t_us[begin]) * 1e-6
        kept = events[begin:end]
        events = Events(kept.x, kept.y, kept.t_us - kept.t_us[0], kept.p)
    frames = None
    if load_frames and (folder / "images.txt").is_file():
        frames = read_listed_frames(
            folder / "images.txt", t0_s, int(events.t_us[-1]), sensor_size, with_id=True
        )
    calib = {
        **camera.calib(),
        "undistort_map": camera.undistort_map(sensor_size),
        "distort_map": camera.distort_map(sensor_size),
    }
    return ArrayRecording(
        folder.parent / name, events, sensor_size, round(t0_s * 1e6), frames=frames, calib=calib
    )
