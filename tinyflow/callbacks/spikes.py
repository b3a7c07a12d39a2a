"""Spike statistics of a run: firing rates per layer while training, operations and energy in validation."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import lightning as L

from tinyflow.metrics.hardware import HardwareProfile
from tinyflow.metrics.spikes import (
    SPIKE_STATISTICS,
    OperationCounts,
    SpikeProbe,
    layer_statistics,
    statistics,
)
from tinyflow.tasks import ObservedWindow, RecurrentTask


class SpikeStatistics(L.Callback):
    """Counts with a :class:`~tinyflow.metrics.spikes.SpikeProbe` on the task's network.

    Training: every ``train_every_n_steps`` optimiser steps it logs each spiking layer's firing rate
    (spikes per neuron per window, over the step's windows) as ``train/firing_rate/<layer>`` to the
    run's loggers (CSV, W&B, MLflow). Validation: it counts every active window of every recording and
    publishes :attr:`results`; the mean firing rate and energy per window go to the loggers as
    ``val/firing_rate`` and ``val/energy_uj``.

    Args:
        hardware: the profile that prices the operations (energy); None = counts only.
        train_every_n_steps: log training firing rates every N optimiser steps; 0 = never.

    Attributes:
        results: after a validation pass, ``{"hardware": name, "recordings": {name: {key: value}},
            "mean": {key: value}, "layers": {layer: {key: value}}}`` with the keys of
            :data:`~tinyflow.metrics.spikes.SPIKE_METRICS` (``layers``: over all recordings).
    """

    def __init__(self, hardware: HardwareProfile | None = None, train_every_n_steps: int = 50) -> None:
        if train_every_n_steps < 0:
            raise ValueError(f"SpikeStatistics: train_every_n_steps={train_every_n_steps}: expected >= 0")
        self.hardware = hardware
        self.train_every_n_steps = train_every_n_steps
        self.results: dict[str, Any] = {}
        self._probe: SpikeProbe | None = None
        self._task: RecurrentTask | None = None
        self._recordings: dict[str, OperationCounts] = defaultdict(OperationCounts)
        self._all = OperationCounts()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RecurrentTask) or self._probe is not None:
            return
        self._task = pl_module
        # attached only while it counts: in validation and for the training steps that log (the hooks
        # cost about 5 % of a training step)
        self._probe = SpikeProbe(pl_module.network, operations=False)
        pl_module.window_observers.append(self._observe)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._probe is None:
            return
        self._probe.detach()
        pl_module.window_observers.remove(self._observe)
        self._probe = self._task = None

    def _logs_rates(self, step: int) -> bool:
        """Whether the training step that ends at optimiser step ``step`` logs firing rates."""
        return bool(self.train_every_n_steps) and step % self.train_every_n_steps == 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._probe is None:
            return
        # the step ends at global_step + 1 (one optimiser step per training step)
        if self._logs_rates(trainer.global_step + 1):
            self._probe.attach()
        else:
            self._probe.detach()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._probe is None:
            return
        window_counts = self._probe.take()
        if not window_counts or not self._logs_rates(trainer.global_step):
            return
        counts = OperationCounts()
        counts.add(window_counts)
        for layer, row in layer_statistics(counts, None).items():
            if "firing_rate" in row:
                pl_module.log(f"train/firing_rate/{layer}", row["firing_rate"] / 100, on_step=True)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._probe is None:
            return
        self._probe.attach().take()  # the training windows since the last step are not validation windows
        self._probe.operations = True
        self._recordings.clear()
        self._all = OperationCounts()

    def _observe(self, window: ObservedWindow) -> None:
        if window.stage != "val" or self._probe is None:
            return
        counts = self._probe.take()
        batch = {key: value[-1] for key, value in window.batch.items()}
        active, recording, dt_us = batch["active"], batch["recording"], batch.get("dt_us")
        names = self._task.trainer.datamodule.val_set.recording_names
        for index in recording[active].unique().tolist():
            streams = active & (recording == index)
            self._recordings[names[int(index)]].add(counts, streams, dt_us)
        self._all.add(counts, active, dt_us)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._probe is None:
            return
        self._probe.operations = False
        self._probe.detach()
        recordings = {name: statistics(c, self.hardware) for name, c in sorted(self._recordings.items())}
        self.results = {
            "hardware": self.hardware.name if self.hardware is not None else None,
            "recordings": recordings,
            "mean": SPIKE_STATISTICS.mean_over_recordings(recordings),
            "layers": layer_statistics(self._all, self.hardware),
        }
        mean = self.results["mean"]
        for key in ("firing_rate", "energy_uj"):
            if key in mean:
                pl_module.log(f"val/{key}", mean[key])
