"""Rerun visualisation: .rrd files of training and validation, a live viewer, zero cost when off."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rerun.blueprint as rrb
from hydra.utils import instantiate
from rerun.chunk import RrdReader

from tinyflow.app.build import build_task, build_trainer
from tinyflow.app.train import train
from tinyflow.app.validate import validate
from tinyflow.callbacks.media import LoggerMediaCallback
from tinyflow.callbacks.rerun import RerunCallback
from tinyflow.viz import colour_wheel_legend, depth_to_rgb, events_to_rgb, flow_to_rgb, sparse_arrows

TRAIN_ENTITIES = {"/train/events", "/train/flow", "/train/flow/arrows", "/train/loss"}
TRAIN_ENTITIES |= {"/train/iwe/unwarped", "/train/iwe/t_start", "/train/iwe/t_end", "/train/firing_rate/head"}
VAL_ENTITIES = {"/val/events", "/val/flow", "/val/flow_gt", "/val/flow_error", "/val/aee", "/val/iwe/t_end"}


def entity_paths(path: Path) -> set[str]:
    return {chunk.entity_path for chunk in RrdReader(path).stream()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rerun viewer exited with {process.returncode}: {process.stderr.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"rerun viewer did not listen on port {port} within {timeout_s} s")


def test_save_mode_records_training_and_validation_and_replays_a_validation(compose_config, tmp_path) -> None:
    overrides = ["+callbacks=rerun", "callbacks.rerun.mode=save", "callbacks.rerun.train_every_n_steps=1"]
    results = train(compose_config("train", [*overrides, "run_id=rerunrun"]))
    rerun_dir = tmp_path / "runs" / "rerunrun" / "rerun"
    assert entity_paths(rerun_dir / "fit.rrd") >= TRAIN_ENTITIES
    assert VAL_ENTITIES | {"/metrics/val/aee", "/legend/flow_colour_wheel"} <= entity_paths(
        rerun_dir / "validate.rrd"
    )
    assert RrdReader(rerun_dir / "fit.rrd").blueprints(), "the blueprint travels with the recording"

    (rerun_dir / "validate.rrd").unlink()
    validate(compose_config("validate", [f"runid={results['run_id']}", *overrides[:2]]))
    assert entity_paths(rerun_dir / "validate.rrd") >= VAL_ENTITIES


DEPTH_ENTITIES = {"/val/depth", "/val/depth_gt", "/val/depth_error", "/val/mde", "/val/input/right"}


def test_depth_runs_record_depth_images_for_both_cameras(compose_config, tmp_path) -> None:
    overrides = ["+callbacks=rerun", "callbacks.rerun.mode=save", "callbacks.rerun.train_every_n_steps=1"]
    train(compose_config("train", [*overrides, "task=depth", "data=synthetic_stereo", "run_id=rerundepth"]))
    rerun_dir = tmp_path / "runs" / "rerundepth" / "rerun"
    assert {"/train/depth", "/train/input/left", "/train/input/right", "/train/loss"} <= entity_paths(
        rerun_dir / "fit.rrd"
    )
    assert DEPTH_ENTITIES | {"/metrics/val/mde", "/metrics/val/mde_const"} <= entity_paths(
        rerun_dir / "validate.rrd"
    )
    assert not any(path.startswith("/val/flow") for path in entity_paths(rerun_dir / "validate.rrd"))


def test_depth_colours_share_one_map() -> None:
    gt = np.array([[1.0, 4.0], [np.nan, 2.5]])
    image = depth_to_rgb(gt, 1.0, 4.0)
    assert tuple(image[0, 0]) == (252, 253, 191) and tuple(image[0, 1]) == (0, 0, 4), "near light, far dark"
    assert not image[1, 0].any(), "invalid GT is black"
    assert (depth_to_rgb(np.array([[0.5, 9.0]]), 1.0, 4.0) == image[0]).all(), "clipped to the GT's range"


def test_connect_mode_streams_to_a_headless_viewer(compose_config, tmp_path) -> None:
    binary = shutil.which("rerun") or shutil.which("rerun", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.skip("the rerun binary (rerun-sdk's CLI) is not on PATH nor next to the Python interpreter")
    port, saved = free_port(), tmp_path / "viewer.rrd"
    viewer = subprocess.Popen(
        [binary, "--save", str(saved), "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, viewer)
        overrides = [
            "+callbacks=rerun",
            "callbacks.rerun.mode=connect",
            f"callbacks.rerun.address=127.0.0.1:{port}",
        ]
        train(compose_config("train", overrides))
        time.sleep(1.0)  # let the viewer write what it received
    finally:
        viewer.send_signal(signal.SIGINT)
        viewer.wait(timeout=30)
    assert entity_paths(saved) >= TRAIN_ENTITIES | VAL_ENTITIES


def test_blueprint_comes_from_the_config_and_nothing_observes_without_a_visualiser(compose_config) -> None:
    cfg = compose_config("train", ["+callbacks=rerun", "logger=csv"])
    callback = instantiate(cfg.callbacks.rerun)
    assert isinstance(callback, RerunCallback) and set(callback.blueprint) == {"flow", "depth"}
    assert all(isinstance(layout, rrb.Blueprint) for layout in callback.blueprint.values())
    assert callback.recording is None, "no viewer is started before setup"

    cfg = compose_config("train", ["logger=csv"])
    trainer, module = build_trainer(cfg), build_task(cfg)
    media = next(c for c in trainer.callbacks if isinstance(c, LoggerMediaCallback))
    media.setup(trainer, module, "fit")
    assert module.window_observers == [], "without W&B / MLflow the media callback stays idle"


def test_rerun_mode_is_checked(compose_config) -> None:
    with pytest.raises(
        ValueError, match="rerun mode: expected one of spawn, connect, serve, save; got 'rrd'"
    ):
        RerunCallback(mode="rrd")


def test_colours_follow_the_conventions() -> None:
    right, down = np.zeros((2, 1, 1)), np.zeros((2, 1, 1))
    right[0], down[1] = 1.0, 1.0
    assert tuple(flow_to_rgb(np.zeros((2, 3, 3)))[0, 0]) == (255, 255, 255), "zero flow is white"
    assert flow_to_rgb(right, 1.0)[0, 0, 0] == 255 and flow_to_rgb(right, 1.0)[0, 0, 1] < 50, "right: red"
    assert flow_to_rgb(down, 1.0)[0, 0, 2] < 50, "down: yellow-orange"
    assert colour_wheel_legend(16).shape == (16, 16, 3)
    counts = np.zeros((2, 2, 2))
    counts[0, 0, 0], counts[1, 1, 1] = 3, 1
    image = events_to_rgb(counts)
    assert image[0, 0, 2] > image[0, 0, 0] and image[1, 1, 0] > image[1, 1, 2] and not image[0, 1].any()
    origins, vectors = sparse_arrows(np.ones((2, 8, 8)), stride=4)
    assert origins.tolist() == [[2, 2], [6, 2], [2, 6], [6, 6]] and (vectors == 1).all()
