"""A Rich progress bar that counts what a step-budgeted run counts: optimiser steps, not epochs."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class StepProgressBar(RichProgressBar):
    """Lightning's Rich progress bar with ``step N/max`` among its metrics and no epoch total when the
    run is bounded by ``max_steps`` (Lightning prints ``Epoch 0/-2`` for ``max_epochs=-1``)."""

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            return super()._get_train_description(current_epoch)
        return f"epoch {current_epoch}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        total = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
        return {"step": f"{trainer.global_step}{total}", **metrics}
