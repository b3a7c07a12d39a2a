"""From a composed config to the objects of a run: the task (with its network, loss, optimiser and
scheduler), the callbacks, the loggers and the Trainer."""

from __future__ import annotations

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinyflow.app.checkpoints import trainer_plugins
from tinyflow.tasks import RecurrentTask

# The task's collaborators: config group -> task argument. A group may be null or empty (scheduler=constant).
TASK_PARTS = {"model": "network", "loss": "loss", "optimizer": "optimizer", "scheduler": "scheduler"}


def build_task(cfg: DictConfig) -> RecurrentTask:
    """The task of a config (``task`` group, a LightningModule), given the instantiated ``model`` (the
    network) and the ``loss``, ``optimizer`` and ``scheduler`` factories of their groups."""
    parts = {argument: cfg.get(group) for group, argument in TASK_PARTS.items() if group in cfg}
    built = {argument: instantiate(part) if part else None for argument, part in parts.items()}
    # the built parts go to the constructor as they are (instantiate's own kwargs would turn a dataclass,
    # such as a depth loss, back into a config)
    return instantiate(cfg.task, _partial_=True)(**built)


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """The config's callbacks (a named dict of ``_target_`` configs; null entries are left out)."""
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def close_callbacks(trainer: L.Trainer) -> None:
    """End the connections that callbacks hold (their ``close()``, e.g. a Rerun stream), once the run's
    stages are done."""
    for callback in trainer.callbacks:
        close = getattr(callback, "close", None)
        if callable(close):
            close()


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """A Trainer with the config's callbacks and loggers (named dicts of ``_target_`` configs) and plugins
    (always a checkpoint plugin: :func:`tinyflow.app.checkpoints.trainer_plugins`)."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    return instantiate(
        cfg.trainer,
        callbacks=build_callbacks(cfg),
        logger=loggers or False,
        plugins=trainer_plugins(cfg.trainer),
    )
