"""Checkpoints: atomic writes in their own folder (a kill mid-write keeps the previous file, leaves nothing in
$TMPDIR, and its orphan goes at the next save) and weights-only loading (pickled code is refused)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR, TINY_TRAIN, compose_at
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import OmegaConf

from tinyflow.app import checkpoints
from tinyflow.app.build import build_trainer
from tinyflow.app.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    remove_stale_temporaries,
    temporary_path,
    trainer_plugins,
)
from tinyflow.app.train import train
from tinyflow.app.validate import validate

ROOT = Path(__file__).resolve().parents[1]
TRAINERS = sorted(p.stem for p in (CONFIG_DIR / "trainer").glob("*.yaml"))
REFUSAL = (
    r": refusing to load: it holds a pickled object \((posix|nt|os)\.system\) that could run code; "
    r"tinyflow checkpoints hold only tensors and plain containers"
)

# Saves ~40 MB in 640 tensor records (the file grows while it is written) again and again, printing
# each step once its save returned.
WRITER = """
import sys
from pathlib import Path

import torch

from tinyflow.app.checkpoints import AtomicCheckpointIO

plugin = AtomicCheckpointIO()
target = Path(sys.argv[1]) / "last.ckpt"
tensors = [torch.empty(16384) for _ in range(640)]
for step in range(1_000_000):
    for tensor in tensors:
        tensor.fill_(step)
    plugin.save_checkpoint({"step": step, "tensors": tensors}, target)
    print(step, flush=True)
"""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def kill_writer_mid_write(folder: Path, tmpdir: Path, log: Path) -> tuple[int, Path]:
    """Start :data:`WRITER` on ``folder`` (``TMPDIR=tmpdir``), SIGKILL it while its temporary grows after a
    first complete save; returns its pid and its temporary's path."""
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    with log.open("w") as out, log.with_suffix(".err").open("w") as err:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(folder)], cwd=ROOT, env=env, stdout=out, stderr=err
        )
    temporary = temporary_path(folder / "last.ckpt", writer.pid)
    deadline = time.monotonic() + 180
    try:
        while writer.poll() is None and time.monotonic() < deadline:
            if (folder / "last.ckpt").exists() and _size(temporary) > 0:
                os.kill(writer.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL, log.with_suffix(".err").read_text()[-3000:]
    return writer.pid, temporary


def test_a_writer_killed_mid_write_keeps_the_previous_checkpoint_and_leaves_no_orphan(tmp_path) -> None:
    if not Path("/dev/shm").is_dir() or not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable /dev/shm")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    for attempt in range(3):
        folder = Path(tempfile.mkdtemp(prefix="tinyflow-test-", dir="/dev/shm"))
        try:
            if os.stat(folder).st_dev == os.stat(tmpdir).st_dev:
                pytest.skip("/dev/shm and the test's TMPDIR are one filesystem")
            log = tmp_path / f"writer{attempt}.log"
            _, temporary = kill_writer_mid_write(folder, tmpdir, log)
            target = folder / "last.ckpt"
            if not (temporary.exists() and temporary.stat().st_size < target.stat().st_size):
                continue  # killed between two writes, not in one: try again
            steps = log.read_text().split()
            previous = torch.load(target, weights_only=True)
            assert steps and previous["step"] == int(steps[-1]), "the last complete save"
            assert all(torch.equal(t, torch.full_like(t, previous["step"])) for t in previous["tensors"])
            assert sorted(tmpdir.iterdir()) == [], "the writer wrote into $TMPDIR"

            AtomicCheckpointIO().save_checkpoint({"step": -1}, target)
            assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"], "the orphan was not removed"
            assert torch.load(target, weights_only=True) == {"step": -1}
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    pytest.fail("the writer was never killed in the middle of a write")


def test_only_temporaries_of_gone_writers_are_removed(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(done.stdout)
    files = {
        "dead writer": temporary_path(tmp_path / "last.ckpt", dead_pid),
        "reused pid": temporary_path(tmp_path / "best.ckpt"),  # this pid, older than this process
        "live writer": temporary_path(tmp_path / "last.ckpt"),  # this process, writing now
        "not ours": tmp_path / ".last.ckpt.tmp",
        "checkpoint": tmp_path / "last.ckpt",
    }
    for path in files.values():
        path.write_bytes(b"partial")
    older = checkpoints._STARTED - 60
    os.utime(files["reused pid"], (older, older))
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([files["dead writer"], files["reused pid"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        files[k].name for k in ("live writer", "not ours", "checkpoint")
    )


def test_the_plugin_saves_loads_and_removes(tmp_path) -> None:
    plugin = AtomicCheckpointIO()
    target = tmp_path / "sub" / "a.ckpt"
    plugin.save_checkpoint({"w": torch.arange(3)}, target)
    assert torch.equal(plugin.load_checkpoint(target, weights_only=False)["w"], torch.arange(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.ckpt"]
    plugin.remove_checkpoint(target)
    assert not target.exists()
    with pytest.raises(FileNotFoundError):
        plugin.load_checkpoint(target)


class RunsCode:
    """Unpickling it runs ``touch <marker>``: what a hostile checkpoint could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def hostile_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {}, "global_step": 0, "hook": RunsCode(marker)}, path)
    return path


def test_the_plugin_refuses_pickled_code_and_truncated_files(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    path = hostile_checkpoint(tmp_path / "hostile.ckpt", marker)
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + REFUSAL):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # what the caller asks is ignored
    assert not marker.exists()

    good = tmp_path / "good.ckpt"
    torch.save({"w": torch.zeros(1000)}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:1500])
    with pytest.raises(CheckpointError, match=re.escape(str(truncated)) + r": cannot read it: .*truncated"):
        AtomicCheckpointIO().load_checkpoint(truncated)


@pytest.mark.parametrize("option", TRAINERS)
def test_every_trainer_config_checkpoints_through_the_plugin(compose_config, option: str) -> None:
    cfg = compose_config("train", [f"trainer={option}"], tiny=False)
    assert [p._target_ for p in cfg.trainer.plugins] == ["tinyflow.app.checkpoints.AtomicCheckpointIO"]
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        return  # composes; instantiating needs a GPU
    assert isinstance(build_trainer(cfg).strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_trainer_config_without_a_checkpoint_plugin_gets_one() -> None:
    (added,) = trainer_plugins(OmegaConf.create({"devices": 1}))  # e.g. a run saved before plugins existed
    assert isinstance(added, AtomicCheckpointIO)
    chosen = OmegaConf.create({"plugins": [{"_target_": "lightning.fabric.plugins.TorchCheckpointIO"}]})
    assert [type(p) for p in trainer_plugins(chosen)] == [TorchCheckpointIO]


@dataclass(frozen=True)
class TinyRun:
    root: Path
    run_id: str
    saved: list[Path]  # every path the plugin saved to, in order
    tempdir: Path  # tempfile's folder during the run

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "runs" / self.run_id / "checkpoints"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> TinyRun:
    """A 2-step run whose ModelCheckpoint saves last.ckpt after every step, recording what the plugin saves
    while ``tempfile`` points at an empty folder."""
    root, tempdir = tmp_path_factory.mktemp("tinyflow_root"), tmp_path_factory.mktemp("tempdir")
    saved: list[Path] = []
    save = AtomicCheckpointIO.save_checkpoint

    def recording_save(self, checkpoint, path, storage_options=None) -> None:
        saved.append(Path(path))
        save(self, checkpoint, path, storage_options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AtomicCheckpointIO, "save_checkpoint", recording_save)
        patch.setattr(tempfile, "tempdir", str(tempdir))
        overrides = [*TINY_TRAIN, "callbacks.checkpoint_last.every_n_train_steps=1"]
        results = train(compose_at(root, "train", overrides))
    return TinyRun(root, results["run_id"], saved, tempdir)


def test_a_runs_checkpoints_go_through_the_plugin_and_load_weights_only(tiny_run: TinyRun) -> None:
    last = tiny_run.checkpoint_dir / "last.ckpt"
    assert tiny_run.saved.count(last) >= 3, "ModelCheckpoint after steps 1 and 2, then train's resume point"
    assert {p.parent for p in tiny_run.saved} == {tiny_run.checkpoint_dir}
    assert sorted(tiny_run.tempdir.iterdir()) == []
    assert not list(tiny_run.checkpoint_dir.glob(".*.tmp"))
    checkpoint = torch.load(last, weights_only=True)
    assert {"state_dict", "optimizer_states", "lr_schedulers", "loops", "callbacks"} <= checkpoint.keys()
    assert checkpoint["global_step"] == 2


def test_validate_refuses_a_checkpoint_with_pickled_code(tiny_run: TinyRun, tmp_path) -> None:
    marker = tmp_path / "code-ran"
    path = hostile_checkpoint(tmp_path / "hostile.ckpt", marker)
    cfg = compose_at(tiny_run.root, "validate", [f"runid={tiny_run.run_id}", f"checkpoint={path}"])
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + REFUSAL):
        validate(cfg)
    assert not marker.exists()
