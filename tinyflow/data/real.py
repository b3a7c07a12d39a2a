"""A DataModule over the recordings of a real dataset (ECD, UZH-FPV, MVSEC, HQF, DSEC), by name."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tinyflow.data.datamodule import EventDataModule
from tinyflow.io.datasets import CONVERTED_SUFFIX, dataset_layout, open_dataset_recording
from tinyflow.io.recording import Recording

RecordingList = Mapping[str, Mapping[str, Any] | None] | Sequence[str]


class DatasetDataModule(EventDataModule):
    """Named recordings of a dataset, each opened with its evaluation protocol.

    Args:
        dataset: ``ecd``, ``uzh_fpv``, ``mvsec``, ``hqf`` or ``dsec``.
        root: folder holding the dataset in its original layout and/or converted files ``<name>.h5``.
        train, val, test: recording names, or a mapping name -> protocol options (``time_range_s``,
            ``gt_map_range``, ``crop``, ``valid_rows``; see
            :func:`~tinyflow.io.datasets.open_protocol_view`). Recordings absent from ``root`` are
            skipped with a warning (train, val; none present is an error) or are an error (test).
        reader: options of the dataset's original-layout reader (e.g. ECD ``gt_events_per_window``).
        kwargs: :class:`~tinyflow.data.datamodule.EventDataModule` arguments (windowing, crop, ...).
    """

    def __init__(
        self,
        dataset: str,
        root: str | Path,
        train: RecordingList,
        val: RecordingList,
        test: RecordingList | None = None,
        reader: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset, self.root = dataset, Path(root)
        self.layout = dataset_layout(dataset)
        self.splits = {"train": train, "val": val, "test": test}
        self.reader = dict(reader or {})

    def _present(self) -> set[str]:
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.dataset} data folder {self.root} does not exist or is not a directory"
            )
        return set(self.layout.find(self.root)) | {p.stem for p in self.root.glob(f"*{CONVERTED_SUFFIX}")}

    def _open(self, split: str) -> list[Recording]:
        entries = self.splits[split]
        protocols = dict(entries) if isinstance(entries, Mapping) else dict.fromkeys(entries)
        present = self._present()
        missing = [name for name in protocols if name not in present]
        if missing and split == "test":  # a benchmark's test split is all or nothing
            raise FileNotFoundError(
                f"{self.root}: {self.dataset} test recordings not found: {missing} (found: {sorted(present)}); "
                "the test split needs every one (set data.test to the ones to predict)"
            )
        if missing:
            warnings.warn(
                f"{self.root}: {self.dataset} {split} recordings not found, skipped: {missing}", stacklevel=2
            )
        names = [name for name in protocols if name in present]
        if not names:
            raise FileNotFoundError(
                f"{self.root}: none of the {self.dataset} {split} recordings {list(protocols)} is there "
                f"(found: {sorted(present)})"
            )
        return [
            open_dataset_recording(self.dataset, self.root, name, self.reader, **dict(protocols[name] or {}))
            for name in names
        ]

    def train_paths(self) -> list[Recording]:
        return self._open("train")

    def val_paths(self) -> list[Recording]:
        return self._open("val")

    def test_paths(self) -> list[Recording]:
        if self.splits["test"] is None:
            return super().test_paths()
        return self._open("test")
