"""End to end: flow on a user's recordings (``data=files``: FWL/RSAT, flow to HDF5) and a DSEC benchmark
submission (``data=dsec split=test submission=DIR``), with networks whose flow is known."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest

pytest.importorskip("faery", reason="the formats extra is not installed (pip install -e '.[formats]')")

from conftest import compose_at
from dataset_fixtures import DSEC_T_OFFSET, write_dsec
from format_fixtures import FORMATS, random_events, raw_body, write_aedat4, write_packet_bag, write_raw
from test_datasets_validate import constant_flow_checkpoint, synthetic_run  # noqa: F401

from tinyflow.app.checks import ConfigError
from tinyflow.app.validate import validate
from tinyflow.events.core import EventDataError
from tinyflow.events.windows import windows_for_queries
from tinyflow.io.dsec import check_submission, read_flow_png
from tinyflow.io.memory import ArrayRecording

TRAIN_WINDOW_US = 20_000  # the synthetic run's training window (data.synth.gt_interval_us)


@pytest.fixture
def user_folder(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "recordings"
    evt3_file = write_raw(folder / "cam" / "a.raw", random_events(rng), "evt3")
    write_packet_bag(folder / "b.bag", raw_body(evt3_file), 1_600_000_000_000_000)
    write_aedat4(folder / "c.aedat4", random_events(rng, n=4000))
    return folder


def test_validate_on_a_users_files_reports_fwl_rsat_and_writes_flow(synthetic_run, user_folder, tmp_path):  # noqa: F811 (the fixture)
    """A zero-flow network: FWL and RSAT are exactly 1 for each file; the flow file holds one zero map per window."""
    root, run_id = synthetic_run
    zero = constant_flow_checkpoint(root, run_id, (0.0, 0.0), tmp_path / "zero.ckpt")
    flow_file = tmp_path / "flow.h5"
    overrides = [
        f"runid={run_id}",
        f"checkpoint={zero}",
        "data=files",
        f"data.root={user_folder}",
        "data.val_windowing.events_per_window=1000",
        "+callbacks=flow_output",
        f"callbacks.flow_output.path={flow_file}",
    ]
    results = validate(compose_at(root, "validate", overrides))
    assert sorted(results["recordings"]) == ["a", "b", "c"]
    for values in results["recordings"].values():
        assert values["fwl"] == pytest.approx(1.0, abs=1e-6) and values["rsat"] == pytest.approx(
            1.0, abs=1e-6
        )
    with h5py.File(flow_file) as file:
        assert sorted(file) == ["a", "b", "c"]
        assert file["a/flow"].shape == (6, 2, 48, 64) and file["c/flow"].shape == (4, 2, 48, 64)
        assert not np.any(file["a/flow"][()])
        assert np.all(file["a/t_end_us"][()] > file["a/t_start_us"][()])
        assert np.all(file["a/t_start_us"][1:] >= file["a/t_end_us"][:-1])  # consecutive 1000-event windows
    with pytest.raises(FileExistsError, match="never overwritten"):
        validate(compose_at(root, "validate", overrides))


@pytest.mark.skipif(not FORMATS.is_dir(), reason=f"the real camera-file samples are not at {FORMATS}")
def test_validate_on_the_real_samples_reports_fwl_and_rsat(synthetic_run):  # noqa: F811 (the fixture)
    """``python validate.py runid=<id> data=files data.root=../shared/data/formats``: every sample validates."""
    root, run_id = synthetic_run
    overrides = [
        f"runid={run_id}",
        "data=files",
        f"data.root={FORMATS}",
        "data.downscale=4",
        "data.val_windowing.events_per_window=5000",
    ]
    results = validate(compose_at(root, "validate", overrides))
    assert sorted(results["recordings"]) == ["davis346_sample", "evt2_sample", "evt3_events", "evt3_sample"]
    for values in results["recordings"].values():
        assert np.isfinite(values["fwl"]) and np.isfinite(values["rsat"]) and values["fwl"] > 0


def test_query_windows_tile_the_recording_and_end_at_each_query():
    t_us = np.arange(0, 400_000, 50, dtype=np.int64)
    recording = ArrayRecording("r", _events(t_us), (4, 4))
    windows = windows_for_queries(recording, np.array([250_000, 150_000]), 40_000)
    assert [w.t_start_us for w in windows][:5] == [0, 40_000, 80_000, 110_000, 150_000]
    assert all(a.t_end_us == b.t_start_us for a, b in itertools.pairwise(windows))
    answers = {w.query_index: w for w in windows if w.query_index >= 0}
    assert (answers[1].t_start_us, answers[1].t_end_us) == (110_000, 150_000)
    assert (answers[0].t_start_us, answers[0].t_end_us) == (210_000, 250_000)
    assert windows[-1] is answers[0] and all(w.duration_us <= 40_000 for w in windows)
    assert answers[1].num_events == 800 and answers[1].start == 2200


def _events(t_us):
    from tinyflow.events.core import Events

    zeros = np.zeros(len(t_us), np.uint16)
    return Events(zeros, zeros, t_us, zeros.astype(np.uint8))


def write_dsec_test(root, name, rows):
    """A DSEC test sequence (events, rectify map) and its ``test_forward_optical_flow_timestamps/<name>.csv``."""
    write_dsec(root, name, np.random.default_rng(len(name)), n=20_000, with_flow=False, split="test")
    folder = root / "test_forward_optical_flow_timestamps"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# from_timestamp_us, to_timestamp_us, file_index"]
    lines += [f"{DSEC_T_OFFSET + a}, {DSEC_T_OFFSET + b}, {index}" for a, b, index in rows]
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")


def test_a_dsec_submission_is_complete_and_rescaled_to_each_interval(synthetic_run, tmp_path):  # noqa: F811 (the fixture)
    """A network predicting (0.5, -0.25) px per 20 ms window: each PNG holds that flow times interval / 20 ms."""
    root, run_id = synthetic_run
    data = tmp_path / "dsec"
    queries = {
        "thun_01_a": [(100_000, 200_000, 20), (300_000, 400_000, 40)],
        "zurich_city_12_a": [(150_000, 240_000, 10)],
    }
    for name, rows in queries.items():
        write_dsec_test(data, name, rows)
    flow_px = (0.5, -0.25)
    checkpoint = constant_flow_checkpoint(root, run_id, flow_px, tmp_path / "constant.ckpt")
    submission = tmp_path / "submission"
    overrides = [
        f"runid={run_id}",
        f"checkpoint={checkpoint}",
        "data=dsec",
        f"data.root={data}",
        f"data.test=[{','.join(queries)}]",
        "split=test",
        f"submission={submission}",
    ]
    results = validate(compose_at(root, "validate", overrides))
    assert sorted(results["recordings"]) == sorted(queries)
    files = sorted(str(p.relative_to(submission)) for p in submission.rglob("*"))
    assert files == [
        "thun_01_a",
        "thun_01_a/000020.png",
        "thun_01_a/000040.png",
        "zurich_city_12_a",
        "zurich_city_12_a/000010.png",
    ]
    for name, rows in queries.items():
        for a, b, index in rows:
            flow, _ = read_flow_png(submission / name / f"{index:06d}.png")
            assert flow.shape == (2, 480, 640)
            scale = (b - a) / TRAIN_WINDOW_US
            np.testing.assert_allclose(flow[0], flow_px[0] * scale, atol=1 / 128)
            np.testing.assert_allclose(flow[1], flow_px[1] * scale, atol=1 / 128)
    with pytest.raises(FileExistsError, match="never overwritten"):
        validate(compose_at(root, "validate", overrides))
    with pytest.raises(ConfigError, match="add split=test"):
        validate(compose_at(root, "validate", [o for o in overrides if o != "split=test"] + ["output=x"]))


def test_a_missing_test_sequence_is_an_error(synthetic_run, tmp_path):  # noqa: F811 (the fixture)
    root, run_id = synthetic_run
    write_dsec_test(tmp_path / "dsec", "thun_01_a", [(100_000, 200_000, 20)])
    overrides = [
        f"runid={run_id}",
        "data=dsec",
        f"data.root={tmp_path / 'dsec'}",
        "split=test",
        f"submission={tmp_path / 's'}",
    ]
    with pytest.raises(FileNotFoundError, match=r"test recordings not found: \['interlaken_00_b'"):
        validate(compose_at(root, "validate", overrides))
    assert not (tmp_path / "s").exists()


def test_check_submission_names_missing_and_extra_files(tmp_path):
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "000010.png").write_bytes(b"")
    (tmp_path / "seq" / "notes.txt").write_text("")
    check_submission_ok = {"seq": np.array([10])}
    with pytest.raises(
        EventDataError, match=r"0 predictions missing .* 1 files not asked for \(\['seq/notes.txt'\]"
    ):
        check_submission(tmp_path, check_submission_ok)
    (tmp_path / "seq" / "notes.txt").unlink()
    check_submission(tmp_path, check_submission_ok)
    with pytest.raises(EventDataError, match=r"1 predictions missing \(\['seq/000020.png'\]"):
        check_submission(tmp_path, {"seq": np.array([10, 20])})
