"""From a composed config to the objects of a run: the network (quantised as the ``quant`` group says), the
task (with its network, loss, optimiser and scheduler), the callbacks, the loggers and the Trainer."""

from __future__ import annotations

from collections.abc import Mapping

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from tinyflow.app.checkpoints import trainer_plugins
from tinyflow.quant import NoQuantisation, Quantisation
from tinyflow.tasks import RecurrentTask

# The task's collaborators besides the network: config group -> task argument. A group may be null or
# empty (scheduler=constant).
TASK_PARTS = {
    "loss": "loss",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "regularizer": "spike_penalty",
}


def build_quantisation(cfg: DictConfig) -> Quantisation:
    """The ``quant`` group's object; :class:`~tinyflow.quant.NoQuantisation` for a config without one (runs
    saved before the group existed)."""
    return instantiate(cfg.quant) if cfg.get("quant") else NoQuantisation()


def build_network(cfg: DictConfig, initial_weights: Mapping[str, Tensor] | None = None) -> nn.Module:
    """The ``model`` group's network, with ``initial_weights`` (a float network's state dict, e.g. of
    ``init_from=<run>``) loaded, then quantised by the ``quant`` group's object."""
    network = instantiate(cfg.model)
    if initial_weights is not None:
        network.load_state_dict(initial_weights)
    return build_quantisation(cfg).quantise(network)


def build_task(cfg: DictConfig, initial_weights: Mapping[str, Tensor] | None = None) -> RecurrentTask:
    """The task of a config (``task`` group, a LightningModule), given the network of :func:`build_network`
    the ``loss``, ``optimizer`` and ``scheduler`` factories of their groups, and the ``regularizer`` (the
    task's ``spike_penalty``)."""
    parts = {argument: cfg.get(group) for group, argument in TASK_PARTS.items() if group in cfg}
    built = {argument: instantiate(part) if part else None for argument, part in parts.items()}
    # the built objects as they are (given to instantiate, a dataclass argument would become a config)
    return instantiate(cfg.task, _partial_=True)(network=build_network(cfg, initial_weights), **built)


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
