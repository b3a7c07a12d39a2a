"""A quiet console: the warnings and log lines of libraries that say nothing to a tinyflow user.

Each filter names one message and says why it is safe to drop; nothing else is silenced.
"""

from __future__ import annotations

import logging
import warnings


def quiet_console() -> None:
    """Install the filters (idempotent)."""
    # ModelCheckpoint(every_n_train_steps) with manual optimisation: Lightning warns (with a 13-line code
    # example) that the checkpoint holds the state AFTER the optimiser step. That is the state we want: a
    # resume point after step N, where the task's training_step has stepped optimiser and scheduler.
    warnings.filterwarnings(
        "ignore", message=r"Using ModelCheckpoint with manual optimization and every_n_train_steps"
    )
    # torch deprecated LeafSpec instances; Lightning 2.6's own pytree helper still makes them. Nothing for
    # a user to change.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # validate.py restores only the weights of a checkpoint; the training callbacks (checkpointing) that
    # Lightning asks for are deliberately not part of a validation.
    warnings.filterwarnings(
        "ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create"
    )
    # A resumed run writes its checkpoints into the folder that holds the ones it resumes from.
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # Lightning's one-time advertisement for its LitLogger.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropLitLoggerTip())


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage().lower()
