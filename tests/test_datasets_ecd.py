"""ECD: the text-layout reader on the real slices in ../shared/data/ecd and on written fixtures; conversion."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_fixtures import ECD_CAMERA, write_ecd

from tinyflow.cmax.sharpness import sharpness_gain
from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.events.camera import rotational_flow
from tinyflow.events.core import EventDataError
from tinyflow.io import open_recording
from tinyflow.io.convert import convert_dataset
from tinyflow.io.ecd import SENSOR_SIZE, open_ecd, read_calib
from tinyflow.metrics.flow import FlowErrorMetrics

ECD_SLICES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ecd"
ROTATIONS = ["boxes_rotation", "dynamic_rotation", "poster_rotation", "shapes_rotation"]
needs_slices = pytest.mark.skipif(
    not ECD_SLICES.is_dir(), reason=f"the real ECD slices are not at {ECD_SLICES} (see shared/data/README.md)"
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@needs_slices
@pytest.mark.parametrize("name", ROTATIONS)
def test_gyro_flow_of_the_real_slices_matches_their_flow_npy(name):
    """The rotational field of motion.txt over the slice equals the published flow.npy (to float32 rounding)."""
    folder = ECD_SLICES / name
    camera = read_calib(folder / "calib.txt")
    t_s = np.loadtxt(folder / "events.txt", usecols=0)
    flow = rotational_flow(camera, np.loadtxt(folder / "motion.txt"), (t_s[-1] - t_s[0]) * 1e6, SENSOR_SIZE)
    reference = np.load(folder / "flow.npy")[0]
    assert np.abs(flow - reference).max() < 1e-5
    assert np.linalg.norm(reference, axis=0).mean() > 1.0


@needs_slices
def test_real_slices_gt_matches_the_published_flow_and_sharpens_the_warped_events():
    """The dataset's GT of each 15k-event window, against references computed without the reader:
    the published flow.npy rescaled from the slice's span to the window's, the motion field written
    out by hand at a few pixels, and the sharpness of the window's real events warped by it."""
    windowing = Windowing(mode="gt", flow_name="gyro")
    dataset = WindowDataset([open_ecd(ECD_SLICES, name) for name in ROTATIONS], windowing)
    assert dataset.window_counts == [1, 1, 1, 1] and dataset.sensor_size == SENSOR_SIZE
    metrics = {"published": FlowErrorMetrics(), "zero": FlowErrorMetrics()}
    magnitudes = {}
    for index, name in enumerate(dataset.recording_names):
        item = dataset[index]
        recording, window = dataset.recordings[index], dataset.windows[index][0]
        assert item["has_gt"] and item["gt_valid"].all() and window.num_events == 15_000
        assert item["dt_us"] == window.duration_us

        # flow.npy (tub-rip) spans the whole slice, t_last - t_first of events.txt: rescale by the ratio.
        t_s = np.loadtxt(ECD_SLICES / name / "events.txt", usecols=0)
        ratio = window.duration_us / ((t_s[-1] - t_s[0]) * 1e6)
        published = np.load(ECD_SLICES / name / "flow.npy")[0] * ratio
        np.testing.assert_allclose(item["flow_gt"], published, rtol=1e-4, atol=1e-4)

        # u = fx dt (x y wx - (1 + x^2) wy + y wz), v = fy dt ((1 + y^2) wx - x y wy - x wz), (x, y) normalised.
        fx, fy, cx, cy = np.loadtxt(ECD_SLICES / name / "calib.txt")[:4]
        wx, wy, wz = np.loadtxt(ECD_SLICES / name / "motion.txt")
        seconds = window.duration_us * 1e-6
        for column, row in [(0, 0), (239, 0), (120, 90), (199, 132), (17, 171)]:
            x, y = (column - cx) / fx, (row - cy) / fy
            u = fx * seconds * (x * y * wx - (1 + x * x) * wy + y * wz)
            v = fy * seconds * ((1 + y * y) * wx - x * y * wy - x * wz)
            np.testing.assert_allclose(item["flow_gt"][:, row, column], [u, v], rtol=1e-5, atol=1e-5)

        gt = torch.from_numpy(item["flow_gt"])[None]
        event_mask = torch.from_numpy(item["input"]).abs().sum(0)[None] > 0
        valid = torch.from_numpy(item["gt_valid"])[None]
        metrics["published"].update(
            torch.from_numpy(published.astype(np.float32))[None], gt, event_mask, valid, [name]
        )
        metrics["zero"].update(torch.zeros_like(gt), gt, event_mask, valid, [name])
        magnitudes[name] = float(np.linalg.norm(published, axis=0)[event_mask[0].numpy()].mean())

        events = recording.events(window.start, window.stop)
        gain = sharpness_gain(events, item["flow_gt"], window.t_start_us, window.t_end_us, SENSOR_SIZE)
        opposite = sharpness_gain(events, -item["flow_gt"], window.t_start_us, window.t_end_us, SENSOR_SIZE)
        assert gain > max(1.2, opposite + 0.2), (name, gain, opposite)
    for name, errors in metrics["published"].compute().items():
        assert errors.aee_px < 1e-3 and errors.outlier_percent == 0
        assert metrics["zero"].compute()[name].aee_px == pytest.approx(magnitudes[name], rel=1e-3)
        assert magnitudes[name] > 1.0, (name, magnitudes[name])


@needs_slices
def test_real_head_of_slider_depth_reads_events_and_frames():
    recording = open_ecd(ECD_SLICES, "slider_depth_head", load_frames=True)
    assert recording.flow_names == [] and 45_000 < recording.num_events <= 50_000
    frames = recording.frames()
    assert frames.images.shape == (5, *SENSOR_SIZE) and np.all(np.diff(frames.t_us) > 0)


def test_undistortion_and_gyro_gt_of_a_written_recording(tmp_path, rng):
    write_ecd(tmp_path, "poster_rotation", rng, gyro=(0.5, -1.0, 0.1))
    raw = open_ecd(tmp_path, "poster_rotation", undistort=False)
    undistorted = open_ecd(tmp_path, "poster_rotation", gt_events_per_window=10_000)
    assert raw.num_events == 32_000 and raw.flow_names == []
    assert (
        0.7 * raw.num_events < undistorted.num_events < raw.num_events
    )  # barrel distortion pushes events out
    gt = undistorted.flow("gyro")
    assert len(gt) == undistorted.num_events // 10_000
    for k in range(len(gt)):
        duration = gt.t_end_us[k] - gt.t_start_us[k]
        expected = rotational_flow(ECD_CAMERA, (0.5, -1.0, 0.1), duration, SENSOR_SIZE)
        np.testing.assert_allclose(gt.flow[k], expected, atol=1e-4)
    windows = Windowing(mode="gt", flow_name="gyro").windows(undistorted)
    assert [w.num_events for w in windows] == [10_000] * len(gt)
    calib = undistorted.calib()
    np.testing.assert_allclose(calib["intrinsics"], ECD_CAMERA.intrinsics)
    np.testing.assert_allclose(calib["distortion_radtan"], ECD_CAMERA.distortion)


def test_non_rotation_recordings_fall_back_to_count_windows(tmp_path, rng):
    write_ecd(tmp_path, "slider_depth", rng)
    recording = open_ecd(tmp_path, "slider_depth")
    assert recording.flow_names == []
    windowing = Windowing(mode="gt", flow_name="gyro", without_gt="count", events_per_window=5_000)
    assert [w.num_events for w in windowing.windows(recording)] == [5_000] * (recording.num_events // 5_000)
    assert Windowing(mode="gt", flow_name="gyro").windows(recording) == []
    with pytest.raises(ValueError, match="unknown without_gt 'nope'"):
        Windowing(mode="gt", flow_name="gyro", without_gt="nope").windows(recording)


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda text: text[: text.rindex(" ")],
            r"events.txt: line 32000 has 3 fields; expected 4 numbers 't x y p'",
        ),
        (
            lambda text: text.replace("\n", "\n0.1 x 3 1\n", 1),
            r"events.txt: line 2 has a field that is not a number",
        ),
        (
            lambda text: text.replace("\n", "\n0.1 3 3 2\n", 1),
            r"events.txt: column p must be 0 \(OFF\) or 1 \(ON\)",
        ),
        (lambda text: text.replace("\n", "\n0.1 3.5 3 1\n", 1), r"events.txt: columns x, y must be whole"),
    ],
    ids=["truncated", "not-a-number", "polarity", "sub-pixel"],
)
def test_corrupted_events_txt_is_a_clear_error_and_converts_to_nothing(tmp_path, rng, damage, message):
    src, dst = tmp_path / "src", tmp_path / "dst"
    events = write_ecd(src, "boxes_rotation", rng) / "events.txt"
    events.write_text(damage(events.read_text()))
    with pytest.raises(EventDataError, match=message):
        convert_dataset("ecd", src, dst, log=lambda _: None)
    assert list(dst.iterdir()) == []


def test_missing_calibration_names_the_file(tmp_path, rng):
    (write_ecd(tmp_path, "shapes_rotation", rng) / "calib.txt").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"calib.txt: no such file \(expected a text table 'fx fy cx cy"
    ):
        open_ecd(tmp_path, "shapes_rotation")


def test_conversion_is_deterministic_resumable_and_never_overwrites(tmp_path, rng):
    src = tmp_path / "src"
    for name in ("boxes_rotation", "office_zigzag"):
        write_ecd(src, name, rng)
    before = {p: p.stat().st_mtime_ns for p in src.rglob("*")}
    first = convert_dataset("ecd", src, tmp_path / "a", log=lambda _: None)
    second = convert_dataset("ecd", src, tmp_path / "b", log=lambda _: None)
    assert [p.name for p in first] == ["boxes_rotation.h5", "office_zigzag.h5"]
    assert all(filecmp.cmp(a, b, shallow=False) for a, b in zip(first, second, strict=True))
    assert {p: p.stat().st_mtime_ns for p in src.rglob("*")} == before

    converted = open_recording(first[0])
    original = open_ecd(src, "boxes_rotation", load_frames=True)
    assert converted.num_events == original.num_events and converted.flow_names == ["gyro"]
    np.testing.assert_array_equal(converted.events(0, 100).t_us, original.events(0, 100).t_us)
    np.testing.assert_array_equal(converted.flow("gyro").flow, original.flow("gyro").flow)
    assert converted.frames().images.shape == (2, *SENSOR_SIZE)  # the third listed frame is after the events

    logs: list[str] = []
    (tmp_path / "a" / ".office_zigzag.h5.0123456789ab.tmp").write_bytes(b"left by a crash")
    first[1].unlink()
    convert_dataset("ecd", src, tmp_path / "a", log=logs.append)
    assert logs[0].startswith("boxes_rotation: already converted") and "32000 events" not in logs[0]
    assert logs[1].startswith("office_zigzag:") and first[1].is_file()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["boxes_rotation.h5", "office_zigzag.h5"]

    first[0].write_bytes(first[0].read_bytes()[:5000])
    with pytest.raises(
        EventDataError, match=r"boxes_rotation.h5: exists but is not a complete canonical recording"
    ):
        convert_dataset("ecd", src, tmp_path / "a", log=lambda _: None)
    with pytest.raises(ValueError, match="the output folder must differ from the source folder"):
        convert_dataset("ecd", src, src, log=lambda _: None)
