"""Stop on a signal at the next step boundary with a checkpoint of that step, so the run can resume.

SIGINT (Ctrl-C), SIGTERM (``kill``, schedulers) and SIGUSR1 (SLURM's pre-emption warning with
``--signal=USR1@<seconds>``) ask the run to stop: the step in progress completes, ``last.ckpt`` is
written for it (atomically), training stops, and the entry point prints the ``resume=`` command. A
second SIGINT while stopping interrupts at once.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import lightning as L

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)


class StopOnSignal(L.Callback):
    """Turns a stop signal into a checkpoint at the step boundary and a clean stop.

    Args:
        checkpoint: the file written at the stop (the run's ``last.ckpt``).

    After ``fit``, :attr:`stopped_by` names the signal that stopped the run, or is None.
    """

    def __init__(self, checkpoint: str | Path) -> None:
        self.checkpoint = Path(checkpoint)
        self.stopped_by: str | None = None
        self._requested: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._requested, self.stopped_by = None, None
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._request)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _request(self, signum: int, frame: FrameType | None) -> None:
        if self._requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self._requested = signal.Signals(signum)

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        requested = trainer.strategy.reduce_boolean_decision(self._requested is not None, all=False)
        if not requested:
            return
        trainer.save_checkpoint(self.checkpoint, weights_only=False)
        trainer.should_stop = True
        self.stopped_by = self._requested.name if self._requested is not None else "a signal on another rank"
