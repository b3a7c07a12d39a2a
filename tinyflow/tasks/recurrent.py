"""The recurrent task: what every sequential task shares (truncated BPTT, state, validation, observers).

A training batch is a time-major sequence ``[T, B, ...]`` of T consecutive windows of B streams
(see :class:`tinyflow.data.sampler.SequentialBatchSampler`). Each window is one forward pass of the
recurrent network; the T passes form the accumulation window of the task's loss. After the T passes:
backward, gradient clipping, optimiser step, learning-rate scheduler step; then the network state is
detached, and reset for the streams whose recording ended. Validation runs one window per pass with the
state carried across windows; the training state is stashed meanwhile and restored afterwards.

A task subclass adds only its loss (:meth:`begin_sequence`, :meth:`accumulate`, :meth:`sequence_loss`),
its evaluation (:meth:`reset_evaluation`, :meth:`evaluate_window`, :meth:`evaluation_results`) and the
name of its declared metrics (:attr:`metric_task`, see :mod:`tinyflow.metrics.registry`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import lightning as L
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from torch import Tensor, nn
from torch.optim.lr_scheduler import LRScheduler

from tinyflow.metrics.registry import TaskMetrics, task_metrics
from tinyflow.metrics.spikes import spiking_unit_names
from tinyflow.models.stateful import StatefulNetwork, map_state

RESUME_KEY = "tinyflow_resume"  # checkpoint entry: recurrent state and training RNG state


def rng_state() -> dict[str, Any]:
    """torch's random-number states: the CPU generator, and every CUDA device's once CUDA is in use."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state:
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


Window = dict[str, Tensor]  # one time step of a batch: every entry [B, ...]


class TaskNetworkError(ValueError):
    """The network does not predict what the task learns (a flow network under ``task=depth``, ...)."""


@dataclass(frozen=True)
class ObservedWindow:
    """What a task hands to its window observers (visualisers), without copies.

    Attributes:
        stage: ``"train"`` (once per optimiser step) or ``"val"`` (every validation window).
        batch: time-major ``[T, B, ...]`` batch entries of the windows behind ``output`` (training: the
            accumulation window; validation: T = 1).
        output: the network's output for the last of those windows (``flow`` [B, 2, H, W] in pixels per
            window, ``activity``: layer name -> [B, C, H, W]); it may still carry its autograd graph.
        loss: the training loss of the accumulation window (detached); None in validation and for a
            sequence without supervision.
        iwe: returns the loss's images of warped events of the observed windows
            (``WarpedEventImages``), or None where the task has none; valid only during the observer call.
        evaluation: the task's per-window evaluation of the last window, detached: per-pixel maps
            [B, H, W] and per-stream values [B] (flow: ``flow_error`` in px, ``aee`` in px, NaN without
            evaluated pixels, empty without ground truth; depth: ``depth_m``, the prediction in metres,
            and with ground truth ``depth_error_m`` and ``mde`` in cm).
    """

    stage: str
    batch: dict[str, Tensor]
    output: dict[str, Any]
    loss: Tensor | None = None
    iwe: Callable[[], Any] | None = None
    evaluation: dict[str, Tensor] = field(default_factory=dict)


class RecurrentTask(L.LightningModule, abc.ABC):
    """Trains and validates a recurrent network on sequences of windows (manual optimisation).

    Args:
        network: pure network ``forward(x, state) -> (out, new_state)``; the task holds its state in a
            :class:`~tinyflow.models.stateful.StatefulNetwork` (``self.network``).
        optimizer: factory ``optimizer(params)`` (a ``_partial_`` Hydra config).
        scheduler: factory ``scheduler(optimizer)`` of a learning-rate scheduler stepped after every
            optimiser step, or None for a constant learning rate.
        gradient_clip_val: max gradient norm (L2 over all parameters), or None / 0 for no clipping.
        spike_penalty: an optional firing-rate regulariser added to the task loss: called per window with
            ``out["activity"]`` and the names of the spiking layers, averaged over the sequence's windows
            (:class:`~tinyflow.metrics.spikes.SpikeActivityPenalty`; ``regularizer=firing_rate``).

    Visualisers append a callable taking an :class:`ObservedWindow` to ``window_observers``; with none
    attached, nothing is recorded.
    """

    metric_task: ClassVar[str]
    required_targets: ClassVar[tuple[str, ...]] = ()
    prediction_key: ClassVar[str]  # the network output the task learns (its head's ``output_key``)

    def __init__(
        self,
        network: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[[torch.optim.Optimizer], LRScheduler] | None = None,
        gradient_clip_val: float | None = 100.0,
        spike_penalty: Callable[[dict[str, Tensor], list[str]], Tensor] | None = None,
    ) -> None:
        super().__init__()
        if gradient_clip_val is not None and gradient_clip_val < 0:
            raise ValueError(f"task.gradient_clip_val: expected a norm >= 0 or null; got {gradient_clip_val}")
        predicts = getattr(getattr(network, "prediction", None), "output_key", self.prediction_key)
        if predicts != self.prediction_key:
            raise TaskNetworkError(
                f"{type(self).__name__} learns {self.prediction_key!r}, but the network ({type(network).__name__}) "
                f"predicts {predicts!r}: choose a model that predicts {self.prediction_key!r}, or the task that "
                f"learns {predicts!r} (task=flow: flow models; task=depth: model=stereospike, stereospike_mono)"
            )
        self.automatic_optimization = False
        self.network = network if isinstance(network, StatefulNetwork) else StatefulNetwork(network)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.gradient_clip_val = gradient_clip_val
        self.spike_penalty = spike_penalty
        self.spiking_layer_names = spiking_unit_names(self.network)
        self.window_observers: list[Callable[[ObservedWindow], None]] = []
        self.validation_results: dict[str, dict[str, dict[str, float]]] = {"recordings": {}, "mean": {}}
        self._stashed_state: Any = None
        self._training_rng: dict[str, Any] | None = None

    @classmethod
    def metrics(cls) -> TaskMetrics:
        """The declared metrics of this task."""
        return task_metrics(cls.metric_task)

    # What a task adds.

    @abc.abstractmethod
    def begin_sequence(self, batch: dict[str, Tensor]) -> None:
        """Start the loss of a training sequence ``[T, B, ...]``."""

    @abc.abstractmethod
    def accumulate(self, window: Window, output: dict[str, Any]) -> None:
        """Add one training window and the network's output for it to the sequence loss."""

    @abc.abstractmethod
    def sequence_loss(self) -> Tensor | None:
        """The loss of the accumulated sequence (a scalar with its graph); None when no window of it is
        supervised (the step then takes no optimiser step)."""

    def training_images(self) -> Callable[[], Any] | None:
        """What :attr:`ObservedWindow.iwe` returns for the training sequence just accumulated."""
        return None

    @abc.abstractmethod
    def reset_evaluation(self) -> None:
        """Forget the evaluation of the previous validation pass."""

    @abc.abstractmethod
    def evaluate_window(self, window: Window, output: dict[str, Any], names: list[str]) -> None:
        """Add one validation window (``names``: recording name of each stream index)."""

    @abc.abstractmethod
    def evaluation_results(self) -> dict[str, dict[str, float]]:
        """``{recording: {metric key: value}}`` of the validation pass, keys as declared in the registry."""

    def observe_window(self, window: Window, output: dict[str, Any]) -> ObservedWindow:
        """The observed form of a validation window (override to add images or per-window errors)."""
        return ObservedWindow("val", {key: value.unsqueeze(0) for key, value in window.items()}, output)

    def training_evaluation(self, window: Window, output: dict[str, Any]) -> dict[str, Tensor]:
        """Per-window evaluation of the last training window for observers (default: none)."""
        return {}

    def readout(self) -> str | None:
        """How the network's output becomes the prediction outside the task (an exported model's manifest);
        None where the output is the prediction."""
        return None

    # Lightning hooks.

    def setup(self, stage: str) -> None:
        """Check that the data carries the targets this task learns from or evaluates against."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "require_targets"):
            datamodule.require_targets(self.required_targets)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        optimizer = self.optimizer_factory(self.network.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def forward(self, x: Tensor) -> dict[str, Any]:
        return self.network(x)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self._training_rng is not None:  # training draws continue where the last step left them
            set_rng_state(self._training_rng)
        optimizer = self.optimizers()
        steps, streams = batch["input"].shape[:2]
        self.begin_sequence(batch)
        penalties = []
        for t in range(steps):
            window = {key: value[t] for key, value in batch.items()}
            output = self.network(window["input"])
            self.accumulate(window, output)
            if self.spike_penalty is not None:
                penalties.append(self.spike_penalty(output["activity"], self.spiking_layer_names))
        loss = self.sequence_loss()
        if penalties and loss is not None:  # no penalty without a step (a sequence without targets)
            penalty = torch.stack(penalties).mean()
            self.log("train/spike_penalty", penalty.detach(), batch_size=streams)
            loss = loss + penalty
        if loss is not None:
            self._optimiser_step(optimizer, loss, streams)
        self.network.detach_state()
        self.network.reset_state(batch["end_of_recording"][-1])
        self._training_rng = rng_state()
        loss = None if loss is None else loss.detach()
        if loss is not None:
            self.log("train/loss", loss, prog_bar=True, batch_size=streams)
        if self.window_observers:
            evaluation = self.training_evaluation(window, output)
            self._notify(ObservedWindow("train", batch, output, loss, self.training_images(), evaluation))
        return loss

    def _optimiser_step(self, optimizer: torch.optim.Optimizer, loss: Tensor, streams: int) -> None:
        """Backward, clip, step, and the scheduler's step."""
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.gradient_clip_val:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.gradient_clip_val, gradient_clip_algorithm="norm"
            )
        optimizer.step()
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            self.log("train/lr", scheduler.get_last_lr()[0], batch_size=streams)
            scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save what an exact resume needs besides weights and optimiser: the training streams' recurrent
        state and the random-number state of the training steps (one entry per rank of a distributed run).
        """
        resume = {"recurrent_state": self.network.state, "training_rng": self._training_rng}
        if self.trainer.world_size > 1:
            resume = self.all_gather(resume)
        checkpoint[RESUME_KEY] = {"world_size": self.trainer.world_size, **resume}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(RESUME_KEY)
        if saved is None:
            return
        world_size, rank = self.trainer.world_size, self.trainer.global_rank
        if saved["world_size"] != world_size:
            raise ValueError(
                f"the checkpoint was written by {saved['world_size']} processes, this run has {world_size}: "
                "resume with the run's own trainer settings (trainer.devices, trainer.num_nodes)"
            )

        def mine(tensor: Tensor) -> Tensor:
            return tensor[rank] if world_size > 1 else tensor

        self.network.state = apply_to_collection(saved["recurrent_state"], Tensor, mine)
        self._training_rng = apply_to_collection(saved["training_rng"], Tensor, mine)

    def on_train_start(self) -> None:
        self.network.state = map_state(lambda t: t.to(self.device), self.network.state)

    def on_validation_epoch_start(self) -> None:
        self._stashed_state = self.network.state
        self.network.reset_state()
        self.reset_evaluation()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        names = self.trainer.datamodule.val_set.recording_names
        for t in range(batch["input"].shape[0]):
            window = {key: value[t] for key, value in batch.items()}
            output = self.network(window["input"])
            self.evaluate_window(window, output, names)
            if self.window_observers:
                self._notify(self.observe_window(window, output))
            ended = window["end_of_recording"]
            # every stream ended: drop the state, so the next recordings may have another sensor size
            self.network.reset_state(None if bool(ended.all()) else ended)

    def on_validation_epoch_end(self) -> None:
        recordings = self.evaluation_results()
        metrics = self.metrics()
        mean = metrics.mean_over_recordings(recordings)
        self.validation_results = {"recordings": recordings, "mean": mean}
        # The monitored metric is always logged: NaN (never best) where the data cannot give it.
        logged = {metrics.monitor.key: math.nan, **mean}
        for key, value in logged.items():
            self.log(f"val/{key}", value, prog_bar=key in metrics.objective)
        self.network.state = self._stashed_state
        self._stashed_state = None

    def _notify(self, window: ObservedWindow) -> None:
        for observe in self.window_observers:
            observe(window)
