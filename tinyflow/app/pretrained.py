"""The pretrained run shipped inside the package: ``runid=pretrained`` in validate.py and export.py.

``tinyflow/app/pretrained/`` holds what a run needs to be evaluated: ``config.yaml`` (the run's resolved
config), ``network.pt`` (the task's state dict: the network's weights, float32) and ``metrics.json`` (what it
measured when it was packaged, by ``scripts/package_pretrained.py``). On first use the run is installed as
an ordinary run folder ``<runs_dir>/pretrained/`` (config, ``checkpoints/last.ckpt``), so that validation,
export and their outputs work as for any run; a changed package (another ``network.pt``) reinstalls it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import lightning
import torch

PRETRAINED_RUN_ID = "pretrained"
PACKAGE_DIR = Path(__file__).resolve().parent / "pretrained"
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE = "config.yaml", "network.pt", "metrics.json"
SOURCE_FILE = "pretrained_source.json"  # in the installed run folder: the sha256 of the weights it holds


def weights_digest(directory: Path = PACKAGE_DIR) -> str:
    """sha256 of the packaged weights file."""
    return hashlib.sha256((directory / WEIGHTS_FILE).read_bytes()).hexdigest()


def recorded_metrics(directory: Path = PACKAGE_DIR) -> dict[str, Any]:
    """``metrics.json``: the source run, its validation means, and the check set with its overrides."""
    return json.loads((directory / METRICS_FILE).read_text())


def lightning_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A checkpoint that ``Trainer.validate(ckpt_path=...)`` loads: the weights and Lightning's version
    (no optimiser, loop or resume state: the packaged run is evaluated, not resumed)."""
    return {"state_dict": state_dict, "pytorch-lightning_version": lightning.__version__, "epoch": 0}


def install_pretrained(runs_dir: str | Path, directory: Path = PACKAGE_DIR) -> Path:
    """``<runs_dir>/pretrained/`` from the packaged files (kept when it already holds these weights).

    The folder is built under a temporary name and renamed, so it appears whole or not at all.
    """
    target = Path(runs_dir) / PRETRAINED_RUN_ID
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"the packaged pretrained run in {directory} lacks {missing} (reinstall tinyflow)"
        )
    digest = weights_digest(directory)
    source = target / SOURCE_FILE
    if source.is_file() and json.loads(source.read_text()).get("sha256") == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{PRETRAINED_RUN_ID}.", dir=target.parent))
    try:
        shutil.copyfile(directory / CONFIG_FILE, staging / CONFIG_FILE)
        (staging / "checkpoints").mkdir()
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        torch.save(lightning_checkpoint(state), staging / "checkpoints" / "last.ckpt")
        (staging / SOURCE_FILE).write_text(json.dumps({"sha256": digest, "package": str(directory)}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
