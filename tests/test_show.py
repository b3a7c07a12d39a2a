"""show.py: a dataset config in Rerun without a model (events, frames, GT flow, depth)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rerun.chunk import RrdReader

from tinyflow.data.dataset import Windowing
from tinyflow.io import open_recording
from tinyflow.synth import StereoConfig, SynthConfig, ensure_synthetic_dataset
from tinyflow.viz.blueprint import dataset_blueprint
from tinyflow.viz.dataset import show_recordings
from tinyflow.viz.sink import RerunSink

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


def test_stereo_recordings_show_both_cameras_and_disparity(tmp_path) -> None:
    """In process: a stereo recording's right events and disparity reach the .rrd, and its tab shows them."""
    config = SynthConfig(height=32, width=32, duration_us=100_000)
    path = ensure_synthetic_dataset(tmp_path, config, {"val": 1}, 0, StereoConfig())["val"][0]
    recording = open_recording(path)
    saved = tmp_path / "stereo.rrd"
    blueprint = dataset_blueprint([recording.name], stereo=[recording.name])
    stream = RerunSink(mode="save", save_path=saved).open("tinyflow-data", None, blueprint)
    logged = show_recordings(stream, [recording], Windowing(mode="gt", flow_name="dt1"), max_windows=2)
    stream.flush()
    stream.disconnect()
    assert logged == {"val_000": 2}
    paths = {chunk.entity_path for chunk in RrdReader(saved).stream()}
    assert {f"/val_000/{name}" for name in ("events", "right/events", "depth", "disparity")} <= paths
