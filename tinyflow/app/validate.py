"""What ``validate.py`` does, importable and testable without the Hydra entry point."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from tinyflow.app.build import build_callbacks, build_task, close_callbacks
from tinyflow.app.checkpoints import trainer_plugins
from tinyflow.app.checks import ConfigError, hardware_profile
from tinyflow.app.console import metric_selection, print_layers, print_metrics, print_summary
from tinyflow.app.loading import load_run
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.train import rerun_files
from tinyflow.callbacks.predictions import DSECSubmissionWriter
from tinyflow.callbacks.spikes import SpikeStatistics
from tinyflow.metrics.spikes import SPIKE_STATISTICS

VALIDATE_OVERRIDABLE_GROUPS = ("data", "trainer")
# validate.py runs in one process whatever the run's trainer was (validation is not sharded).
SINGLE_PROCESS = {"devices": 1, "num_nodes": 1, "strategy": "auto"}
SPLITS = ("val", "test")


def use_split(cfg: DictConfig, run_cfg: DictConfig, trained: DictConfig) -> None:
    """Point the run's data config at ``cfg.split``. The test split's windows default to the network's own:
    the run's training window (``data.test_windowing.duration_us: null``), which predictions are rescaled from."""
    split = cfg.get("split") or "val"
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    if cfg.get("submission") and split != "test":
        raise ConfigError(
            f"submission={cfg.submission}: a benchmark submission predicts the test split; add split=test"
        )
    if split == "val":
        return
    run_cfg.data.eval_split = split
    windowing = run_cfg.data.get("test_windowing")
    if windowing is not None and windowing.get("duration_us") is None:
        train = trained.data.train_windowing
        if train.get("mode") != "duration":
            raise ConfigError(
                f"data.test_windowing.duration_us=null takes the run's training window, but the run trained on "
                f"{train.get('mode')} windows; set data.test_windowing.duration_us (µs)"
            )
        windowing.duration_us = int(train.duration_us)


def prediction_callbacks(cfg: DictConfig) -> list:
    """The writers of predictions that validate.py's own keys ask for (``submission=DIR``)."""
    return [DSECSubmissionWriter(cfg.submission)] if cfg.get("submission") else []


def written_predictions(trainer: Any) -> dict[str, Path]:
    """The prediction files the trainer's writers produced (submission folder, flow HDF5), for the summary."""
    return {c.label: c.written for c in trainer.callbacks if getattr(c, "written", None) is not None}


def write_json_atomic(path: Path, data: Any) -> None:
    """``data`` as indented JSON at ``path``, atomically (a temporary file beside it, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validation_trainer(run_cfg: DictConfig, callbacks: list, **options: Any) -> Any:
    """The run's own trainer for validation: one process, no logger, no checkpointing (``options``: more
    Trainer arguments, e.g. ``enable_progress_bar=False``)."""
    return instantiate(
        run_cfg.trainer,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        plugins=trainer_plugins(run_cfg.trainer),
        **{**SINGLE_PROCESS, **options},
    )


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Validate a run's checkpoint with its own config, with the user's overrides of data/trainer applied.

    The run, its checkpoint and its data are loaded by :func:`tinyflow.app.loading.load_run` (a replaced data
    group keeps the run's input format, which the checkpoint fixes): ``runid`` is a local run id, a W&B run
    id or an MLflow run id or name; ``checkpoint`` is ``last`` (alias ``latest``), ``best``, a W&B artifact
    version ``v<N>`` or a file. Validation runs in one process.

    ``split=test`` validates the data config's test split (no GT: FWL and RSAT); ``submission=DIR`` also
    writes a DSEC benchmark submission there (:class:`~tinyflow.callbacks.predictions.DSECSubmissionWriter`).

    ``metrics`` selects what the table, the JSON of ``output=`` and the returned results hold: ``default``
    (the registry's default metrics) or ``full`` (every metric the task declares).

    ``hardware`` prices the spike statistics (firing rates, ACs, MACs, energy per window, and the
    ANN-equivalent energy; :class:`~tinyflow.callbacks.spikes.SpikeStatistics`), printed as two tables
    (per recording, per layer) and returned under ``spikes``.

    Returns:
        ``{"recordings": {name: {key: value}}, "mean": {key: value}, "spikes": {"hardware": name,
        "recordings": ..., "mean": ..., "layers": {layer: {key: value}}}}`` (keys from the metric registry).
    """
    register_resolvers()
    quiet_console()
    selection = metric_selection(cfg.get("metrics"))
    hardware = hardware_profile(cfg)
    loaded = load_run(
        cfg, VALIDATE_OVERRIDABLE_GROUPS, adjust=lambda run_cfg, trained: use_split(cfg, run_cfg, trained)
    )
    run, run_cfg, checkpoint, datamodule = loaded.run, loaded.config, loaded.checkpoint, loaded.datamodule
    print(f"run id: {run.run_id}\ncheckpoint: {checkpoint}")
    task = build_task(run_cfg)
    spikes = SpikeStatistics(hardware, train_every_n_steps=0)
    trainer = validation_trainer(run_cfg, [*build_callbacks(cfg), *prediction_callbacks(cfg), spikes])
    start = time.perf_counter()
    trainer.validate(task, datamodule=datamodule, ckpt_path=str(checkpoint), weights_only=True, verbose=False)
    close_callbacks(trainer)
    results = task.metrics().select(task.validation_results, selection)
    results["spikes"] = SPIKE_STATISTICS.select(spikes.results, selection)
    print_metrics(results, task.metrics(), title=f"validation of run {run.run_id} ({Path(checkpoint).name})")
    on = f"on {hardware.name}" if hardware is not None else "(no hardware profile: no energy)"
    print_metrics(results["spikes"], SPIKE_STATISTICS, title=f"spike statistics per window {on}")
    print_layers(results["spikes"]["layers"], SPIKE_STATISTICS, title=f"per layer, mean over windows {on}")
    if cfg.get("output"):
        write_json_atomic(Path(cfg.output), results)
    summary = {"run dir": run.run_dir.resolve(), "checkpoint": checkpoint, "metrics file": cfg.get("output")}
    summary.update(rerun_files(trainer))
    summary.update(written_predictions(trainer))
    summary["wall time"] = f"{time.perf_counter() - start:.1f} s"
    print_summary(summary, title=f"validation of run {run.run_id}")
    return results
