"""What a user sees: a short training run prints its id, its steps and its tables, and nothing alarming."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import TINY_TRAIN

ROOT = Path(__file__).resolve().parents[1]

# Lines a default run must never print (issue 12, point 6), as regular expressions.
ALARMING = {
    "Lightning's ModelCheckpoint code example": r"def training_step",
    "the litlogger tip": r"(?i)litlogger",
    "the LeafSpec deprecation": r"LeafSpec",
    "an epoch count of -1 epochs": r"Epoch \d+/-",
    "the model summary's FLOPs": r"Total FLOPs",
    "rerun-sdk at exit": r"Failed to flush",
    "a traceback": r"Traceback \(most recent call last\)",
    "a warnings-module line": r"\w+Warning: ",
}


def run_train(tmp_path: Path, *overrides: str) -> str:
    tiny = [o for o in TINY_TRAIN if o != "callbacks.progress=null"]  # the progress bar is what users see
    command = [
        sys.executable,
        "train.py",
        *tiny,
        "trainer.max_steps=3",
        "trainer.log_every_n_steps=1",
        *overrides,
    ]
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path), "COLUMNS": "120"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def assert_quiet(output: str) -> None:
    found = {what: m.group(0) for what, pattern in ALARMING.items() if (m := re.search(pattern, output))}
    assert not found, f"alarming console lines: {found}\n{output}"


def test_a_default_run_prints_what_it_does_and_nothing_alarming(tmp_path) -> None:
    output = run_train(tmp_path)
    assert_quiet(output)
    assert re.search(r"run id: \w{8}", output)
    assert re.search(r"generating the synthetic dataset \(3 recordings\)", output)
    assert re.search(r"task: FlowTask, network: LIFFireNet \([\d.]+ k parameters\)", output)
    assert "step: 3/3" in output
    for heading in ("AEE [px]", "AAE [deg]", "[%]"):
        assert heading in output, heading  # units survive the table (no console markup)
    second = run_train(tmp_path)
    assert "generating the synthetic dataset" not in second  # cached


def test_a_run_with_a_rerun_recording_exits_quietly(tmp_path) -> None:
    assert_quiet(run_train(tmp_path, "+callbacks=rerun", "callbacks.rerun.mode=save"))


def test_the_checks_see_what_they_look_for() -> None:
    sample = "Epoch 0/-2 ━━━ 2/2\nUserWarning: x\nTotal FLOPs: 0\n"
    assert {w for w, p in ALARMING.items() if re.search(p, sample)} == {
        "an epoch count of -1 epochs",
        "a warnings-module line",
        "the model summary's FLOPs",
    }
