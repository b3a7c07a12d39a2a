"""What ``train.py`` and ``validate.py`` do, importable and testable without the Hydra entry points."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.config import register_resolvers
from tinyflow.lit.flow import FlowLightningModule, mean_over_recordings
from tinyflow.models.stateful import StatefulNetwork
from tinyflow.report import print_metrics, print_summary
from tinyflow.runs import (
    ARTIFACT_VERSION,
    Run,
    Trackers,
    find_run,
    inherited_run_id,
    new_run_id,
    shared_run_id,
)
from tinyflow.tracking import describe_loggers, finish_trackers, publish_run, record_run_start

VALIDATE_OVERRIDABLE_GROUPS = ("data", "trainer")
# The network's input format: a checkpoint fixes it, so a replaced data group keeps the run's values.
MODEL_INPUT_KEYS = ("encoding", "num_bins")
# validate.py runs in one process whatever the run's trainer was (validation is not sharded).
SINGLE_PROCESS = {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def build_module(cfg: DictConfig) -> FlowLightningModule:
    """The LightningModule of a config: network (``model``), loss, optimiser and scheduler factories.

    A config without ``scheduler`` (or with ``scheduler=constant``) keeps the learning rate constant.
    """
    scheduler = cfg.get("scheduler") or None
    if scheduler is not None and "T_max" in scheduler and not int(scheduler.T_max) >= 1:
        raise ValueError(
            f"scheduler.T_max: expected the number of optimiser steps to decay over (>= 1); got "
            f"{scheduler.T_max} (it follows trainer.max_steps: set trainer.max_steps, or scheduler=constant)"
        )
    return FlowLightningModule(
        network=StatefulNetwork(instantiate(cfg.model)),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        gradient_clip_val=cfg.get("gradient_clip_val"),
        scheduler=instantiate(scheduler) if scheduler is not None else None,
    )


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The config's callbacks (a named dict of ``_target_`` configs; null entries are left out)."""
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """A Trainer with the config's callbacks and loggers (named dicts of ``_target_`` configs)."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=loggers or False)


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
        The validation results (see :func:`validate`) with the ``run_id`` added.
    """
    register_resolvers()
    cfg, run, checkpoint = _start_run(cfg)
    rank_zero_only(print)(f"run id: {run.run_id}\nrun dir: {run.run_dir.resolve()}")
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    if rank_zero_only.rank == 0:
        record_run_start(trainer.loggers, OmegaConf.to_container(cfg), run.run_id, run.run_dir)
    start = time.perf_counter()
    with shared_run_id(run.run_id):
        trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
        trainer.save_checkpoint(run.checkpoint_dir / "last.ckpt")
        trainer.validate(module, datamodule=datamodule, verbose=False)
    results = _results(module)
    if trainer.is_global_zero:
        publish_run(trainer.loggers, run.config_path, run.checkpoint_dir)
        print_metrics(results, title=f"validation of run {run.run_id} (last checkpoint)")
        print_summary(_run_summary(run, trainer, time.perf_counter() - start), title=f"run {run.run_id}")
        finish_trackers(trainer.loggers)
    return {"run_id": run.run_id, **results}


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Validate a run's checkpoint with its own config, with the user's overrides of data/trainer applied.

    A replaced data group keeps the run's input format (:data:`MODEL_INPUT_KEYS`), which the checkpoint fixes.

    ``runid`` is a local run id, a W&B run id or an MLflow run id or name (see
    :func:`tinyflow.runs.find_run`); ``checkpoint`` is ``last`` (alias ``latest``), ``best``, a W&B
    artifact version ``v<N>`` or a file. Validation runs in one process.
    """
    register_resolvers()
    which = str(cfg.checkpoint)
    trackers = Trackers(**OmegaConf.to_container(cfg.trackers, resolve=True)) if cfg.get("trackers") else None
    version = which if ARTIFACT_VERSION.fullmatch(which) else "latest"
    run = find_run(str(cfg.runid), cfg.paths.runs_dir, trackers, version)
    run_cfg = run.config()
    trained_input = {key: run_cfg.data[key] for key in MODEL_INPUT_KEYS if key in run_cfg.data}
    with open_dict(run_cfg):
        for group in VALIDATE_OVERRIDABLE_GROUPS:
            if cfg.get(group) is not None:
                run_cfg[group] = OmegaConf.to_container(cfg[group], resolve=True)
        run_cfg.data.update(trained_input)
    checkpoint = run.checkpoint(which)
    print(f"run id: {run.run_id}\ncheckpoint: {checkpoint}")
    datamodule = instantiate(run_cfg.data)
    module = build_module(run_cfg)
    trainer = instantiate(
        run_cfg.trainer,
        logger=False,
        callbacks=build_callbacks(cfg),
        enable_checkpointing=False,
        **SINGLE_PROCESS,
    )
    start = time.perf_counter()
    trainer.validate(
        module, datamodule=datamodule, ckpt_path=str(checkpoint), weights_only=False, verbose=False
    )
    results = _results(module)
    print_metrics(results, title=f"validation of run {run.run_id} ({Path(checkpoint).name})")
    if cfg.get("output"):
        Path(cfg.output).write_text(json.dumps(results, indent=2))
    summary = {"run dir": run.run_dir.resolve(), "checkpoint": checkpoint, "metrics file": cfg.get("output")}
    summary.update(_rerun_files(trainer))
    summary["wall time"] = f"{time.perf_counter() - start:.1f} s"
    print_summary(summary, title=f"validation of run {run.run_id}")
    return results


def sweep_objective(results: dict[str, Any]) -> float:
    """What a hyperparameter search minimises: the mean validation AEE, or the RSAT where there is no GT."""
    mean = results["mean"]
    aee = mean.get("aee", math.nan)
    return float(aee if math.isfinite(aee) else mean.get("rsat", math.nan))


def _results(module: FlowLightningModule) -> dict[str, Any]:
    """``{"recordings": {name: {metric: value}}, "mean": {metric: value}}`` of the last validation."""
    recordings = module.validation_results
    return {"recordings": recordings, "mean": mean_over_recordings(recordings)}


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
    summary.update(_rerun_files(trainer))
    return summary


def _rerun_files(trainer: L.Trainer) -> dict[str, object]:
    """The .rrd files written by Rerun callbacks (save mode)."""
    files = [f for c in trainer.callbacks for f in getattr(c, "saved_files", [])]
    return {"rerun recordings": ", ".join(str(f) for f in files)} if files else {}
