"""The depth task: depth supervised by ground-truth maps at their timestamps, evaluated with the depth metrics.

The network predicts ``out["depth"]`` [B, 1, H, W] (and ``out["depth_scales"]``, coarsest first, where it
predicts several) in the representation its loss learns (metres, or normalised log depth:
:class:`~tinyflow.tasks.depth_loss.DepthRepresentation`). A window is supervised where it carries a depth
map (``has_depth``, the data's ``depth`` target: the map at its end); the other windows only carry the
state forward. Validation reports :data:`tinyflow.metrics.depth.DEPTH_METRICS` on the windows with a map.

The constant prediction of ``mde_const`` is the training set's mean depth
(:func:`tinyflow.data.statistics.mean_depth_m`: every valid pixel of the training windows' maps). The task
computes it when training starts and keeps it as a buffer of its state dict, so a checkpoint carries it
and ``validate.py`` reports the same number on any data.

With ``relative_to_mean`` the network's readout is depth relative to that mean: the prediction in the
learned representation is ``out["depth"] + from_metres(mean)``. StereoSpike's readout neurons start each
window at a learnable rest potential (its code: the biases of the scales' predictions); this starts it at
the training mean, and the biases learn the rest. From zero, Adam moves each bias by about the learning
rate per step: metres of depth take thousands of steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from tinyflow.data.statistics import mean_depth_m
from tinyflow.metrics.depth import DepthErrorMetrics, depth_errors, valid_depth
from tinyflow.tasks.depth_loss import DepthSIGradLoss
from tinyflow.tasks.recurrent import ObservedWindow, RecurrentTask, Window


class DepthTask(RecurrentTask):
    """Trains a (spiking) depth network on GT depth maps.

    Args:
        network: pure network whose output holds ``depth`` [B, 1, H, W] (a
            :class:`~tinyflow.models.heads.DepthHead`), and optionally ``depth_scales``.
        loss: the depth loss of every window (``[B]``, e.g. :class:`~tinyflow.tasks.depth_loss.DepthSIGradLoss`);
            its ``representation`` converts the prediction to metres.
        optimizer, scheduler, gradient_clip_val, spike_penalty: see :class:`~tinyflow.tasks.recurrent.RecurrentTask`.
        relative_to_mean: the network predicts depth relative to the training set's mean depth (module
            docstring); False: absolute, as StereoSpike.
    """

    metric_task = "depth"
    required_targets = ("depth",)
    prediction_key = "depth"

    def __init__(
        self,
        network: nn.Module,
        loss: DepthSIGradLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        gradient_clip_val: float | None = 100.0,
        relative_to_mean: bool = True,
        spike_penalty: Callable[[dict[str, Tensor], list[str]], Tensor] | None = None,
    ) -> None:
        super().__init__(network, optimizer, scheduler, gradient_clip_val, spike_penalty)
        self.loss = loss
        self.relative_to_mean = relative_to_mean
        self.depth_errors = DepthErrorMetrics()
        self.register_buffer("constant_depth_m", torch.tensor(math.nan, dtype=torch.float64))
        self._window_losses: list[Tensor] = []

    def setup(self, stage: str) -> None:
        """Check the data's targets; when training, take the training set's mean depth (``mde_const``)."""
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and datamodule is not None:
            self.constant_depth_m.fill_(mean_depth_m(datamodule.train_set))

    def predictions(self, output: dict[str, Any]) -> list[Tensor]:
        """Every predicted scale [B, H, W] in the loss's representation, coarsest first (the network's
        ``depth_scales``, or its ``depth``), with the training mean added where ``relative_to_mean``."""
        scales = [scale[:, 0] for scale in output.get("depth_scales", [output["depth"]])]
        if not self.relative_to_mean:
            return scales
        if not torch.isfinite(self.constant_depth_m):
            raise ValueError(
                "DepthTask(relative_to_mean=True) predicts depth relative to the training set's mean depth, "
                "which is unknown: it is taken when training starts (a checkpoint of a trained run holds it)"
            )
        mean = self.loss.representation.from_metres(self.constant_depth_m.to(scales[0].dtype))
        return [scale + mean for scale in scales]

    def readout(self) -> str:
        """The formula from the network's ``depth`` output to depth in metres, with this run's numbers."""
        representation = self.loss.representation
        value = "output"
        if self.relative_to_mean:
            mean = float(representation.from_metres(self.constant_depth_m.float()))
            value = f"(output + {mean:.6g})"
        if representation.learned_metric == "metric":
            return f"depth_m = {value}"
        return f"depth_m = {representation.max_depth_m:g} * exp({representation.log_alpha:g} * ({value} - 1))"

    def to_metres(self, output: dict[str, Any]) -> Tensor:
        """The predicted depth in metres [B, H, W] (the finest scale), detached."""
        return self.loss.representation.to_metres(self.predictions(output)[-1].detach())

    # Training.

    def begin_sequence(self, batch: dict[str, Tensor]) -> None:
        self._window_losses = []

    def accumulate(self, window: Window, output: dict[str, Any]) -> None:
        """Add the loss of the windows that carry a map with valid pixels."""
        supervised = window["active"] & window["has_depth"]
        supervised &= valid_depth(window["depth_gt"]).flatten(1).any(dim=1)
        if not supervised.any():
            return
        scales = [scale[supervised] for scale in self.predictions(output)]
        self._window_losses.append(self.loss(scales, window["depth_gt"][supervised]))

    def sequence_loss(self) -> Tensor | None:
        """The mean loss over the sequence's supervised windows; None without any (no optimiser step)."""
        if not self._window_losses:
            return None
        return torch.cat(self._window_losses).mean()

    def training_evaluation(self, window: Window, output: dict[str, Any]) -> dict[str, Tensor]:
        return self._window_evaluation(window, output)

    # Validation.

    def reset_evaluation(self) -> None:
        self.depth_errors.reset()

    def evaluate_window(self, window: Window, output: dict[str, Any], names: list[str]) -> None:
        scored = window["active"] & window["has_depth"]
        if not scored.any():
            return
        gt = window["depth_gt"][scored]
        recordings = [names[int(r)] for r in window["recording"][scored]]
        self.depth_errors.update(self.to_metres(output)[scored], gt, recordings, float(self.constant_depth_m))
        supervised = valid_depth(gt).flatten(1).any(dim=1)
        if supervised.any():
            scales = self.predictions(output)
            loss = self.loss([s[scored][supervised] for s in scales], gt[supervised])
            self.log("val/loss", loss.mean(), batch_size=int(supervised.sum()))

    def observe_window(self, window: Window, output: dict[str, Any]) -> ObservedWindow:
        batch = {key: value.unsqueeze(0) for key, value in window.items()}
        return ObservedWindow("val", batch, output, evaluation=self._window_evaluation(window, output))

    def evaluation_results(self) -> dict[str, dict[str, float]]:
        return self.depth_errors.compute()

    def _window_evaluation(self, window: Window, output: dict[str, Any]) -> dict[str, Tensor]:
        """For observers: ``depth_m`` [B, H, W] (the prediction in metres) and, where a stream has a map,
        ``depth_error_m`` [B, H, W] (|prediction - GT|, 0 where the GT is invalid) and ``mde`` [B] cm (NaN
        without valid GT)."""
        depth_m = self.to_metres(output)
        evaluation = {"depth_m": depth_m}
        has_depth = window["active"] & window["has_depth"]
        if has_depth.any():
            gt = torch.where(has_depth.view(-1, 1, 1), window["depth_gt"], math.nan)
            evaluation["depth_error_m"] = torch.where(valid_depth(gt), (depth_m - gt).abs(), 0)
            evaluation["mde"] = depth_errors(depth_m, gt)["mde"]
        return evaluation
