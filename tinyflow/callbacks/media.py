"""Images of flow and warped events, or of depth, for the experiment trackers (W&B, MLflow)."""

from __future__ import annotations

import lightning as L
import numpy as np
from lightning.pytorch.loggers import Logger, MLFlowLogger, WandbLogger

from tinyflow.callbacks.windows import WindowRenderer, renderer_for
from tinyflow.tasks import ObservedWindow, RecurrentTask

IMAGE_LOGGERS = (WandbLogger, MLFlowLogger)


class LoggerMediaCallback(L.Callback):
    """Logs images to the W&B and MLflow loggers of the trainer; idle (observes nothing) without them.

    Training, every ``train_every_n_steps`` optimiser steps: ``train/events``, ``train/flow`` and
    ``train/iwe`` (before warping, at the first and at the last reference time). Validation, one window
    per pass (the middle one): ``val/events``, ``val/flow``, and ``val/flow_gt``, ``val/flow_error`` when
    it has GT. Flow uses the Middlebury colour wheel; events are ON blue, OFF red. The depth task logs
    ``<stage>/events``, ``<stage>/input/<camera>``, ``<stage>/depth`` and, with GT, ``<stage>/depth_gt`` (the
    same colour map: near light, far dark) and ``<stage>/depth_error`` instead (:class:`DepthImages`).

    Args:
        train_every_n_steps: interval of the training images, in optimiser steps.
        stream: which parallel stream of the batch is shown.
    """

    def __init__(self, train_every_n_steps: int = 100, stream: int = 0) -> None:
        if train_every_n_steps < 1:
            raise ValueError(f"train_every_n_steps: expected an interval >= 1; got {train_every_n_steps}")
        self.train_every_n_steps = train_every_n_steps
        self.stream = stream
        self._loggers: list[Logger] = []
        self._trainer: L.Trainer | None = None
        self._renderer: WindowRenderer | None = None
        self._val_window = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._loggers = [lg for lg in trainer.loggers if isinstance(lg, IMAGE_LOGGERS)]
        if not self._loggers or not trainer.is_global_zero or not isinstance(pl_module, RecurrentTask):
            return
        self._trainer = trainer
        cameras = tuple(getattr(trainer.datamodule, "cameras", ("left",)))
        self._renderer = renderer_for(pl_module.metric_task, self.stream, cameras)
        pl_module.window_observers.append(self._observe)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(pl_module, RecurrentTask) and self._observe in pl_module.window_observers:
            pl_module.window_observers.remove(self._observe)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_window = 0

    def _observe(self, window: ObservedWindow) -> None:
        step = self._trainer.global_step
        if window.stage == "val":
            index, self._val_window = self._val_window, self._val_window + 1
            if index != sum(self._trainer.num_val_batches) // 2:
                return
        elif (step - 1) % self.train_every_n_steps:
            return
        images = self._renderer.render(window)
        if images is not None:
            for key, image in images.media(window.stage).items():
                self._log_image(key, image, step)

    def _log_image(self, key: str, image: np.ndarray, step: int) -> None:
        for logger in self._loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=key, images=[image], step=step)
            else:
                logger.experiment.log_image(logger.run_id, image, key=key.replace("/", "_"), step=step)
