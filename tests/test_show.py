"""show.py: a dataset config in Rerun without a model (events, frames, GT flow, depth)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rerun.chunk import RrdReader

ROOT = Path(__file__).resolve().parents[1]
TINY_DATA = [
    "data.synth.height=32",
    "data.synth.width=32",
    "data.synth.duration_us=200000",
    "data.num_train=1",
    "data.num_val=1",
]


def test_show_saves_events_frames_gt_flow_and_depth(tmp_path) -> None:
    saved = tmp_path / "show.rrd"
    command = [sys.executable, "show.py", "data=synthetic", *TINY_DATA, "split=all"]
    command += ["rerun.mode=save", f"rerun.save_path={saved}"]
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "validation recordings" in done.stdout and "windows of 2 recordings" in done.stdout
    paths = {chunk.entity_path for chunk in RrdReader(saved).stream()}
    for recording in ("val_000", "train_000"):
        expected = {
            f"/{recording}/{name}" for name in ("events", "frames", "flow_gt", "flow_gt/arrows", "depth")
        }
        assert expected | {f"/{recording}/event_rate"} <= paths
    assert RrdReader(saved).blueprints()
