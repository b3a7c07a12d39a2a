"""Event Camera Dataset (Mueggler et al., IJRR 2017; DAVIS240C): the original text layout.

One folder per recording (https://rpg.ifi.uzh.ch/davis_data.html, "zip" downloads)::

    events.txt       t[s] x y p                 raw (distorted) pixels, p in {0, 1}
    calib.txt        fx fy cx cy k1 k2 p1 p2 k3 (pixels, OpenCV radtan)
    imu.txt          t[s] ax ay az gx gy gz      (m/s^2, rad/s; DAVIS IMU, axes as the camera's)
    images.txt       t[s] images/frame_XXXXXXXX.png
    groundtruth.txt  t[s] px py pz qx qy qz qw  (not needed here)
    motion.txt       wx wy wz [rad/s]           (only in the tub-rip sample slices: one angular velocity)

Events (and frames) are undistorted onto the pinhole grid of the same intrinsics and rounded to the
nearest pixel; events that leave the 240x180 frame are dropped. For rotation-only recordings
(``*_rotation``) the reader adds dense GT flow ``gyro``: the rotational motion field of the mean
angular velocity over each window of ``gt_events_per_window`` events (event_flow evaluates ECD every
15,000 events), which does not depend on depth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyflow.events.camera import Camera, remap_events, rotational_flow
from tinyflow.events.core import EventDataError
from tinyflow.events.groundtruth import FlowGT
from tinyflow.io.images import read_listed_frames
from tinyflow.io.memory import ArrayRecording
from tinyflow.io.recording import seconds_to_us
from tinyflow.io.text import read_events_txt, read_table

SENSOR_SIZE = (180, 240)  # DAVIS240C (height, width)
ROTATION_FLOW = "gyro"
GT_EVENTS_PER_WINDOW = 15_000
CALIB_COLUMNS = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")
IMU_COLUMNS = ("t", "ax", "ay", "az", "gx", "gy", "gz")


def read_calib(path: Path) -> Camera:
    """The camera of an ECD ``calib.txt``: ``fx fy cx cy k1 k2 p1 p2 k3``."""
    (fx, fy, cx, cy, *distortion), *rest = read_table(path, CALIB_COLUMNS)
    if rest:
        raise EventDataError(f"{path}: expected one line '{' '.join(CALIB_COLUMNS)}', got {len(rest) + 1}")
    return Camera(fx, fy, cx, cy, tuple(distortion), "radtan")


def find_recordings(root: Path) -> list[str]:
    """Names of the recording folders (holding an ``events.txt``) directly inside ``root``."""
    return sorted(p.parent.name for p in Path(root).glob("*/events.txt"))


def count_window_intervals(t_us: np.ndarray, events_per_window: int) -> tuple[np.ndarray, np.ndarray]:
    """``(t_start_us, t_end_us)`` of consecutive windows of ``events_per_window`` events (partial tail dropped).

    A window ends where the next one starts (one µs after the last event for the final window), so
    the events in ``[t_start, t_end)`` are exactly the window's events when no timestamp is shared
    across a window boundary.
    """
    starts = np.arange(0, len(t_us) - events_per_window + 1, events_per_window)
    ends = starts + events_per_window
    t_end = np.where(ends < len(t_us), t_us[np.minimum(ends, len(t_us) - 1)], t_us[ends - 1] + 1)
    return t_us[starts].astype(np.int64), t_end.astype(np.int64)


def mean_angular_velocity(
    imu_t_us: np.ndarray, gyro: np.ndarray, t_start_us: np.ndarray, t_end_us: np.ndarray
) -> np.ndarray:
    """float64 [K, 3]: gyro readings (rad/s) averaged over each interval (interpolated where none fall in it)."""
    out = np.empty((len(t_start_us), 3))
    for k, (a, b) in enumerate(zip(t_start_us, t_end_us, strict=True)):
        inside = (imu_t_us >= a) & (imu_t_us < b)
        if inside.any():
            out[k] = gyro[inside].mean(axis=0)
        else:
            out[k] = [np.interp((a + b) / 2, imu_t_us, gyro[:, i]) for i in range(3)]
    return out


def _angular_velocities(folder: Path, t0_s: float, t_start: np.ndarray, t_end: np.ndarray) -> np.ndarray:
    if (folder / "imu.txt").is_file():
        imu = read_table(folder / "imu.txt", IMU_COLUMNS)
        return mean_angular_velocity(seconds_to_us(imu[:, 0], t0_s), imu[:, 4:7], t_start, t_end)
    if (folder / "motion.txt").is_file():
        motion = read_table(folder / "motion.txt", ("wx", "wy", "wz"))
        if motion.shape[0] != 1:
            raise EventDataError(
                f"{folder / 'motion.txt'}: expected one line 'wx wy wz', got {motion.shape[0]}"
            )
        return np.repeat(motion, len(t_start), axis=0)
    raise FileNotFoundError(
        f"{folder}: a rotation recording needs 'imu.txt' (t ax ay az gx gy gz) or 'motion.txt' (wx wy wz) "
        "for its GT flow"
    )


def rotation_gt(
    folder: Path, camera: Camera, t_us: np.ndarray, t0_s: float, events_per_window: int
) -> FlowGT | None:
    """GT flow ``gyro`` of a rotation-only recording over windows of ``events_per_window`` events."""
    t_start, t_end = count_window_intervals(t_us, events_per_window)
    if len(t_start) == 0:
        return None
    omega = _angular_velocities(folder, t0_s, t_start, t_end)
    flow = np.stack(
        [
            rotational_flow(camera, w, b - a, SENSOR_SIZE)
            for w, a, b in zip(omega, t_start, t_end, strict=True)
        ]
    )
    return FlowGT(flow, t_start, t_end)


def open_ecd(
    root: Path,
    name: str,
    *,
    undistort: bool = True,
    gt_events_per_window: int = GT_EVENTS_PER_WINDOW,
    rotation_only: bool | None = None,
    load_frames: bool = False,
) -> ArrayRecording:
    """Read ECD recording ``root/name`` into memory.

    Args:
        undistort: move events (and frames) to the undistorted pinhole grid (rounded); else keep raw pixels.
        gt_events_per_window: events per GT flow window of rotation recordings.
        rotation_only: whether the camera only rotates (GT flow from the gyro); None: from the name
            (``*_rotation``). GT needs ``undistort``: the motion field lives on the pinhole grid.
        load_frames: also read the frames (needs OpenCV).
    """
    folder = Path(root) / name
    events, t0_s = read_events_txt(folder / "events.txt", SENSOR_SIZE)
    camera = read_calib(folder / "calib.txt")
    if undistort:
        events = remap_events(events, camera.undistort_map(SENSOR_SIZE), SENSOR_SIZE)
    flows = {}
    rotation = name.endswith("_rotation") if rotation_only is None else rotation_only
    if rotation and undistort:
        gt = rotation_gt(folder, camera, events.t_us, t0_s, gt_events_per_window)
        flows = {ROTATION_FLOW: gt} if gt is not None else {}
    frames = None
    if load_frames and (folder / "images.txt").is_file():
        remap = camera.distort_map(SENSOR_SIZE) if undistort else None
        frames = read_listed_frames(folder / "images.txt", t0_s, int(events.t_us[-1]), SENSOR_SIZE, remap)
    calib = {**camera.calib(), "undistorted": np.int64(undistort)}
    return ArrayRecording(
        folder, events, SENSOR_SIZE, round(t0_s * 1e6), flows=flows, frames=frames, calib=calib
    )
