"""The export of a trained network at the end of training: ``python train.py export=onnx|onnx_int8|nir``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
from rich.console import Console

from tinyflow.callbacks.signals import StopOnSignal
from tinyflow.export.errors import ExportError
from tinyflow.export.manifest import InputSpec, Source
from tinyflow.export.parity import ParityCheck
from tinyflow.export.pipeline import ExportResult, export_network
from tinyflow.tasks import RecurrentTask

if (
    TYPE_CHECKING
):  # the formats import onnx and nir (the export extra): only an export=<format> run loads them
    from tinyflow.export.formats import ExportFormat


class ExportCallback(L.Callback):
    """Exports the network when training ends, as ``export.py`` exports a checkpoint: into
    ``<folder>/<format>/`` the model, ``manifest.json`` and ``parity.json`` (the validation windows of the
    run's data); idle when ``export`` is None (``export=none``) and after a run stopped by a signal.

    An existing export of the format stops the run when fit starts, before any training, unless ``overwrite``.

    Args:
        export: the format (the ``export`` config group's object), or None.
        parity: how the export is checked.
        folder: the run's export folder (``<run dir>/export``).
        run_id: the run, for the manifest.
        overwrite: replace an existing export of the format.
    """

    def __init__(
        self,
        export: ExportFormat | None,
        parity: ParityCheck,
        folder: str | Path,
        run_id: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.export = export
        self.parity = parity
        self.folder = Path(folder)
        self.run_id = run_id
        self.overwrite = overwrite
        self.result: ExportResult | None = None

    @property
    def target(self) -> Path | None:
        return None if self.export is None else self.folder / self.export.name

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        target = self.target
        if stage == "fit" and target is not None and target.exists() and not self.overwrite:
            raise ExportError(
                f"{target}: an export is already there, and export={self.export.name} would write one at the "
                f"end of training; set callbacks.export.overwrite=true to replace it (or move it away)"
            )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.export is None or not trainer.is_global_zero or not isinstance(pl_module, RecurrentTask):
            return
        if any(isinstance(c, StopOnSignal) and c.stopped_by is not None for c in trainer.callbacks):
            return
        datamodule = trainer.datamodule
        datamodule.setup("validate")
        dataset = datamodule.val_set
        self.result = export_network(
            pl_module.network.network,
            self.export,
            dataset,
            InputSpec.of(datamodule, dataset.sensor_size),
            Source(self.run_id, None, None, trainer.global_step),
            self.target,
            self.parity,
            overwrite=self.overwrite,
            readout=pl_module.readout(),
        )
        title = f"{self.export.name} export after step {trainer.global_step} vs PyTorch"
        Console().print(self.result.report.table(title))
        print(f"export: {self.result.folder.resolve()}")
