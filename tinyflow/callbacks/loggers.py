"""A CSV logger that a resumed run appends to, instead of deleting what was logged before the crash."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only


class AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, keeping an existing ``metrics.csv``.

    A run resumed from its checkpoint logs again every step after it. So at the first new row, the
    existing rows from that step on (logged by the interrupted run after its checkpoint) are dropped and
    the earlier ones kept: every logged step appears once, as an uninterrupted run would have written it.
    """

    def __init__(self, log_dir: str) -> None:
        self._earlier_rows: list[dict[str, str]] | None = None
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                self._earlier_rows = list(csv.DictReader(file))

    def log_metrics(self, metrics_dict: dict[str, float], step: int | None = None) -> None:
        if self._earlier_rows is not None and step is not None:
            self._keep_rows_before(step)
        super().log_metrics(metrics_dict, step)

    def _keep_rows_before(self, step: int) -> None:
        """Rewrite ``metrics.csv`` (atomically) with the earlier rows logged before ``step``."""
        kept = [row for row in self._earlier_rows if int(row["step"]) < step]
        self._earlier_rows = None
        keys = sorted({key for row in kept for key in row})
        path = Path(self.metrics_file_path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(temporary, path)
        self.metrics_keys = keys


class AppendingCSVLogger(CSVLogger):
    """:class:`lightning.pytorch.loggers.CSVLogger` whose ``metrics.csv`` survives a resume (see
    :class:`AppendingExperimentWriter`)."""

    @property
    def experiment(self) -> Any:
        if self._experiment is None and rank_zero_only.rank == 0:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return super().experiment
