"""The real datasets: how to find and open each one's recordings, in its original or the canonical layout."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyflow.io import dsec, ecd, mvsec, uzh_fpv
from tinyflow.io.event_flow import EventFlowRecording
from tinyflow.io.recording import Recording
from tinyflow.io.registry import open_recording
from tinyflow.io.view import RecordingView

CONVERTED_SUFFIX = ".h5"


def find_hqf(root: Path) -> list[str]:
    """HQF (Stoffregen et al., ECCV 2020) ships as event_utils HDF5 files ``<name>.h5`` (see event_flow.py)."""
    return sorted(p.stem for p in Path(root).glob("*.h5"))


def open_hqf(root: Path, name: str) -> EventFlowRecording:
    return EventFlowRecording(Path(root) / f"{name}.h5")


@dataclass(frozen=True)
class DatasetLayout:
    """One dataset's original layout.

    Attributes:
        find: recording names present below a root.
        open: ``open(root, name, **options)`` -> the recording, read from the original layout.
        convert_options: options of ``open`` for conversion (e.g. also read the frames).
        label_sets: named sets of depth labels of a published protocol (``depth_labels: <name>``), as
            indices counted from the first map of the protocol's ``depth_map_range``.
    """

    name: str
    find: Callable[[Path], list[str]]
    open: Callable[..., Recording]
    convert_options: Mapping[str, Any] = field(default_factory=dict)
    label_sets: Mapping[str, Sequence[int]] = field(default_factory=dict)

    def label_set(self, name: str) -> Sequence[int]:
        if name not in self.label_sets:
            raise ValueError(
                f"{self.name}: unknown depth label set {name!r}; expected one of {sorted(self.label_sets)}"
            )
        return self.label_sets[name]


DATASETS: dict[str, DatasetLayout] = {
    "ecd": DatasetLayout("ecd", ecd.find_recordings, ecd.open_ecd, {"load_frames": True}),
    "uzh_fpv": DatasetLayout("uzh_fpv", uzh_fpv.find_recordings, uzh_fpv.open_uzh_fpv, {"load_frames": True}),
    "mvsec": DatasetLayout(
        "mvsec", mvsec.find_recordings, mvsec.open_mvsec, label_sets=mvsec.DEPTH_LABEL_SETS
    ),
    "hqf": DatasetLayout("hqf", find_hqf, open_hqf),
    "dsec": DatasetLayout("dsec", dsec.find_recordings, dsec.open_dsec),
}


def dataset_layout(name: str) -> DatasetLayout:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; expected one of {sorted(DATASETS)}")
    return DATASETS[name]


def converted_path(root: Path, name: str) -> Path:
    """Where the converted (canonical) file of recording ``name`` lives in a folder of converted files."""
    return Path(root) / f"{name}{CONVERTED_SUFFIX}"


def open_protocol_view(
    recording: Recording,
    time_range_s: Sequence[float] | None = None,
    gt_map_range: Sequence[int] | None = None,
    crop: Sequence[int] | None = None,
    valid_rows: Sequence[int] | None = None,
    depth_map_range: Sequence[int] | None = None,
    depth_labels: Sequence[int] | None = None,
) -> Recording:
    """The recording restricted by an evaluation protocol (see :class:`~tinyflow.io.view.RecordingView`).

    Args:
        time_range_s: ``(begin, end)`` seconds since the recording's first event.
        gt_map_range: ``(first, stop)`` maps of the native GT flow set ``gt`` (MVSEC's GT clock): the
            time range from the start of map ``first`` to the start of map ``stop - 1``.
        crop: ``(height, width)`` centre crop.
        valid_rows: ``(first, stop)`` rows of the crop where GT is evaluated.
        depth_map_range: ``(first, stop)`` depth maps (e.g. MVSEC frames without take-off and landing): the
            view holds maps ``first .. stop - 1`` and the time from map ``first - 1`` (the events before
            the first map; 0 when ``first`` = 0) to map ``stop - 1``.
        depth_labels: the maps of ``depth_map_range`` that are ground truth, counted from ``first`` (a
            held-out validation set); the others carry no target. None: all.
    """
    time_options = {
        "time_range_s": time_range_s,
        "gt_map_range": gt_map_range,
        "depth_map_range": depth_map_range,
    }
    if sum(value is not None for value in time_options.values()) > 1:
        given = [key for key, value in time_options.items() if value is not None]
        raise ValueError(
            f"{recording.path}: give one of time_range_s, gt_map_range, depth_map_range, not {given}"
        )
    if depth_labels is not None and depth_map_range is None:
        raise ValueError(
            f"{recording.path}: depth_labels count from the first map of depth_map_range; give both"
        )
    time_range_us = depth_maps = labels = None
    if time_range_s is not None:
        time_range_us = (round(time_range_s[0] * 1e6), round(time_range_s[1] * 1e6))
    if gt_map_range is not None:
        t_start, _ = recording.flow_intervals("gt")
        first, stop = gt_map_range
        if not 0 <= first < stop <= len(t_start):
            raise ValueError(
                f"{recording.path}: gt_map_range {list(gt_map_range)} is outside the {len(t_start)} GT maps"
            )
        time_range_us = (int(t_start[first]), int(t_start[stop - 1]))
    if depth_map_range is not None:
        t_us = recording.depth_t_us()
        count = 0 if t_us is None else len(t_us)
        first, stop = depth_map_range
        if not 0 <= first < stop <= count:
            raise ValueError(
                f"{recording.path}: depth_map_range {list(depth_map_range)} is outside its {count} depth maps"
            )
        time_range_us = (max(int(t_us[first - 1]) if first else 0, 0), int(t_us[stop - 1]) + 1)
        depth_maps = np.arange(first, stop)
        if depth_labels is not None:
            labels = first + np.asarray(depth_labels, np.int64)
            if labels.size and (labels.min() < first or labels.max() >= stop):
                raise ValueError(
                    f"{recording.path}: depth_labels must lie in [0, {stop - first}) (maps of depth_map_range "
                    f"{list(depth_map_range)}), got {int(labels.min()) - first}..{int(labels.max()) - first}"
                )
    if time_range_us is None and crop is None and valid_rows is None:
        return recording
    return RecordingView(
        recording,
        time_range_us,
        None if crop is None else tuple(crop),
        None if valid_rows is None else tuple(valid_rows),
        depth_maps,
        labels,
    )


def open_dataset_recording(
    dataset: str, root: str | Path, name: str, reader: Mapping[str, Any] | None = None, **protocol: Any
) -> Recording:
    """Recording ``name`` of ``dataset`` below ``root``, seen through its evaluation ``protocol``.

    A converted file ``root/<name>.h5`` (canonical or event_flow layout) is used when present;
    otherwise the original layout is read with the ``reader`` options. A ``depth_labels`` protocol option
    may name one of the dataset's label sets (:attr:`DatasetLayout.label_sets`).
    """
    layout, root = dataset_layout(dataset), Path(root)
    path = converted_path(root, name)
    recording = open_recording(path) if path.is_file() else layout.open(root, name, **dict(reader or {}))
    if isinstance(protocol.get("depth_labels"), str):
        protocol = {**protocol, "depth_labels": layout.label_set(protocol["depth_labels"])}
    return open_protocol_view(recording, **protocol)
