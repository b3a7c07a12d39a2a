"""Runs on disk: a short id, a directory holding the resolved config, checkpoints and logs.

Layout of one run::

    <runs_dir>/<run_id>/config.yaml            resolved config of the run
    <runs_dir>/<run_id>/checkpoints/last.ckpt  latest state (resume point)
    <runs_dir>/<run_id>/checkpoints/best.ckpt  best validation score
    <runs_dir>/<run_id>/metrics.csv            CSV logger output (default logger)
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

RUN_ID_ALPHABET = string.ascii_lowercase + string.digits
RUN_ID_LENGTH = 8
CONFIG_NAME = "config.yaml"
CHECKPOINT_DIR = "checkpoints"


def new_run_id() -> str:
    """A fresh random id of 8 lowercase letters and digits."""
    return "".join(secrets.choice(RUN_ID_ALPHABET) for _ in range(RUN_ID_LENGTH))


@dataclass(frozen=True)
class Run:
    """A run directory and what it holds."""

    run_id: str
    run_dir: Path

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
        """Checkpoint file: ``last``, ``best`` or an explicit path (absolute or relative to the run)."""
        if which in ("last", "best"):
            path = self.checkpoint_dir / f"{which}.ckpt"
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


def find_run(run_id: str, runs_dir: str | Path) -> Run:
    """The local run ``run_id`` under ``runs_dir``; a clear error lists the runs that exist."""
    runs_dir = Path(runs_dir)
    run = Run(run_id, runs_dir / run_id)
    if not run.config_path.is_file():
        known = sorted(p.parent.name for p in runs_dir.glob(f"*/{CONFIG_NAME}")) if runs_dir.is_dir() else []
        raise FileNotFoundError(
            f"no run '{run_id}' in {runs_dir} (expected {run.config_path}); known runs: {known}"
        )
    return run
