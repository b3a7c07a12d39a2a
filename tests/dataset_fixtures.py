"""Tiny recordings in each dataset's original layout (real key names and dtypes), written by the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import hdf5plugin
import numpy as np
import yaml

from tinyflow.events.camera import Camera

MVSEC_SIZE = (260, 346)
MVSEC_T0_S = 1506117912.3  # a ROS time, as in the real files
MVSEC_VELOCITY = np.array([40.0, -15.0])  # px/s, a uniform translation field
MVSEC_GT_DT_S = 0.05  # GT maps at 20 Hz
MVSEC_FRAME_DT_S = 0.032  # grey frames at ~31 Hz
MVSEC_INVALID_ROWS = slice(0, 12)  # GT (0, 0) there: invalid, as MVSEC marks it


def write_mvsec(
    root: Path, name: str, rng: np.random.Generator, duration_s: float = 0.42, gt: str = "hdf5"
) -> None:
    """``<name>_data.hdf5`` and ``<name>_gt.hdf5`` (``gt="hdf5"``) or ``<name>_gt_flow_dist.npz`` (``"npz"``)."""
    height, width = MVSEC_SIZE
    n = 30_000
    t = MVSEC_T0_S + np.sort(rng.uniform(0, duration_s, n))
    events = np.stack(
        [rng.integers(0, width, n), rng.integers(0, height, n), t, rng.choice([-1.0, 1.0], n)], axis=1
    ).astype(np.float64)
    frame_ts = MVSEC_T0_S + 0.004 + np.arange(0, duration_s - 0.01, MVSEC_FRAME_DT_S)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / f"{name}_data.hdf5", "w") as file:
        left = file.create_group("davis/left")
        left["events"] = events
        left["image_raw"] = rng.integers(0, 256, (len(frame_ts), height, width)).astype(np.uint8)
        left["image_raw_ts"] = frame_ts
        left["image_raw_event_inds"] = np.searchsorted(t, frame_ts)
    gt_ts = MVSEC_T0_S + np.arange(0, duration_s + 1e-9, MVSEC_GT_DT_S)
    flow = np.zeros((len(gt_ts), 2, height, width), np.float64)
    flow[:, :] = (MVSEC_VELOCITY * MVSEC_GT_DT_S)[None, :, None, None]
    flow[:, :, MVSEC_INVALID_ROWS] = 0
    if gt == "npz":
        np.savez(
            root / f"{name}_gt_flow_dist.npz",
            timestamps=gt_ts,
            x_flow_dist=flow[:, 0],
            y_flow_dist=flow[:, 1],
        )
        return
    with h5py.File(root / f"{name}_gt.hdf5", "w") as file:
        left = file.create_group("davis/left")
        left["flow_dist"] = flow
        left["flow_dist_ts"] = gt_ts
        depth = rng.uniform(1, 10, (len(gt_ts), height, width)).astype(np.float32)
        depth[:, :5] = np.nan
        left["depth_image_raw"] = depth
        left["depth_image_raw_ts"] = gt_ts
        left["depth_image_rect"] = depth
        left["depth_image_rect_ts"] = gt_ts


MVSEC_FOCAL_PX, MVSEC_BASELINE_M = 226.38, 0.0881  # indoor_flying's rectified pair: f b = 19.94 px m
MVSEC_DEPTH_DT_S = 0.05  # LIDAR depth maps at 20 Hz
MVSEC_FILL_DEPTH_M = 2.5  # depth of every map the fixture does not write explicitly
MVSEC_RECTIFY_SHIFT = {"left": (1.4, -0.6), "right": (-2.3, 0.4)}  # the fixture's rectification: a shift


def write_mvsec_calibration(root: Path, scene: str) -> Path:
    """``<scene>_calib/``: rectification maps (text, one row per pixel row) and the camchain yaml."""
    folder = root / f"{scene}_calib"
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0 : MVSEC_SIZE[0], 0 : MVSEC_SIZE[1]].astype(np.float64)
    for camera, (dx, dy) in MVSEC_RECTIFY_SHIFT.items():
        np.savetxt(folder / f"{scene}_{camera}_x_map.txt", xs + dx, fmt="%.6f")
        np.savetxt(folder / f"{scene}_{camera}_y_map.txt", ys + dy, fmt="%.6f")
    f = MVSEC_FOCAL_PX
    camchain = {
        f"cam{i}": {
            "camera_model": "pinhole",
            "distortion_model": "equidistant",
            "distortion_coeffs": [-0.048, 0.013, -0.021, 0.006],
            "intrinsics": [226.4, 226.2, 173.6, 133.7],
            "resolution": [MVSEC_SIZE[1], MVSEC_SIZE[0]],
            "rectification_matrix": np.eye(3).tolist(),
            "projection_matrix": [
                [f, 0.0, 177.0, -f * MVSEC_BASELINE_M * i],
                [0.0, f, 126.9, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
        }
        for i in (0, 1)
    }
    (folder / f"camchain-imucam-{scene}.yaml").write_text(yaml.safe_dump(camchain))
    return folder


def _lazy_maps(group: h5py.Group, key: str, shape: tuple[int, ...], dtype: type, fill: float) -> h5py.Dataset:
    """A dataset of maps, one chunk each, whose unwritten maps read as ``fill`` and take no space."""
    return group.create_dataset(key, shape=shape, dtype=dtype, chunks=(1, *shape[1:]), fillvalue=fill,
                                compression="gzip")  # fmt: skip


def write_mvsec_stereo(
    root: Path, name: str, rng: np.random.Generator, num_depth_maps: int, depth_maps: dict[int, np.ndarray],
    events_per_s: float = 300.0,
) -> dict[str, np.ndarray]:  # fmt: skip
    """A stereo MVSEC recording: both DAVIS event streams (the right one starts 5 ms earlier), grey frames,
    and a GT file whose depth maps (raw and rectified) read ``MVSEC_FILL_DEPTH_M`` except ``depth_maps``.

    Maps are chunked and unwritten ones are not stored, so a recording of ~1800 LIDAR maps stays small.
    Returns the raw events of each camera (float64 [N, 4]) and the depth times (s).
    """
    height, width = MVSEC_SIZE
    depth_ts = MVSEC_T0_S + 0.2 + MVSEC_DEPTH_DT_S * np.arange(num_depth_maps)
    depth_ts += rng.uniform(-0.001, 0.001, num_depth_maps)
    duration_s = depth_ts[-1] - MVSEC_T0_S + 0.05
    raw = {}
    for camera, start_s in (("left", 0.0), ("right", -0.005)):
        n = int(events_per_s * duration_s)
        t = MVSEC_T0_S + start_s + np.sort(rng.uniform(0, duration_s - start_s, n))
        t[0] = MVSEC_T0_S + start_s
        xy = [rng.integers(0, width, n), rng.integers(0, height, n)]
        raw[camera] = np.stack([*xy, t, rng.choice([-1.0, 1.0], n)], axis=1).astype(np.float64)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / f"{name}_data.hdf5", "w") as file:
        for camera, events in raw.items():
            file[f"davis/{camera}/events"] = events
            _lazy_maps(file, f"davis/{camera}/image_raw", (10, height, width), np.uint8, 0)
            file[f"davis/{camera}/image_raw_ts"] = MVSEC_T0_S + 0.01 + MVSEC_FRAME_DT_S * np.arange(10)
    with h5py.File(root / f"{name}_gt.hdf5", "w") as file:
        left = file.create_group("davis/left")
        _lazy_maps(left, "flow_dist", (5, 2, height, width), np.float64, 0.0)
        left["flow_dist_ts"] = MVSEC_T0_S + 0.2 + MVSEC_GT_DT_S * np.arange(5)
        for key in ("depth_image_raw", "depth_image_rect"):
            maps = _lazy_maps(left, key, (num_depth_maps, height, width), np.float32, MVSEC_FILL_DEPTH_M)
            for k, depth in depth_maps.items():
                maps[k] = depth
            left[f"{key}_ts"] = depth_ts
    return {**raw, "depth_ts": depth_ts}


ECD_CAMERA = Camera(199.1, 198.8, 132.2, 110.7, (-0.368, 0.151, -0.0003, -0.0008, 0.0), "radtan")


def write_ecd(
    root: Path, name: str, rng: np.random.Generator, n: int = 32_000, gyro=(0.5, -1.0, 0.1)
) -> Path:
    """An ECD recording folder: events.txt, calib.txt, imu.txt (constant gyro), images.txt + 2 frames."""
    folder = root / name
    (folder / "images").mkdir(parents=True, exist_ok=True)
    t = np.sort(rng.uniform(0, 0.2, n))
    x, y, p = rng.integers(0, 240, n), rng.integers(0, 180, n), rng.integers(0, 2, n)
    np.savetxt(folder / "events.txt", np.stack([t, x, y, p], 1), fmt=["%.9f", "%d", "%d", "%d"])
    cam = ECD_CAMERA
    (folder / "calib.txt").write_text(
        " ".join(str(v) for v in (cam.fx, cam.fy, cam.cx, cam.cy, *cam.distortion))
    )
    imu_t = np.arange(0, 0.25, 0.001)
    imu = np.column_stack([imu_t, np.tile([0.0, 0.0, 9.81], (len(imu_t), 1)), np.tile(gyro, (len(imu_t), 1))])
    np.savetxt(folder / "imu.txt", imu, fmt="%.9f")
    for k in range(2):
        cv2.imwrite(
            str(folder / "images" / f"frame_{k:08d}.png"), rng.integers(0, 256, (180, 240)).astype(np.uint8)
        )
    (folder / "images.txt").write_text(
        "".join(f"{k * 0.1:.9f} images/frame_{k:08d}.png\n" for k in range(2))
        + "0.300000000 images/frame_00000002.png\n"
    )
    (folder / "groundtruth.txt").write_text("0.001 0 0 0 0 0 0 1\n")
    return folder


UZH_CAMERA = Camera(172.99, 172.98, 163.34, 134.99, (-0.0276, -0.0066, 0.00086, -0.00031), "equidistant")
UZH_SIZE = (260, 346)


def write_uzh_fpv(root: Path, name: str, rng: np.random.Generator, n: int = 20_000) -> Path:
    """``<name>_davis_with_gt/`` (events, images, imu, groundtruth) and the environment's Kalibr yaml."""
    folder = root / f"{name}_davis_with_gt"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = 1540823960.123456
    t = t0 + np.sort(rng.uniform(0, 3.0, n))
    x, y, p = rng.integers(0, UZH_SIZE[1], n), rng.integers(0, UZH_SIZE[0], n), rng.integers(0, 2, n)
    with (folder / "events.txt").open("w") as file:
        file.write("# timestamp x y polarity\n")
        np.savetxt(file, np.stack([t, x, y, p], 1), fmt=["%.9f", "%d", "%d", "%d"])
    gt_t = t0 + np.arange(0, 3.0, 0.01)
    height = np.where((gt_t - t0 > 1.0) & (gt_t - t0 < 2.0), 1.5, 0.0)
    poses = np.column_stack(
        [
            np.arange(len(gt_t)),
            gt_t,
            np.zeros(len(gt_t)),
            np.zeros(len(gt_t)),
            height,
            np.zeros((len(gt_t), 3)),
            np.ones(len(gt_t)),
        ]
    )
    np.savetxt(folder / "groundtruth.txt", poses, fmt="%.9f", header="id timestamp tx ty tz qx qy qz qw")
    imu = np.column_stack([np.arange(len(gt_t)), gt_t, np.zeros((len(gt_t), 6))])
    np.savetxt(
        folder / "imu.txt",
        imu,
        fmt="%.9f",
        header="id timestamp ang_vel_x ang_vel_y ang_vel_z lin_acc_x lin_acc_y lin_acc_z",
    )
    (folder / "images.txt").write_text("# id timestamp image_name\n")
    environment = name.rsplit("_", 1)[0]
    calib_dir = root / f"{environment}_calib_davis"
    calib_dir.mkdir(exist_ok=True)
    cam = UZH_CAMERA
    camchain = {
        "cam0": {
            "camera_model": "pinhole",
            "distortion_model": "equidistant",
            "distortion_coeffs": list(cam.distortion),
            "intrinsics": [cam.fx, cam.fy, cam.cx, cam.cy],
            "resolution": [UZH_SIZE[1], UZH_SIZE[0]],
            "rostopic": "/dvs/image_raw",
            "T_cam_imu": np.eye(4).tolist(),
            "timeshift_cam_imu": 0.0,
        }
    }
    (calib_dir / f"camchain-imucam-..{environment}_calib_davis_imu.yaml").write_text(yaml.safe_dump(camchain))
    return folder


DSEC_SIZE = (480, 640)
DSEC_T_OFFSET = 51_648_000_000  # µs


def write_dsec(
    root: Path, name: str, rng: np.random.Generator, n: int = 40_000, with_flow: bool = True
) -> None:
    """``train_events/<name>/events/left/{events,rectify_map}.h5`` and ``train_optical_flow/<name>/flow/``."""
    height, width = DSEC_SIZE
    left = root / "train_events" / name / "events" / "left"
    left.mkdir(parents=True, exist_ok=True)
    t = np.sort(rng.integers(0, 450_000, n)).astype(np.int64)
    compression = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    with h5py.File(left / "events.h5", "w") as file:
        for key, data in (
            ("x", rng.integers(0, width, n).astype(np.uint16)),
            ("y", rng.integers(0, height, n).astype(np.uint16)),
            ("t", t.astype(np.uint32)),
            ("p", rng.integers(0, 2, n).astype(np.uint8)),
        ):
            file.create_dataset(f"events/{key}", data=data, **compression)
        file["ms_to_idx"] = np.searchsorted(t, np.arange(t[-1] // 1000 + 1) * 1000).astype(np.uint64)
        file["t_offset"] = np.int64(DSEC_T_OFFSET)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    with h5py.File(left / "rectify_map.h5", "w") as file:
        file["rectify_map"] = np.stack([xs + 1.4, ys - 0.6], axis=-1)
    if not with_flow:
        return
    flow_dir = root / "train_optical_flow" / name / "flow"
    (flow_dir / "forward").mkdir(parents=True, exist_ok=True)
    starts = DSEC_T_OFFSET + np.array([-50_000, 100_000, 200_000])
    with (flow_dir / "forward_timestamps.txt").open("w") as file:
        file.write("# from_timestamp_us, to_timestamp_us\n")
        for a in starts:
            file.write(f"{a}, {a + 100_000}\n")
    for k in range(len(starts)):
        flow = np.stack([np.full((height, width), 3.25 + k), np.full((height, width), -1.5)])
        valid = np.ones((height, width), np.uint16)
        valid[:40] = 0
        encoded = np.where(valid[None] == 1, np.rint(flow * 128 + 2**15), 0).astype(np.uint16)
        rgb = np.stack([encoded[0], encoded[1], valid], axis=-1)
        cv2.imwrite(str(flow_dir / "forward" / f"{(k + 1) * 20:06d}.png"), rgb[..., ::-1])


def write_hqf(path: Path, rng: np.random.Generator, n: int = 20_000) -> None:
    """An HQF / event_utils file: events/xs, ys, ts, ps, images/image%09d with timestamp attributes, root attrs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = 180, 240
    t0 = 1_582_654_321.5
    ts = t0 + np.sort(rng.uniform(0, 0.5, n))
    with h5py.File(path, "w") as file:
        file["events/xs"] = rng.integers(0, width, n).astype(np.int16)
        file["events/ys"] = rng.integers(0, height, n).astype(np.int16)
        file["events/ts"] = ts
        file["events/ps"] = rng.integers(0, 2, n).astype(bool)
        frame_ts = t0 + np.arange(0.01, 0.5, 0.05)
        for k, ft in enumerate(frame_ts):
            image = file.create_dataset(
                f"images/image{k:09d}", data=rng.integers(0, 256, (height, width)).astype(np.uint8)
            )
            image.attrs.update(
                timestamp=ft, event_idx=int(np.searchsorted(ts, ft)), size=(height, width), type="image"
            )
        file.attrs.update(
            num_events=n,
            num_pos=int(file["events/ps"][:].sum()),
            num_neg=n - int(file["events/ps"][:].sum()),
            duration=float(ts[-1] - ts[0]),
            t0=float(ts[0]),
            tk=float(ts[-1]),
            num_imgs=len(frame_ts),
            num_flow=0,
            sensor_resolution=(height, width),
        )
