"""Predictions written out during validation: flow per window to HDF5, and DSEC benchmark submissions.

Both observe the task's validation windows (:attr:`~tinyflow.tasks.RecurrentTask.window_observers`) and
read what the task predicted; neither changes the task. Both write atomically (a hidden temporary beside
the target, renamed when validation ends) and never overwrite an existing target.
"""

from __future__ import annotations

import abc
import os
import shutil
import uuid
from pathlib import Path

import h5py
import lightning as L
import numpy as np
import torch

from tinyflow.io.dsec import check_submission, write_submission
from tinyflow.metrics.flow import rescale_flow
from tinyflow.tasks import ObservedWindow, RecurrentTask


class _ValidationWindows(L.Callback, abc.ABC):
    """Observes the active validation streams of a task and hands each one to :meth:`_write`; the output
    goes to a temporary path beside ``path`` and moves to ``path`` (then :attr:`written`) when validation ends."""

    label = "predictions"  # what the written path is called in a run's summary

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp_path = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.tmp")
        self.written: Path | None = None
        self._names: list[str] = []
        self._datamodule = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "validate" or not trainer.is_global_zero:
            return
        if self.path.exists():
            raise FileExistsError(
                f"{self.path}: already exists; choose another path (it is never overwritten)"
            )
        if not isinstance(pl_module, RecurrentTask):
            raise TypeError(
                f"{type(self).__name__}: expected a tinyflow task; got {type(pl_module).__name__}"
            )
        self._datamodule = trainer.datamodule
        pl_module.window_observers.append(self._observe)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._names = trainer.datamodule.val_set.recording_names if self._datamodule is not None else []

    def _observe(self, window: ObservedWindow) -> None:
        if window.stage != "val":
            return
        batch = window.batch
        for b in torch.nonzero(batch["active"][-1]).flatten().tolist():
            recording = int(batch["recording"][-1, b])
            self._write(
                self._names[recording], recording, batch, b, window.output["flow"][b].detach().float().cpu()
            )

    @abc.abstractmethod
    def _write(self, name: str, recording: int, batch: dict, b: int, flow: torch.Tensor) -> None:
        """Write stream ``b`` of the window: recording ``name`` (index ``recording``), its flow [2, H, W]."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._datamodule is None:
            return
        self._finish(trainer)
        os.replace(self.tmp_path, self.path)
        self.written = self.path

    def _finish(self, trainer: L.Trainer) -> None:
        """Complete the temporary output before it moves to the target."""

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._observe in pl_module.window_observers:
            pl_module.window_observers.remove(self._observe)
        if self.tmp_path.is_dir():
            shutil.rmtree(self.tmp_path)
        self.tmp_path.unlink(missing_ok=True)


class FlowOutputWriter(_ValidationWindows):
    """The predicted flow of every validation window, per recording, in one HDF5 file at ``path``::

        /<recording>/flow        float32 [K, 2, H, W]  (x, y) displacement in pixels over the window
        /<recording>/t_start_us  int64 [K]             window start, µs since the recording's t0
        /<recording>/t_end_us    int64 [K]             window end

    (``python validate.py runid=<id> data=files data.root=DIR +callbacks=flow_output
    callbacks.flow_output.path=flow.h5``). Flow is on the grid the network saw (after the data config's
    crop and downscale).
    """

    label = "flow file"

    def _write(self, name: str, recording: int, batch: dict, b: int, flow: torch.Tensor) -> None:
        with h5py.File(self.tmp_path, "a") as file:
            group = file.require_group(name)
            if "flow" not in group:
                shape = tuple(flow.shape)
                group.create_dataset(
                    "flow", (0, *shape), np.float32, maxshape=(None, *shape), chunks=(1, *shape)
                )
                for key in ("t_start_us", "t_end_us"):
                    group.create_dataset(key, (0,), np.int64, maxshape=(None,), chunks=(1024,))
            start, dt = int(batch["t_start_us"][-1, b]), int(batch["dt_us"][-1, b])
            for key, value in (("flow", flow.numpy()), ("t_start_us", start), ("t_end_us", start + dt)):
                dataset = group[key]
                dataset.resize((dataset.shape[0] + 1, *dataset.shape[1:]))
                dataset[-1] = value

    def _finish(self, trainer: L.Trainer) -> None:
        if not self.tmp_path.exists():  # no window at all: an empty file says so
            h5py.File(self.tmp_path, "w").close()


class DSECSubmissionWriter(_ValidationWindows):
    """DSEC-Flow benchmark submission: one PNG per test timestamp, ``folder/<seq>/<file_index:06d>.png``.

    The window that answers query k (``[to_k - window, to_k)``, :func:`~tinyflow.events.windows.windows_for_queries`)
    predicts flow in pixels over its own span; it is rescaled explicitly to the query's interval
    ``to_k - from_k`` (:func:`~tinyflow.metrics.flow.rescale_flow`: constant velocity over the interval).
    When validation ends the folder must hold exactly one PNG per test timestamp of every test sequence
    (:func:`~tinyflow.io.dsec.check_submission`), else nothing is left at ``folder``.
    """

    label = "submission"

    def _write(self, name: str, recording: int, batch: dict, b: int, flow: torch.Tensor) -> None:
        query = int(batch["query"][-1, b])
        if query < 0:
            return
        queries = self._datamodule.val_set.recordings[recording].query_intervals()
        interval = torch.tensor(float(queries.t_end_us[query] - queries.t_start_us[query]))
        window = torch.tensor(float(batch["dt_us"][-1, b]))
        write_submission(
            self.tmp_path, name, int(queries.ids[query]), rescale_flow(flow, window, interval).numpy()
        )

    def _finish(self, trainer: L.Trainer) -> None:
        val_set = trainer.datamodule.val_set
        expected = {}
        for name, recording in zip(val_set.recording_names, val_set.recordings, strict=True):
            queries = recording.query_intervals()
            expected[name] = np.zeros(0, np.int64) if queries is None else queries.ids
        self.tmp_path.mkdir(exist_ok=True)
        check_submission(self.tmp_path, expected)
