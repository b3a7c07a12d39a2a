"""Runs on disk: a short id, a directory holding the resolved config, checkpoints and logs.

Layout of one run::

    <runs_dir>/<run_id>/config.yaml            resolved config of the run
    <runs_dir>/<run_id>/checkpoints/last.ckpt  latest state (resume point)
    <runs_dir>/<run_id>/checkpoints/best.ckpt  best validation score
    <runs_dir>/<run_id>/csv/metrics.csv        CSV logger output (default logger)
    <runs_dir>/<run_id>/wandb/                 W&B run files (logger=wandb)
    <runs_dir>/<run_id>/rerun/<stage>.rrd      Rerun recordings (callbacks.rerun.mode=save)

:func:`find_run` also finds runs by their W&B id or their MLflow run id or name (see :class:`Trackers`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tinyflow.app.pretrained import PRETRAINED_RUN_ID, install_pretrained
from tinyflow.app.resolvers import wandb_offline
from tinyflow.app.tracking.lookup import (
    fetch_wandb_online,
    find_mlflow,
    find_wandb_offline,
    mlflow_store_exists,
)

RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
RUN_ID_LENGTH = 8
CONFIG_NAME = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
DOWNLOAD_DIR = "downloads"  # <runs_dir>/downloads/: runs fetched from tracker servers
ARTIFACT_VERSION = re.compile(r"v\d+")
RUN_ID_ENV = "TINYFLOW_RUN_ID"  # set for the processes a distributed run launches (same run id)


class RunNotFoundError(FileNotFoundError):
    """No run with the given id (locally or in a tracker); the message lists what was searched."""


def new_run_id() -> str:
    """A fresh random id of 8 lowercase letters and digits."""
    return "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


def job_run_id() -> str | None:
    """The run id that every process of one multi-process job derives alike, or None outside such a job.

    From SLURM's job and step ids (``SLURM_NTASKS`` > 1) or torchrun's rendezvous id
    (``TORCHELASTIC_RUN_ID`` with ``WORLD_SIZE`` > 1): the processes start independently and agree on
    the id without talking to each other.
    """
    env = os.environ
    if int(env.get("SLURM_NTASKS", "1")) > 1 and env.get("SLURM_JOB_ID"):
        job = f"slurm:{env['SLURM_JOB_ID']}:{env.get('SLURM_STEP_ID', '')}"
    elif int(env.get("WORLD_SIZE", "1")) > 1 and env.get("TORCHELASTIC_RUN_ID"):
        job = f"torchrun:{env['TORCHELASTIC_RUN_ID']}"
    else:
        return None
    digest = int.from_bytes(hashlib.sha256(job.encode()).digest()[:8], "big")
    letters = []
    for _ in range(RUN_ID_LENGTH):
        digest, index = divmod(digest, len(RUN_ID_ALPHABET))
        letters.append(RUN_ID_ALPHABET[index])
    return "".join(letters)


def inherited_run_id() -> str | None:
    """The run id of the run that launched this process (distributed training), or None."""
    return os.environ.get(RUN_ID_ENV) or None


@contextmanager
def shared_run_id(run_id: str) -> Iterator[None]:
    """Within the block, processes launched by this one (DDP ranks) join run ``run_id``."""
    previous = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = run_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = previous


@dataclass(frozen=True)
class Run:
    """A run directory and what it holds.

    Attributes:
        artifact_version: the W&B artifact version the folder was fetched as (runs fetched from W&B).
    """

    run_id: str
    run_dir: Path
    artifact_version: str | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_NAME

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    def config(self) -> DictConfig:
        if not self.config_path.is_file():
            raise FileNotFoundError(f"run '{self.run_id}': no config at {self.config_path}")
        return OmegaConf.load(self.config_path)

    def save_config(self, cfg: DictConfig) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, self.config_path, resolve=True)

    def checkpoint(self, which: str = "last") -> Path:
        """Checkpoint file: ``last`` (alias ``latest``), ``best``, the W&B artifact version the run was
        fetched as (``v<N>``: its last checkpoint), or an explicit path (absolute or relative to the run)."""
        if ARTIFACT_VERSION.fullmatch(which):
            if which != self.artifact_version:
                raise ValueError(
                    f"run '{self.run_id}': checkpoint={which} is a W&B artifact version, but the run was "
                    f"found as {self.artifact_version or 'a local folder'} ({self.run_dir})"
                )
            which = "last"
        if which in ("last", "latest", "best"):
            path = self.checkpoint_dir / f"{'last' if which == 'latest' else which}.ckpt"
        else:
            path = Path(which)
            if not path.is_absolute() and not path.exists():
                path = self.run_dir / path
        if not path.is_file():
            found = (
                sorted(p.name for p in self.checkpoint_dir.glob("*.ckpt"))
                if self.checkpoint_dir.is_dir()
                else []
            )
            raise FileNotFoundError(
                f"run '{self.run_id}': checkpoint '{which}' not found at {path}; found {found}"
            )
        return path


@dataclass(frozen=True)
class Trackers:
    """Where :func:`find_run` looks beyond ``<runs_dir>/<id>`` and the W&B folders of local runs.

    Attributes:
        mlflow_uri: MLflow tracking URI (runs by MLflow run id or name); None = no MLflow lookup. A local
            store that does not exist is skipped, never created.
        wandb_project, wandb_entity: W&B project (and entity, None = the default one) of the artifact
            lookup on the W&B server; used only with W&B credentials (see :func:`tinyflow.app.resolvers.wandb_offline`).
    """

    mlflow_uri: str | None = None
    wandb_project: str | None = None
    wandb_entity: str | None = None


def find_run(
    run_id: str, runs_dir: str | Path, trackers: Trackers | None = None, version: str = "latest"
) -> Run:
    """The run ``run_id``, looked for in this order: the local run ``<runs_dir>/<run_id>``; the local run
    whose W&B run has this id; the MLflow run with this id or name; the W&B server's artifact
    ``tinyflow-<run_id>:<version>`` (``latest`` or ``v<N>``). A clear error lists the local runs and
    what was searched. ``pretrained`` is the run shipped in the package, installed as
    ``<runs_dir>/pretrained`` (:func:`tinyflow.app.pretrained.install_pretrained`)."""
    runs_dir = Path(runs_dir)
    if run_id == PRETRAINED_RUN_ID:
        return Run(run_id, install_pretrained(runs_dir))
    run = Run(run_id, runs_dir / run_id)
    if run.config_path.is_file():
        return run
    searched = [f"W&B folders {runs_dir}/*/wandb"]
    folder = find_wandb_offline(run_id, runs_dir)
    fetched_version = None
    trackers = trackers or Trackers()
    if folder is None and trackers.mlflow_uri:
        if importlib.util.find_spec("mlflow") is None:
            searched.append("MLflow: not installed (pip install mlflow)")
        elif not mlflow_store_exists(trackers.mlflow_uri):
            searched.append(f"MLflow store {trackers.mlflow_uri}: does not exist")
        else:
            searched.append(f"MLflow store {trackers.mlflow_uri}")
            folder = find_mlflow(run_id, trackers.mlflow_uri, runs_dir / DOWNLOAD_DIR)
    if folder is None and trackers.wandb_project:
        if importlib.util.find_spec("wandb") is None or wandb_offline():
            searched.append("W&B server: skipped (wandb not installed, no credentials or WANDB_MODE offline)")
        else:
            searched.append(f"W&B server project {trackers.wandb_project}")
            folder = fetch_wandb_online(
                run_id, trackers.wandb_project, trackers.wandb_entity, version, runs_dir / DOWNLOAD_DIR
            )
            fetched_version = version
    if folder is None:
        known = sorted(p.parent.name for p in runs_dir.glob(f"*/{CONFIG_NAME}")) if runs_dir.is_dir() else []
        raise RunNotFoundError(
            f"no run '{run_id}' in {runs_dir} (expected {run.config_path}); known runs: {known}; "
            f"also searched: {'; '.join(searched)}"
        )
    saved_id = OmegaConf.load(folder / CONFIG_NAME).get("run_id") or folder.name
    return Run(str(saved_id), folder, fetched_version)
