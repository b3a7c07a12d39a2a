"""User errors become one message and a non-zero exit, without a traceback.

A user error is a bad config value, missing or broken data, an unknown run or a refused checkpoint: the
message already names the culprit, so the traceback only hides it. ``HYDRA_FULL_ERROR=1`` shows the
traceback anyway (the switch Hydra users know). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tinyflow.app.checkpoints import CheckpointError
from tinyflow.app.checks import ConfigError
from tinyflow.data.datamodule import EmptyDataError
from tinyflow.events.core import EventDataError
from tinyflow.export.errors import ExportError
from tinyflow.tasks.recurrent import TaskNetworkError

USER_ERROR_EXIT_CODE = 2


class RunStopped(Exception):
    """Training stopped on a signal after writing its checkpoint; the message says how to resume.

    Attributes:
        exit_code: 128 + the signal number, as a shell reports a process ended by that signal.
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


USER_ERRORS: tuple[type[BaseException], ...] = (
    CheckpointError,
    ConfigError,
    EmptyDataError,
    EventDataError,
    FileExistsError,
    ExportError,
    FileNotFoundError,
    NotADirectoryError,
    RunStopped,
    TaskNetworkError,
)


def find_user_error(error: BaseException) -> BaseException | None:
    """``error`` or the first user error among its causes (Hydra wraps what a ``_target_`` raised)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, USER_ERRORS):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def user_errors_as_messages() -> Iterator[None]:
    """Print a user error as ``error: <message>`` on stderr and exit non-zero; re-raise anything else."""
    try:
        yield
    except Exception as error:
        found = find_user_error(error)
        if found is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        stopped = isinstance(found, RunStopped)
        print(str(found) if stopped else f"error: {found}", file=sys.stderr, flush=True)
        raise SystemExit(found.exit_code if stopped else USER_ERROR_EXIT_CODE) from None
