"""What ``validate.py`` does, importable and testable without the Hydra entry point."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from tinyflow.app.build import build_callbacks, build_task, close_callbacks
from tinyflow.app.checkpoints import trainer_plugins
from tinyflow.app.console import metric_selection, print_metrics, print_summary
from tinyflow.app.loading import load_run
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.train import rerun_files

VALIDATE_OVERRIDABLE_GROUPS = ("data", "trainer")
# validate.py runs in one process whatever the run's trainer was (validation is not sharded).
SINGLE_PROCESS = {"devices": 1, "num_nodes": 1, "strategy": "auto"}


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Validate a run's checkpoint with its own config, with the user's overrides of data/trainer applied.

    The run, its checkpoint and its data are loaded by :func:`tinyflow.app.loading.load_run` (a replaced data
    group keeps the run's input format, which the checkpoint fixes): ``runid`` is a local run id, a W&B run
    id or an MLflow run id or name; ``checkpoint`` is ``last`` (alias ``latest``), ``best``, a W&B artifact
    version ``v<N>`` or a file. Validation runs in one process.

    ``metrics`` selects what the table, the JSON of ``output=`` and the returned results hold: ``default``
    (the registry's default metrics) or ``full`` (every metric the task declares).

    Returns:
        ``{"recordings": {name: {key: value}}, "mean": {key: value}}`` (keys from the metric registry).
    """
    register_resolvers()
    quiet_console()
    selection = metric_selection(cfg.get("metrics"))
    loaded = load_run(cfg, VALIDATE_OVERRIDABLE_GROUPS)
    run, run_cfg, checkpoint, datamodule = loaded.run, loaded.config, loaded.checkpoint, loaded.datamodule
    print(f"run id: {run.run_id}\ncheckpoint: {checkpoint}")
    task = build_task(run_cfg)
    trainer = instantiate(
        run_cfg.trainer,
        logger=False,
        callbacks=build_callbacks(cfg),
        enable_checkpointing=False,
        enable_model_summary=False,
        plugins=trainer_plugins(run_cfg.trainer),
        **SINGLE_PROCESS,
    )
    start = time.perf_counter()
    trainer.validate(task, datamodule=datamodule, ckpt_path=str(checkpoint), weights_only=True, verbose=False)
    close_callbacks(trainer)
    results = task.metrics().select(task.validation_results, selection)
    print_metrics(results, task.metrics(), title=f"validation of run {run.run_id} ({Path(checkpoint).name})")
    if cfg.get("output"):
        Path(cfg.output).write_text(json.dumps(results, indent=2))
    summary = {"run dir": run.run_dir.resolve(), "checkpoint": checkpoint, "metrics file": cfg.get("output")}
    summary.update(rerun_files(trainer))
    summary["wall time"] = f"{time.perf_counter() - start:.1f} s"
    print_summary(summary, title=f"validation of run {run.run_id}")
    return results
