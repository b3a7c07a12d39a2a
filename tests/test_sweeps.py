"""Scaling out: an Optuna search through train.py -m, and distributed training on 2 CPU processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TRAIN

from tinyflow.app.runs import find_run
from tinyflow.data.sampler import SequentialBatchSampler

ROOT = Path(__file__).resolve().parents[1]


def run_train(arguments: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TINYFLOW_ROOT": str(root)}
    command = [sys.executable, "train.py", *arguments, *TINY_TRAIN]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def test_optuna_search_runs_its_trials_and_reports_the_best(tmp_path) -> None:
    done = run_train(["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2"], tmp_path)
    assert len(set(re.findall(r"run id: (\w+)", done.stdout))) == 2
    assert "Best parameters" in done.stdout and "Best value" in done.stdout
    (results_file,) = (tmp_path / "runs" / "sweeps").glob("tinyflow-*/optimization_results.yaml")
    best = yaml.safe_load(results_file.read_text())
    assert {"optimizer.lr", "loss.smoothness_weight"} == set(best["best_params"])
    assert best["best_value"] > 0, "the mean validation AEE of the best trial"


def test_ddp_on_two_cpu_processes_trains_one_run(tmp_path) -> None:
    done = run_train(["trainer=ddp_cpu", "run_id=ddprun"], tmp_path)
    assert "Starting with 2 processes" in done.stdout + done.stderr
    assert re.findall(r"run id: (\w+)", done.stdout) == ["ddprun"], "rank 1 joins the run and prints nothing"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["ddprun"]
    assert re.search(r"processes\s*│\s*2", done.stdout) and re.search(r"steps\s*│\s*2", done.stdout)
    run = find_run("ddprun", tmp_path / "runs")
    assert run.checkpoint("last").is_file() and run.config().trainer.devices == 2


def test_ranks_get_as_many_training_batches_as_each_other() -> None:
    counts = [7, 3, 12, 5, 9]
    lengths = [
        len(SequentialBatchSampler(counts, 2, 3, shuffle=True, seed=s, rank=r, world_size=2))
        for s in range(5)
        for r in range(2)
    ]
    assert lengths[0::2] == lengths[1::2]
    with pytest.raises(ValueError, match="1 recordings with windows cannot be shared by 2 ranks"):
        SequentialBatchSampler([4, 0], 1, 2, shuffle=True, rank=0, world_size=2)
