"""Runs that survive: a killed or stopped run resumes exactly, with its logs, under the resume rule."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import TINY_TRAIN

from tinyflow.app.checks import ConfigError
from tinyflow.app.runs import find_run
from tinyflow.app.train import train

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# 8 steps over several epochs of the tiny data, a checkpoint every 2 steps, a row of logs per step.
RESUMABLE = [
    *(o for o in TINY_TRAIN if not o.startswith("trainer.max_steps")),
    "trainer.max_steps=8",
    "trainer.log_every_n_steps=1",
    "callbacks.checkpoint_last.every_n_train_steps=2",
]


class KillAt(L.Callback):
    """SIGKILLs its own process when training step ``at_step`` starts (nothing is saved or flushed)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step + 1 == self.at_step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAt(L.Callback):
    """Sends ``signum`` to its own process during training step ``at_step`` (as a user or scheduler would)."""

    def __init__(self, at_step: int, signum: int) -> None:
        self.at_step, self.signum = at_step, signum

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step + 1 == self.at_step:
            os.kill(os.getpid(), self.signum)


def run_cli(root: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYFLOW_ROOT": str(root), "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        [sys.executable, "train.py", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def weights(root: Path, run_id: str) -> dict[str, torch.Tensor]:
    return torch.load(root / "runs" / run_id / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def logged_rows(root: Path, run_id: str) -> list[dict[str, str]]:
    with (root / "runs" / run_id / "csv" / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def assert_same_run(root: Path, killed: str, reference: str) -> None:
    """Equal final weights (1e-6) and the same logged rows, every step once."""
    resumed, uninterrupted = weights(root, killed), weights(root, reference)
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, atol=1e-6, rtol=0, msg=key)
    rows, expected = logged_rows(root, killed), logged_rows(root, reference)
    train_steps = [row["step"] for row in rows if row.get("train/loss")]
    assert len(train_steps) == len(set(train_steps)) == 8, train_steps
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert row["step"] == want["step"]
        for key in ("train/loss", "train/lr"):
            if want.get(key):
                assert float(row[key]) == pytest.approx(float(want[key]), rel=1e-6, abs=1e-9), (key, row)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory) -> Path:
    """A root holding the uninterrupted reference run ``uninterrupted`` (and the tiny data)."""
    root = tmp_path_factory.mktemp("resume")
    reference = run_cli(root, *RESUMABLE, "run_id=uninterrupted")
    assert reference.returncode == 0, reference.stderr[-3000:]
    return root


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(shared_root) -> None:
    tmp_path = shared_root
    killed = run_cli(
        tmp_path,
        *RESUMABLE,
        "run_id=killed",
        "+callbacks.kill._target_=test_resume.KillAt",
        "+callbacks.kill.at_step=5",
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    saved = torch.load(tmp_path / "runs" / "killed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 4  # the second checkpoint
    resumed = run_cli(tmp_path, "resume=killed", "+callbacks.kill=null")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "deleted" not in resumed.stderr and "unreliable" not in resumed.stderr, resumed.stderr
    assert_same_run(tmp_path, "killed", "uninterrupted")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_step_and_says_how_to_resume(shared_root, signum) -> None:
    tmp_path = shared_root
    overrides = [f"+callbacks.signal.{k}={v}" for k, v in (("at_step", 3), ("signum", int(signum)))]
    run_id = f"stopped_{signum.name.lower()}"
    stopped = run_cli(
        tmp_path,
        *RESUMABLE,
        f"run_id={run_id}",
        "+callbacks.signal._target_=test_resume.SignalAt",
        *overrides,
    )
    assert stopped.returncode == 128 + signum, stopped.stderr[-3000:]
    message = stopped.stderr.strip().splitlines()
    assert message[-1] == f"Resume with: python train.py resume={run_id}", stopped.stderr
    assert f"stopped by {signum.name} after step 3" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    saved = torch.load(tmp_path / "runs" / run_id / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 3
    assert run_cli(tmp_path, f"resume={run_id}", "+callbacks.signal=null").returncode == 0
    assert_same_run(tmp_path, run_id, "uninterrupted")


def test_resume_applies_trainer_overrides_and_refuses_the_others(compose_config, tmp_path) -> None:
    cfg = compose_config("train", ["trainer.max_steps=2", "scheduler=constant", "run_id=short"])
    train(cfg)
    with pytest.raises(ConfigError, match=r"model.base_num_channels=8, data.seq_len=2.*only trainer\.\*"):
        train(
            compose_config("train", ["resume=short"]),
            ["resume=short", "model.base_num_channels=8", "data.seq_len=2"],
        )
    longer = ["resume=short", "trainer.max_steps=4"]
    results = train(compose_config("train", longer), longer)
    assert results["run_id"] == "short"
    assert (
        torch.load(find_run("short", tmp_path / "runs").checkpoint("last"), weights_only=True)["global_step"]
        == 4
    )


def test_resume_refuses_to_run_past_a_cosine_schedule(compose_config) -> None:
    train(compose_config("train", ["trainer.max_steps=2", "run_id=cosine"]))
    longer = ["resume=cosine", "trainer.max_steps=6"]
    with pytest.raises(ConfigError, match=r"trainer.max_steps=6 continues past .*scheduler.T_max=2"):
        train(compose_config("train", longer), longer)


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(compose_config, tmp_path) -> None:
    with pytest.raises(ValueError, match="training would take 0 steps"):
        train(compose_config("train", ["data.seq_len=500", "run_id=empty"]))
    assert not (tmp_path / "runs" / "empty").exists()


LAUNCH_VARIABLES = (
    "SLURM_",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "GROUP_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_",
    "TORCHELASTIC_",
    "TINYFLOW_RUN_ID",
)


def slurm_variables(rank: int, port: int) -> dict[str, str]:
    """What ``srun --ntasks=2 --nodes=2`` sets for task ``rank`` (one task per node)."""
    return {
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": str(rank),
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_NODELIST": "localhost",
        "SLURM_JOB_NAME": "tinyflow",
        "SLURM_NTASKS_PER_NODE": "1",
        "MASTER_PORT": str(port),
    }


def torchrun_variables(rank: int, port: int) -> dict[str, str]:
    """What ``torchrun --nnodes=2 --nproc-per-node=1`` sets for worker ``rank``."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "2",
        "GROUP_RANK": str(rank),
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "TORCHELASTIC_RUN_ID": "job-17",
    }


@pytest.mark.parametrize("launcher", [slurm_variables, torchrun_variables], ids=["slurm", "torchrun"])
def test_processes_of_one_slurm_or_torchrun_job_join_one_run(tmp_path, launcher) -> None:
    """Two processes started the way SLURM and torchrun start them: one run id, one writer."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCH_VARIABLES)}
    base["TINYFLOW_ROOT"] = str(tmp_path)
    port = 20000 + os.getpid() % 20000
    command = [
        sys.executable,
        "train.py",
        "trainer=ddp_cpu",
        *TINY_TRAIN,
        "trainer.devices=1",
        "+trainer.num_nodes=2",
    ]
    processes = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env={**base, **launcher(rank, port)},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for rank in (0, 1)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert len(runs) == 1, runs
    assert f"run id: {runs[0]}" in outputs[0][0]
    assert "run id:" not in outputs[1][0], "only global rank 0 prints"
    assert (tmp_path / "runs" / runs[0] / "checkpoints" / "last.ckpt").is_file()
