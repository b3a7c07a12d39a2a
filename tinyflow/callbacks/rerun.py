"""Live Rerun visualisation of training and validation (``+callbacks=rerun``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import lightning as L
import rerun as rr
import rerun.blueprint as rrb
from lightning.pytorch.trainer.states import TrainerFn

from tinyflow.callbacks.windows import DepthImages, WindowImages, WindowRenderer, renderer_for
from tinyflow.metrics.spikes import layer_firing_rates, spiking_unit_names
from tinyflow.tasks import ObservedWindow, RecurrentTask
from tinyflow.viz.entities import log_colour_wheel, log_events, log_flow, log_scalar_map
from tinyflow.viz.sink import RerunSink


class RerunCallback(L.Callback):
    """Streams windows to Rerun: events, predicted and GT flow, error map, images of warped events before
    and after warping, the loss, per-window AEE, firing rates and validation means (entity paths in
    :mod:`tinyflow.viz.blueprint`); for the depth task each camera's input, predicted and GT depth in one
    colour map, the error map and per-window MDE instead of the flow entities.

    Timelines: ``step`` (optimiser steps) for everything, and ``val_window`` (index of the window in the
    validation pass) for validation windows. Only the global rank 0 visualises. The callback observes the
    task through :attr:`RecurrentTask.window_observers` from ``setup`` to ``teardown`` only.

    Args:
        mode, address, port, web_viewer, web_port: where the recording goes (see
            :class:`tinyflow.viz.sink.RerunSink`).
        save_dir: folder of the .rrd files in save mode, one per stage (``fit.rrd``, ``validate.rrd``);
            None = ``<trainer.default_root_dir>/rerun``.
        application_id: Rerun application id; the recording id is the name of the trainer's
            ``default_root_dir`` (the run id), so the files of one run open as one recording.
        train_every_n_steps: log the training window of every N-th optimiser step.
        val_every_n_windows: log every N-th validation window.
        stream: which of the B parallel streams of a batch is shown.
        arrow_stride: pixels between flow arrows; 0 = no arrows.
        blueprint: the viewer layout of each task (its ``metric_task`` name -> a
            :func:`tinyflow.viz.blueprint.stage_blueprint`), or None.
    """

    def __init__(
        self,
        mode: str = "spawn",
        address: str = "127.0.0.1:9876",
        port: int = 9876,
        web_viewer: bool = True,
        web_port: int = 9090,
        save_dir: str | None = None,
        application_id: str = "tinyflow",
        train_every_n_steps: int = 10,
        val_every_n_windows: int = 1,
        stream: int = 0,
        arrow_stride: int = 8,
        blueprint: Mapping[str, rrb.Blueprint] | None = None,
    ) -> None:
        if train_every_n_steps < 1 or val_every_n_windows < 1:
            raise ValueError(
                f"train_every_n_steps={train_every_n_steps}, val_every_n_windows={val_every_n_windows}: "
                "expected intervals >= 1"
            )
        self.sink = RerunSink(mode, address, port, web_viewer, web_port)
        self.save_dir = save_dir
        self.application_id = application_id
        self.train_every_n_steps = train_every_n_steps
        self.val_every_n_windows = val_every_n_windows
        self.stream = stream
        self.arrow_stride = arrow_stride
        self.blueprint = blueprint
        self.recording: rr.RecordingStream | None = None
        self.saved_files: list[Path] = []
        self._trainer: L.Trainer | None = None
        self._renderer: WindowRenderer | None = None
        self._spiking: list[str] = []
        self._val_window = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        if not isinstance(pl_module, RecurrentTask):
            raise TypeError(f"RerunCallback: expected a tinyflow task; got {type(pl_module).__name__}")
        task = pl_module.metric_task
        if self.blueprint is not None and task not in self.blueprint:
            raise ValueError(
                f"RerunCallback: blueprint has layouts for tasks {sorted(self.blueprint)}, none for {task!r}"
            )
        if self.recording is None:
            layout = None if self.blueprint is None else self.blueprint[task]
            self.recording = self._sink(trainer, stage).open(
                self.application_id, Path(trainer.default_root_dir).name, layout
            )
            log_colour_wheel(self.recording)
        self._trainer = trainer
        cameras = tuple(getattr(trainer.datamodule, "cameras", ("left",)))
        self._renderer = renderer_for(task, self.stream, cameras)
        self._spiking = spiking_unit_names(pl_module.network)
        pl_module.window_observers.append(self._observe)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.recording is None:
            return
        if self._observe in pl_module.window_observers:
            pl_module.window_observers.remove(self._observe)
        self.recording.flush()
        if self.sink.mode == "save":  # one complete file per stage
            self.recording.disconnect()
            self.recording = None

    def close(self) -> None:
        """Flush and disconnect the recording (the end of a run): nothing is left to send at exit, when the
        viewer may be gone."""
        if self.recording is not None:
            self.recording.flush()
            self.recording.disconnect()
            self.recording = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_window = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.recording is None or not isinstance(pl_module, RecurrentTask):
            return
        self.recording.set_time("step", sequence=trainer.global_step)
        for key, value in pl_module.validation_results["mean"].items():
            if math.isfinite(value):
                self.recording.log(f"metrics/val/{key}", rr.Scalars(value))

    def _sink(self, trainer: L.Trainer, stage: str) -> RerunSink:
        if self.sink.mode != "save":
            return self.sink
        save_dir = Path(self.save_dir) if self.save_dir else Path(trainer.default_root_dir) / "rerun"
        self.saved_files.append(save_dir / f"{TrainerFn(stage).value}.rrd")
        return replace(self.sink, save_path=self.saved_files[-1])

    def _observe(self, window: ObservedWindow) -> None:
        """Log the window when it is due (otherwise only a counter check)."""
        if not self._due(window):
            return
        images = self._renderer.render(window)
        if images is None:
            return
        stage = window.stage
        if window.loss is not None:
            self.recording.log(f"{stage}/loss", rr.Scalars(float(window.loss)))
        for layer, rate in layer_firing_rates(window.output.get("activity", {}), self._spiking).items():
            self.recording.log(f"{stage}/firing_rate/{layer}", rr.Scalars(rate))
        self._log_images(stage, images)

    def _due(self, window: ObservedWindow) -> bool:
        """Whether the window is logged; if so, sets the timelines."""
        step = self._trainer.global_step
        if window.stage == "val":
            index = self._val_window
            self._val_window += 1
            if index % self.val_every_n_windows:
                return False
            self.recording.set_time("val_window", sequence=index)
        else:
            if (step - 1) % self.train_every_n_steps:  # the step has been taken: steps 1, N + 1, ...
                return False
            self.recording.reset_time()
        self.recording.set_time("step", sequence=step)
        return True

    def _log_images(self, stage: str, images: WindowImages | DepthImages) -> None:
        if isinstance(images, DepthImages):
            self._log_depth_images(stage, images)
        else:
            self._log_flow_images(stage, images)

    def _log_depth_images(self, stage: str, images: DepthImages) -> None:
        for path, image in images.media(stage).items():
            self.recording.log(path, rr.Image(image))
        if images.mde is not None:
            self.recording.log(f"{stage}/mde", rr.Scalars(images.mde))

    def _log_flow_images(self, stage: str, images: WindowImages) -> None:
        recording = self.recording
        log_events(recording, f"{stage}/events", images.events)
        scale = images.flow_scale
        if images.flow_gt is not None:
            log_flow(recording, f"{stage}/flow_gt", images.flow_gt, self.arrow_stride, images.gt_valid, scale)
            log_scalar_map(recording, f"{stage}/flow_error", images.error, images.gt_valid)
            if images.aee is not None:
                recording.log(f"{stage}/aee", rr.Scalars(images.aee))
        log_flow(recording, f"{stage}/flow", images.flow, self.arrow_stride, max_magnitude=scale)
        log_events(recording, f"{stage}/iwe/unwarped", images.unwarped)
        if images.iwe_start is not None:
            log_events(recording, f"{stage}/iwe/t_start", images.iwe_start)
            log_events(recording, f"{stage}/iwe/t_end", images.iwe_end)
