"""What ``train.py`` and ``validate.py`` do, importable and testable without the Hydra entry points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.lit.flow import FlowLightningModule, mean_over_recordings
from tinyflow.models.stateful import StatefulNetwork
from tinyflow.report import print_metrics
from tinyflow.runs import Run, find_run, new_run_id

VALIDATE_OVERRIDABLE_GROUPS = ("data", "trainer")


def build_module(cfg: DictConfig) -> FlowLightningModule:
    """The LightningModule of a config: network (``model``), loss and optimiser factories."""
    return FlowLightningModule(
        network=StatefulNetwork(instantiate(cfg.model)),
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        gradient_clip_val=cfg.get("gradient_clip_val"),
    )


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """A Trainer with the config's callbacks and loggers (named dicts of ``_target_`` configs)."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def _start_run(cfg: DictConfig) -> tuple[DictConfig, Run, str | None]:
    """Assign the run id (fresh, or the one being resumed) and save the resolved config."""
    resume_id = cfg.get("resume")
    if resume_id:
        run = find_run(resume_id, cfg.paths.runs_dir)
        saved = run.config()
        checkpoint = run.checkpoint("last")
        return saved, run, str(checkpoint)
    with open_dict(cfg):
        cfg.run_id = cfg.get("run_id") or new_run_id()
    run = Run(cfg.run_id, Path(cfg.paths.run_dir))
    run.save_config(cfg)
    return OmegaConf.load(run.config_path), run, None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, save the last checkpoint, validate it and print the table.

    Returns:
        The validation results (see :func:`validate`) with the ``run_id`` added.
    """
    cfg, run, checkpoint = _start_run(cfg)
    print(f"run id: {run.run_id}\nrun dir: {run.run_dir.resolve()}")
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule, ckpt_path=checkpoint)
    trainer.save_checkpoint(run.checkpoint_dir / "last.ckpt")
    trainer.validate(module, datamodule=datamodule, verbose=False)
    results = _results(module)
    print_metrics(results, title=f"validation of run {run.run_id} (last checkpoint)")
    return {"run_id": run.run_id, **results}


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Validate a run's checkpoint with its own config, with the user's overrides of data/trainer applied."""
    run = find_run(str(cfg.runid), cfg.paths.runs_dir)
    run_cfg = run.config()
    with open_dict(run_cfg):
        for group in VALIDATE_OVERRIDABLE_GROUPS:
            if cfg.get(group) is not None:
                run_cfg[group] = OmegaConf.to_container(cfg[group], resolve=True)
    checkpoint = run.checkpoint(str(cfg.checkpoint))
    print(f"run id: {run.run_id}\ncheckpoint: {checkpoint}")
    datamodule = instantiate(run_cfg.data)
    module = build_module(run_cfg)
    trainer = instantiate(run_cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    trainer.validate(
        module, datamodule=datamodule, ckpt_path=str(checkpoint), weights_only=False, verbose=False
    )
    results = _results(module)
    print_metrics(results, title=f"validation of run {run.run_id} ({Path(checkpoint).name})")
    if cfg.get("output"):
        Path(cfg.output).write_text(json.dumps(results, indent=2))
        print(f"metrics written to {cfg.output}")
    return results


def _results(module: FlowLightningModule) -> dict[str, Any]:
    """``{"recordings": {name: {metric: value}}, "mean": {metric: value}}`` of the last validation."""
    recordings = module.validation_results
    return {"recordings": recordings, "mean": mean_over_recordings(recordings)}
