"""Conversion of a dataset's recordings to canonical files: atomic, resumable, never touching the source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from tinyflow.events.core import EventDataError
from tinyflow.io.canonical import CanonicalRecording, CanonicalWriter, Compression
from tinyflow.io.datasets import converted_path, dataset_layout
from tinyflow.io.h5 import open_hdf5
from tinyflow.io.recording import Recording

EVENTS_PER_APPEND = 1_000_000


def write_recording(
    recording: Recording, target: Path, source: str, compression: Compression = "gzip"
) -> Path:
    """Stream a recording (every camera's events, GT flow, depth, disparity, frames, calibration) into a
    canonical file at ``target``.

    Maps are read one block at a time where the reader is lazy; the file appears at ``target`` only
    when complete (see :class:`~tinyflow.io.canonical.CanonicalWriter`).
    """
    with CanonicalWriter(
        target, recording.sensor_size, t0_us=recording.t0_us, source=source, compression=compression
    ) as writer:
        for name in recording.cameras:
            camera = recording.camera(name)
            for start in range(0, camera.num_events, EVENTS_PER_APPEND):
                writer.append(camera.events(start, min(start + EVENTS_PER_APPEND, camera.num_events)), name)
        for name in recording.flow_names:
            flow = recording.flow(name)
            if len(flow):
                writer.add_flow(name, flow)
        depth, disparity = recording.depth(), recording.disparity()
        frames, calib = recording.frames(), recording.calib()
        if depth is not None and len(depth.t_us):
            writer.set_depth(depth)
        if disparity is not None and len(disparity.t_us):
            writer.set_disparity(disparity)
        if frames is not None and len(frames.t_us):
            writer.set_frames(frames)
        if calib:
            writer.set_calib(calib)
    return target


def is_converted(target: Path, source: str) -> bool:
    """Whether ``target`` is a complete canonical file converted from ``source``; False if it does not exist.

    Raises:
        EventDataError: ``target`` exists but is not a complete canonical file of ``source``
            (truncated, corrupted or another recording): it is never overwritten.
    """
    if not target.exists():
        return False
    try:
        CanonicalRecording(target).close()
        with open_hdf5(target) as file:
            found = file.attrs.get("source")
    except (OSError, EventDataError) as error:
        raise EventDataError(
            f"{target}: exists but is not a complete canonical recording ({error}); delete it to convert again"
        ) from error
    if found != source:
        raise EventDataError(
            f"{target}: exists and holds '{found}', not '{source}'; delete it to convert again"
        )
    return True


def convert_dataset(
    dataset: str,
    src: str | Path,
    dst: str | Path,
    names: Sequence[str] | None = None,
    compression: Compression = "gzip",
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Convert recordings of ``dataset`` from the original layout in ``src`` to ``dst/<name>.h5``.

    Recordings already converted are skipped (resume after a crash); temporary files a crashed run
    left in ``dst`` are removed. The source is only read.

    Args:
        names: recordings to convert; None: every recording found in ``src``.
    Returns:
        The converted files, in ``names`` order.
    """
    layout, src, dst = dataset_layout(dataset), Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such folder (the {dataset} dataset in its original layout)")
    if dst.resolve() == src.resolve():
        raise ValueError(f"{dst}: the output folder must differ from the source folder")
    names = list(names) if names is not None else layout.find(src)
    if not names:
        raise FileNotFoundError(f"{src}: no {dataset} recordings found in the original layout")
    dst.mkdir(parents=True, exist_ok=True)
    targets = []
    for name in names:
        target, source = converted_path(dst, name), f"{dataset}:{name}"
        for stale in dst.glob(f".{target.name}.*.tmp"):
            stale.unlink()
        if is_converted(target, source):
            log(f"{name}: already converted ({target})")
        else:
            recording = layout.open(src, name, **layout.convert_options)
            try:
                write_recording(recording, target, source, compression)
            finally:
                recording.close()
            log(f"{name}: {recording.num_events} events -> {target}")
        targets.append(target)
    return targets
