"""What ``train.py`` does, importable and testable without the Hydra entry point."""

from __future__ import annotations

import math
import shutil
import signal
import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.app.build import build_quantisation, build_task, build_trainer, close_callbacks
from tinyflow.app.checks import check_config, check_resumable
from tinyflow.app.console import metric_selection, print_metrics, print_summary
from tinyflow.app.errors import RunStopped
from tinyflow.app.init_from import initial_weights
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.resume import apply_resume_overrides, continue_tracker_runs
from tinyflow.app.runs import Run, find_run, inherited_run_id, job_run_id, new_run_id, shared_run_id
from tinyflow.app.tracking import describe_loggers, finish_trackers, publish_run, record_run_start
from tinyflow.callbacks.signals import StopOnSignal
from tinyflow.tasks import RecurrentTask


def _start_run(cfg: DictConfig, overrides: Sequence[str]) -> tuple[DictConfig, Run, str | None]:
    """The run's config, its folder and the checkpoint to resume from (None for a new run).

    A new run gets its id (given, the launching rank's, the multi-process job's, or fresh); the resolved
    config is checked, but nothing is written yet (see :func:`_save_config`). ``resume=<id>`` reloads the
    run's saved config with the overrides that :mod:`tinyflow.app.resume` allows.
    """
    resume_id = cfg.get("resume")
    if resume_id:
        run = find_run(str(resume_id), cfg.paths.runs_dir)
        saved = apply_resume_overrides(run.config(), cfg, overrides)
        check_config(saved)
        check_resumable(saved)
        continue_tracker_runs(saved, run.run_id)
        return saved, run, str(run.checkpoint("last"))
    with open_dict(cfg):
        cfg.run_id = cfg.get("run_id") or inherited_run_id() or job_run_id() or new_run_id()
    check_config(cfg)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    return resolved, Run(cfg.run_id, Path(cfg.paths.run_dir)), None


def train(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Train, save the last checkpoint, validate it, publish it to the trackers and print the tables.

    Config values and data are checked before anything is written: a bad start leaves no run folder, and
    neither does a run that fails before its first checkpoint. ``init_from=<run id>`` starts the network
    from that float run's weights. A quantised network (``quant`` group) is first calibrated on training
    batches; post-training quantisation (``quant.trains=false``) then validates and saves it untrained.
    Under DDP every rank runs this; the ranks join one run id (launched by Lightning, SLURM or torchrun),
    and only global rank 0 writes and prints.

    Args:
        cfg: the composed ``train`` config.
        overrides: the command line's overrides (what ``resume=`` may apply); default: Hydra's.

    Returns:
        The validation results ``{"recordings": {name: {key: value}}, "mean": {key: value}}`` (the metrics
        that ``metrics=default|full`` selects) with the ``run_id`` and the ``task`` (the metric registry's
        task name) added.

    Raises:
        RunStopped: a signal stopped the training; ``last.ckpt`` holds the step it stopped at.
    """
    register_resolvers()
    quiet_console()
    if overrides is None:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    cfg, run, checkpoint = _start_run(cfg, overrides)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()
        datamodule.check_not_empty("fit")
    task = build_task(cfg, initial_weights(cfg) if checkpoint is None else None)
    fresh = checkpoint is None and not run.run_dir.exists()
    try:
        return _fit_and_validate(cfg, run, datamodule, task, checkpoint)
    except BaseException:
        if fresh and rank_zero_only.rank == 0 and not any(run.checkpoint_dir.glob("*.ckpt")):
            shutil.rmtree(run.run_dir, ignore_errors=True)  # a failed start leaves nothing behind
        raise


def _fit_and_validate(
    cfg: DictConfig, run: Run, datamodule: L.LightningDataModule, task: RecurrentTask, checkpoint: str | None
) -> dict[str, Any]:
    if rank_zero_only.rank == 0 and checkpoint is None:
        run.save_config(cfg)
    rank_zero_only(print)(f"run id: {run.run_id}\nrun dir: {run.run_dir.resolve()}")
    trainer = build_trainer(cfg)
    quant = build_quantisation(cfg)
    rank_zero_only(print)(describe_task(task, quant.describe()))
    if rank_zero_only.rank == 0 and checkpoint is None:  # a resumed run's trackers hold them already
        record_run_start(trainer.loggers, OmegaConf.to_container(cfg), run.run_id, run.run_dir)
    start = time.perf_counter()
    if checkpoint is None and quant.calibration_batches:  # a resumed run's checkpoint holds the scales
        windows = calibrate_on_training_data(task, datamodule, quant.calibration_batches)
        rank_zero_only(print)(f"calibrated the activation scales on {windows} training windows")
    with shared_run_id(run.run_id):
        if quant.trains:
            try:
                trainer.fit(task, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
            except SIGTERMException:  # Lightning's way out after a SIGTERM
                _raise_if_stopped(trainer, run)
                raise
            _raise_if_stopped(trainer, run)
            trainer.save_checkpoint(run.checkpoint_dir / "last.ckpt", weights_only=False)  # a resume point
            trainer.validate(task, datamodule=datamodule, verbose=False)
        else:  # post-training quantisation: the calibrated network is the result
            trainer.validate(task, datamodule=datamodule, verbose=False)
            trainer.save_checkpoint(run.checkpoint_dir / "last.ckpt", weights_only=True)
    close_callbacks(trainer)
    results = task.metrics().select(task.validation_results, metric_selection(cfg.get("metrics")))
    if trainer.is_global_zero:
        publish_run(trainer.loggers, run.config_path, run.checkpoint_dir)
        print_metrics(results, task.metrics(), title=f"validation of run {run.run_id} (last checkpoint)")
        print_summary(_run_summary(run, trainer, time.perf_counter() - start), title=f"run {run.run_id}")
        finish_trackers(trainer.loggers)
    return {"run_id": run.run_id, "task": task.metric_task, **results}


def _raise_if_stopped(trainer: L.Trainer, run: Run) -> None:
    """:class:`RunStopped` when a :class:`StopOnSignal` callback stopped the training."""
    for callback in trainer.callbacks:
        if isinstance(callback, StopOnSignal) and callback.stopped_by is not None:
            close_callbacks(trainer)
            finish_trackers(trainer.loggers)
            signum = getattr(signal, callback.stopped_by, signal.SIGTERM)
            raise RunStopped(
                f"stopped by {callback.stopped_by} after step {trainer.global_step}; the checkpoint of that "
                f"step is {callback.checkpoint}.\nResume with: python train.py resume={run.run_id}",
                exit_code=128 + int(signum),
            )


def describe_task(task: RecurrentTask, quantisation: str) -> str:
    """One line: the task, its network, the network's parameter count and its quantisation."""
    network = task.network.network
    parameters = sum(p.numel() for p in network.parameters())
    return (
        f"task: {type(task).__name__}, network: {type(network).__name__} ({parameters / 1e3:.1f} k parameters), "
        f"quant: {quantisation}"
    )


def calibrate_on_training_data(task: RecurrentTask, datamodule: L.LightningDataModule, batches: int) -> int:
    """Calibrate the task's quantised network on the first ``batches`` training batches (the order the
    training starts with); returns the windows seen. The DataModule is not yet attached to a trainer, so
    every rank of a distributed run calibrates on the same batches and gets the same scales."""
    from tinyflow.quant.calibrate import calibrate  # brevitas: only where a run quantises

    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    windows = calibrate(task.network, islice(loader, batches))
    del loader  # its worker processes end here, before the training starts its own
    return windows


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
