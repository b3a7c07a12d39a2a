"""A user's mistake costs seconds: one paragraph naming the culprit, a non-zero exit, no traceback, and no
run folder left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY_TRAIN

from tinyflow.events.core import Events
from tinyflow.io import write_canonical

ROOT = Path(__file__).resolve().parents[1]
SENSOR = (32, 32)  # (height, width)


def write_recording(path: Path, num_events: int = 20_000, seed: int = 0, overwrite: bool = False) -> Path:
    """A valid canonical recording without GT: random events over 0.2 s."""
    rng = np.random.default_rng(seed)
    t_us = np.sort(rng.integers(0, 200_000, num_events))
    x = rng.integers(0, SENSOR[1], num_events)
    y = rng.integers(0, SENSOR[0], num_events)
    p = rng.integers(0, 2, num_events)
    path.parent.mkdir(parents=True, exist_ok=True)
    events = Events(x.astype(np.uint16), y.astype(np.uint16), t_us, p.astype(np.uint8))
    write_canonical(path, events, SENSOR, overwrite=overwrite)
    return path


def folder_of(tmp_path: Path, edit: Callable[[Path], None] | None = None, count: int = 2) -> Path:
    """``count`` recordings in ``tmp_path/data``; ``edit`` breaks the first one."""
    folder = tmp_path / "data"
    paths = [write_recording(folder / f"rec_{i}.h5", seed=i) for i in range(count)]
    if edit is not None:
        edit(paths[0])
    return folder


def replace_column(path: Path, key: str, values: np.ndarray) -> None:
    with h5py.File(path, "r+") as file:
        del file[key]
        file[key] = values


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def decreasing_at_5m(path: Path) -> None:
    write_recording(path, num_events=5_000_100, overwrite=True)
    with h5py.File(path, "r+") as file:
        t = file["events/t"]
        t[5_000_000] = int(t[5_000_000]) - 5_000


def outside(path: Path) -> None:
    with h5py.File(path, "r+") as file:
        file["events/x"][17] = SENSOR[1] + 3


def no_events(path: Path) -> None:
    for key, dtype in (("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.uint8)):
        replace_column(path, f"events/{key}", np.zeros(0, dtype))
    replace_column(path, "events/ms_to_idx", np.zeros(1, np.uint64))


def float_x(path: Path) -> None:
    with h5py.File(path, "r") as file:
        x = file["events/x"][:].astype(np.float32) + 0.5
    replace_column(path, "events/x", x)


NOT_DATA = [o for o in TINY_TRAIN if not o.startswith("data.")]


def h5dir(folder: Path) -> list[str]:
    return [*NOT_DATA, "data=h5dir", f"data.root={folder}", "data.seq_len=2", "data.batch_size=2",
            "+data.val_windowing.without_gt=count"]  # fmt: skip


CASES = {
    "missing folder": (
        lambda tmp: ["data=h5dir", f"data.root={tmp / 'nowhere'}"],
        r"nowhere.*does not exist",
    ),
    "truncated file": (lambda tmp: h5dir(folder_of(tmp, truncate)), r"rec_0\.h5.*truncated"),
    "text file named .h5": (
        lambda tmp: h5dir(folder_of(tmp, lambda p: p.write_text("t x y p\n0 1 2 1\n"))),
        r"rec_0\.h5: not an HDF5 file",
    ),
    "decreasing timestamps at event 5,000,000": (
        lambda tmp: h5dir(folder_of(tmp, decreasing_at_5m)),
        r"rec_0\.h5.*events/t.*(5,000,000|5000000)",
    ),
    "x outside the sensor": (lambda tmp: h5dir(folder_of(tmp, outside)), r"rec_0\.h5.*events/x.*\b17\b"),
    "0 events": (lambda tmp: h5dir(folder_of(tmp, no_events)), r"rec_0\.h5.*(no events|0 events)"),
    "float x": (lambda tmp: h5dir(folder_of(tmp, float_x)), r"rec_0\.h5.*events/x.*float"),
    "fewer recordings than batch_size": (
        lambda tmp: [*h5dir(folder_of(tmp, count=1)), "data.batch_size=4"],
        r"data\.batch_size=4 .*1 training recording",
    ),
    "trainer.max_steps=abc": (
        lambda tmp: [*TINY_TRAIN, "trainer.max_steps=abc"],
        r"trainer\.max_steps='abc'.*integer",
    ),
    "optimizer.lr=-1": (
        lambda tmp: [*TINY_TRAIN, "optimizer.lr=-1"],
        r"optimizer\.lr=-1 .*learning rate.*> 0",
    ),
    "metrics=all": (lambda tmp: [*TINY_TRAIN, "metrics=all"], r"metrics='all': expected default or full"),
    "data.cameras=[right]": (
        lambda tmp: [*TINY_TRAIN, "data.cameras=[right]"],
        r"data\.cameras=\['right'\]: expected \[left\] or \[left, right\]",
    ),
    "stereo cameras on mono files": (
        lambda tmp: [*h5dir(folder_of(tmp)), "data.cameras=[left,right]", "data.augmentation.p_flip_x=0"],
        r"rec_0\.h5: no 'right' camera \(cameras: \['left'\]\)",
    ),
    "unknown run id": (lambda tmp: [*TINY_TRAIN, "resume=nosuchrun"], r"no run 'nosuchrun'"),
    "task=depth on data without depth": (
        lambda tmp: [*TINY_TRAIN, "task=depth", "model=stereospike_mono"],
        r"data\.targets=\['flow'\]: the task \(DepthTask\) learns from \['depth'\].*data\.targets=\[flow,depth\]",
    ),
    "a stereo model on one camera": (
        lambda tmp: [*TINY_TRAIN, "task=depth", "data.targets=[depth]"],
        r"model\.num_cameras=2, but data\.cameras=\['left'\] gives the input of 1 camera",
    ),
    "a flow model for depth": (
        lambda tmp: [*TINY_TRAIN, "task=depth", "data=synthetic_stereo", "model=lif_firenet"],
        r"DepthTask learns 'depth', but the network \(LIFFireNet\) predicts 'flow'",
    ),
}


def start_train(tmp_path: Path, overrides: list[str]) -> subprocess.CompletedProcess[str]:
    """``python train.py <overrides>`` as a user runs it, with every path under ``tmp_path``."""
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "train.py", *overrides],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every case's run folder and its finished ``train.py``, started as many at a time as there are cores
    (each start is mostly imports: one process per core halves the wait on two cores)."""
    folders = {case: tmp_path_factory.mktemp("user_error") for case in CASES}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = {
            case: pool.submit(start_train, folders[case], CASES[case][0](folders[case])) for case in CASES
        }
        return {case: (folders[case], future.result()) for case, future in done.items()}


@pytest.mark.slow  # one train.py process per case: about 130 s of the default run on 2 cores
@pytest.mark.parametrize("case", CASES)
def test_a_user_error_is_one_clear_message(outcomes, case: str) -> None:
    tmp_path, done = outcomes[case]
    pattern = CASES[case][1]
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert re.search(pattern, errors[0]), errors[0]
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(p.is_dir() for p in runs.iterdir()), (
        "a failed start left a run folder"
    )


def test_validate_with_an_unknown_run_id_is_one_message(tmp_path) -> None:
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "validate.py", "runid=nosuchrun"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: no run 'nosuchrun'"), done.stderr


def test_the_full_traceback_is_one_switch_away(tmp_path) -> None:
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path), "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run(
        [sys.executable, "train.py", *TINY_TRAIN, "optimizer.lr=-1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigError" in done.stderr
