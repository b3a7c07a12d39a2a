"""Send a run's config and checkpoints to the W&B and MLflow loggers of a trainer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger

MLFLOW_RUN_ID_TAG = "tinyflow.run_id"
MLFLOW_RUN_DIR_TAG = "tinyflow.run_dir"
MLFLOW_ARTIFACT_DIR = "run"  # artifacts: run/config.yaml, run/checkpoints/<name>.ckpt


def wandb_artifact_name(wandb_id: str) -> str:
    """Name of the W&B artifact (type ``model``) holding a run's config and checkpoints."""
    return f"tinyflow-{wandb_id}"


def run_files(config_path: Path, checkpoint_dir: Path) -> dict[str, Path]:
    """Files of a run by their path inside a published run folder."""
    checkpoints = sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    return {"config.yaml": config_path, **{f"checkpoints/{path.name}": path for path in checkpoints}}


def record_run_start(loggers: Sequence[Logger], config: dict[str, Any], run_id: str, run_dir: Path) -> None:
    """Every logger gets the resolved config as hyperparameters; MLflow runs are tagged with the tinyflow
    run id and the absolute run folder (how ``validate.py runid=<MLflow id or name>`` finds them)."""
    for logger in loggers:
        logger.log_hyperparams(config)
        if isinstance(logger, MLFlowLogger):
            logger.experiment.set_tag(logger.run_id, MLFLOW_RUN_ID_TAG, run_id)
            logger.experiment.set_tag(logger.run_id, MLFLOW_RUN_DIR_TAG, str(run_dir.resolve()))


def publish_run(loggers: Sequence[Logger], config_path: Path, checkpoint_dir: Path) -> None:
    """Config and checkpoints as artifacts: W&B artifact ``tinyflow-<W&B run id>`` (aliases ``latest``,
    versions ``v0``, ``v1``, ... per publication), MLflow artifacts under ``run/``."""
    files = run_files(config_path, checkpoint_dir)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            artifact = wandb.Artifact(wandb_artifact_name(logger.experiment.id), type="model")
            for name, path in files.items():
                artifact.add_file(str(path), name=name)
            logger.experiment.log_artifact(artifact, aliases=["latest"])
        elif isinstance(logger, MLFlowLogger):
            for name, path in files.items():
                folder = str(Path(MLFLOW_ARTIFACT_DIR, name).parent)
                logger.experiment.log_artifact(logger.run_id, str(path), folder)


def finish_trackers(loggers: Sequence[Logger]) -> None:
    """End the W&B runs, so that the next run in this process (a sweep) starts its own."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def describe_loggers(loggers: Sequence[Logger]) -> dict[str, str]:
    """Where each logger's records are: a line per logger for the run summary."""
    lines: dict[str, str] = {}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            run = logger.experiment
            where = "offline" if run.offline else run.url
            lines["W&B run"] = f"{run.id} ({where}, {run.dir})"
        elif isinstance(logger, MLFlowLogger):
            lines["MLflow run"] = f"{logger.run_id} ({logger.experiment.tracking_uri})"
        elif logger.log_dir is not None:
            lines[f"{type(logger).__name__}"] = str(logger.log_dir)
    return lines
