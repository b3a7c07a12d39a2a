"""Open any supported event file as a :class:`Recording`, detecting its layout from its keys."""

from __future__ import annotations

from pathlib import Path

import h5py

from tinyflow.events.core import EventDataError
from tinyflow.io.canonical import CanonicalRecording
from tinyflow.io.event_flow import EventFlowRecording
from tinyflow.io.h5 import H5Recording, hdf5_errors, open_hdf5
from tinyflow.io.recording import Recording

# layout name -> (its event keys, reader class)
LAYOUTS: dict[str, tuple[tuple[str, ...], type[H5Recording]]] = {
    "canonical": (("events/x", "events/y", "events/t", "events/p"), CanonicalRecording),
    "event_flow": (("events/xs", "events/ys", "events/ts", "events/ps"), EventFlowRecording),
}


def detect_layout(path: str | Path) -> str:
    """Name of the layout in ``LAYOUTS`` whose event keys the file holds most of.

    Raises:
        FileNotFoundError: the file does not exist.
        EventDataError: not an HDF5 file, or none of the known event keys is present; the
            message lists the keys found and the keys each layout expects.
    """
    path = Path(path)
    with open_hdf5(path) as file, hdf5_errors(path):
        found = sorted(file)
        if isinstance(file.get("events"), h5py.Group):
            found += [f"events/{key}" for key in sorted(file["events"])]
        scores = {name: sum(key in file for key in keys) for name, (keys, _) in LAYOUTS.items()}
    best = max(scores, key=scores.__getitem__)
    if scores[best] == 0:
        expected = "; ".join(f"{name}: {', '.join(keys)}" for name, (keys, _) in LAYOUTS.items())
        raise EventDataError(
            f"{path}: unknown event file layout; keys found: {found}; expected one of {expected}"
        )
    return best


def open_recording(path: str | Path, **kwargs: object) -> Recording:
    """Open ``path`` with the reader of its layout; ``kwargs`` go to that reader (e.g. ``sensor_size``).

    The reader checks the whole file once, at open (the verdict is cached, see :mod:`tinyflow.io.checks`).
    """
    _, reader = LAYOUTS[detect_layout(path)]
    return reader(path, **kwargs)
