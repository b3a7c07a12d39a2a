"""Find a run's folder (``config.yaml`` + ``checkpoints/``) through W&B or MLflow.

Each finder returns the folder, or None when the tracker does not know the key; a folder fetched from a
tracker server is downloaded under ``download_root``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tinyflow.app.tracking.publish import (
    MLFLOW_ARTIFACT_DIR,
    MLFLOW_RUN_DIR_TAG,
    MLFLOW_RUN_ID_TAG,
    wandb_artifact_name,
)

CONFIG_NAME = "config.yaml"
MLFLOW_RUN_ID = re.compile(r"[0-9a-f]{32}")


def find_wandb_offline(wandb_id: str, runs_dir: Path) -> Path | None:
    """The run folder whose W&B directory holds the run ``wandb_id`` (offline or synced)."""
    for wandb_dir in sorted(runs_dir.glob(f"*/wandb/*run-*-{wandb_id}")):
        run_dir = wandb_dir.parents[1]
        if (run_dir / CONFIG_NAME).is_file():
            return run_dir
    return None


def mlflow_store_exists(tracking_uri: str) -> bool:
    """False for a local store (``sqlite:///FILE``, ``file:DIR``, a folder) that does not exist yet, so a
    lookup never creates one; True for servers."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else tracking_uri).is_dir()
    return True


def latest_mlflow_run(client: Any, filter_string: str) -> Any | None:
    """The most recently started MLflow run of any experiment that matches ``filter_string``, or None."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(
        experiments, filter_string=filter_string, order_by=["attributes.start_time DESC"], max_results=1
    )
    return found[0] if found else None


def mlflow_run_of(run_id: str, tracking_uri: str) -> str | None:
    """The id of the MLflow run tagged with tinyflow run ``run_id`` (the latest one), or None."""
    from mlflow import MlflowClient

    run = latest_mlflow_run(MlflowClient(tracking_uri), f"tags.`{MLFLOW_RUN_ID_TAG}` = '{run_id}'")
    return run.info.run_id if run is not None else None


def find_mlflow(key: str, tracking_uri: str, download_root: Path) -> Path | None:
    """The folder of the MLflow run with id or name ``key``: its tinyflow run folder when it exists on this
    machine, else its ``run/`` artifacts downloaded to ``download_root/mlflow-<MLflow run id>``."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    run = None
    if MLFLOW_RUN_ID.fullmatch(key):
        try:
            run = client.get_run(key)
        except MlflowException:
            run = None
    if run is None:
        run = latest_mlflow_run(client, f"attributes.run_name = '{key}'")
        if run is None:
            return None
    local = run.data.tags.get(MLFLOW_RUN_DIR_TAG)
    if local and (Path(local) / CONFIG_NAME).is_file():
        return Path(local)
    target = download_root / f"mlflow-{run.info.run_id}"
    target.mkdir(parents=True, exist_ok=True)
    download_artifacts(
        run_id=run.info.run_id,
        artifact_path=MLFLOW_ARTIFACT_DIR,
        dst_path=str(target),
        tracking_uri=tracking_uri,
    )
    return target / MLFLOW_ARTIFACT_DIR


def fetch_wandb_online(
    wandb_id: str, project: str, entity: str | None, version: str, download_root: Path
) -> Path | None:
    """The published folder of W&B run ``wandb_id`` (artifact ``tinyflow-<id>:<version>``, version =
    ``latest`` or ``v<N>``) downloaded to ``download_root/wandb-<id>-<version>``."""
    import wandb

    prefix = f"{entity}/{project}" if entity else project
    try:
        artifact = wandb.Api().artifact(f"{prefix}/{wandb_artifact_name(wandb_id)}:{version}", type="model")
    except (wandb.errors.CommError, ValueError):
        return None
    target = download_root / f"wandb-{wandb_id}-{artifact.version}"
    artifact.download(root=str(target))
    return target
