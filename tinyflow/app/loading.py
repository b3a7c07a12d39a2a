"""A trained run as ``validate.py`` and ``export.py`` load it: its config with the user's overrides, its
checkpoint and its data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.app.checks import check_config
from tinyflow.app.runs import ARTIFACT_VERSION, Run, Trackers, find_run
from tinyflow.data.datamodule import EventDataModule

# The network's input format: a checkpoint fixes it, so a replaced data group keeps the run's values.
MODEL_INPUT_KEYS = ("encoding", "num_bins")


@dataclass(frozen=True)
class LoadedRun:
    """A run found by id, its config (with the overrides applied), its checkpoint file and its data (prepared,
    with a validation set that is not empty)."""

    run: Run
    config: DictConfig
    checkpoint: Path
    datamodule: EventDataModule


def load_run(
    cfg: DictConfig,
    overridable_groups: Sequence[str],
    adjust: Callable[[DictConfig, DictConfig], None] | None = None,
) -> LoadedRun:
    """The run ``cfg.runid`` at checkpoint ``cfg.checkpoint``, with the groups of ``overridable_groups`` that
    ``cfg`` sets replacing the run's own; a replaced data group keeps the run's input format
    (:data:`MODEL_INPUT_KEYS`), which the checkpoint fixes.

    ``runid`` is a local run id, a W&B run id or an MLflow run id or name (see
    :func:`tinyflow.app.runs.find_run`, with ``cfg.trackers``); ``checkpoint`` is ``last`` (alias
    ``latest``), ``best``, a W&B artifact version ``v<N>`` or a file. ``adjust(config, trained)`` may
    change the config further before it is checked (``trained``: the run's config as it trained).
    """
    which = str(cfg.checkpoint)
    trackers = Trackers(**OmegaConf.to_container(cfg.trackers, resolve=True)) if cfg.get("trackers") else None
    version = which if ARTIFACT_VERSION.fullmatch(which) else "latest"
    run = find_run(str(cfg.runid), cfg.paths.runs_dir, trackers, version)
    run_cfg = run.config()
    trained_input = {key: run_cfg.data[key] for key in MODEL_INPUT_KEYS if key in run_cfg.data}
    with open_dict(run_cfg):
        for group in overridable_groups:
            if cfg.get(group) is not None:
                run_cfg[group] = OmegaConf.to_container(cfg[group], resolve=True)
        run_cfg.data.update(trained_input)
        if adjust is not None:
            adjust(run_cfg, run.config())
    check_config(run_cfg)
    checkpoint = run.checkpoint(which)
    datamodule = instantiate(run_cfg.data)
    datamodule.prepare_data()
    datamodule.check_not_empty("validate")
    return LoadedRun(run, run_cfg, checkpoint, datamodule)


__all__ = ["MODEL_INPUT_KEYS", "LoadedRun", "load_run"]
