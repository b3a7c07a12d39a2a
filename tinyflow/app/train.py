"""What ``train.py`` does, importable and testable without the Hydra entry point."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.app.build import build_task, build_trainer, close_callbacks
from tinyflow.app.console import print_metrics, print_summary
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.runs import Run, find_run, inherited_run_id, new_run_id, shared_run_id
from tinyflow.app.tracking import describe_loggers, finish_trackers, publish_run, record_run_start
from tinyflow.tasks import RecurrentTask


def _start_run(cfg: DictConfig) -> tuple[DictConfig, Run, str | None]:
    """Assign the run id (fresh, the one being resumed, or the launching rank's) and save the resolved
    config (rank 0 only)."""
    resume_id = cfg.get("resume")
    if resume_id:
        run = find_run(resume_id, cfg.paths.runs_dir)
        saved = run.config()
        checkpoint = run.checkpoint("last")
        return saved, run, str(checkpoint)
    with open_dict(cfg):
        cfg.run_id = cfg.get("run_id") or inherited_run_id() or new_run_id()
    run = Run(cfg.run_id, Path(cfg.paths.run_dir))
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    if rank_zero_only.rank == 0:
        run.save_config(resolved)
    return resolved, run, None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, save the last checkpoint, validate it, publish it to the trackers and print the tables.

    Under DDP every rank runs this; the ranks that Lightning launches join the same run id, and only
    rank 0 writes the config, checkpoints and artifacts, and prints.

    Returns:
        The validation results ``{"recordings": {name: {key: value}}, "mean": {key: value}}`` with the
        ``run_id`` and the ``task`` (the metric registry's task name) added.
    """
    register_resolvers()
    quiet_console()
    cfg, run, checkpoint = _start_run(cfg)
    rank_zero_only(print)(f"run id: {run.run_id}\nrun dir: {run.run_dir.resolve()}")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    task = build_task(cfg)
    trainer = build_trainer(cfg)
    rank_zero_only(print)(describe_task(task))
    if rank_zero_only.rank == 0:
        record_run_start(trainer.loggers, OmegaConf.to_container(cfg), run.run_id, run.run_dir)
    start = time.perf_counter()
    with shared_run_id(run.run_id):
        trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint)
        trainer.save_checkpoint(run.checkpoint_dir / "last.ckpt", weights_only=False)  # a resume point
        trainer.validate(task, datamodule=datamodule, verbose=False)
    close_callbacks(trainer)
    results = task.validation_results
    if trainer.is_global_zero:
        publish_run(trainer.loggers, run.config_path, run.checkpoint_dir)
        print_metrics(results, task.metrics(), title=f"validation of run {run.run_id} (last checkpoint)")
        print_summary(_run_summary(run, trainer, time.perf_counter() - start), title=f"run {run.run_id}")
        finish_trackers(trainer.loggers)
    return {"run_id": run.run_id, "task": task.metric_task, **results}


def describe_task(task: RecurrentTask) -> str:
    """One line: the task, its network and the network's parameter count."""
    network = task.network.network
    parameters = sum(p.numel() for p in network.parameters())
    return f"task: {type(task).__name__}, network: {type(network).__name__} ({parameters / 1e3:.1f} k parameters)"


def sweep_objective(cfg: DictConfig, results: dict[str, Any]) -> float:
    """What a hyperparameter search minimises: the task's declared objective (flow: the mean validation
    AEE, or the RSAT on data without GT)."""
    value = get_class(cfg.task._target_).metrics().objective_value(results["mean"])
    return value if math.isfinite(value) else math.nan


def _run_summary(run: Run, trainer: L.Trainer, seconds: float) -> dict[str, object]:
    """What the end-of-training table shows: where everything is, how long it took."""
    summary: dict[str, object] = {
        "run dir": run.run_dir.resolve(),
        "checkpoint": run.checkpoint_dir / "last.ckpt",
        "steps": trainer.global_step,
        "processes": trainer.world_size,
        "wall time": f"{seconds:.1f} s",
    }
    summary.update(describe_loggers(trainer.loggers))
    summary.update(rerun_files(trainer))
    return summary


def rerun_files(trainer: L.Trainer) -> dict[str, object]:
    """The .rrd files written by Rerun callbacks (save mode)."""
    files = [f for c in trainer.callbacks for f in getattr(c, "saved_files", [])]
    return {"rerun recordings": ", ".join(str(f) for f in files)} if files else {}
