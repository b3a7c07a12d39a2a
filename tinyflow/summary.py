"""A table of what a dataset holds: recordings, events, durations, ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from tinyflow.io import open_recording


def recordings_table(paths: Sequence[str | Path], title: str) -> Table:
    """One row per recording: sensor size, events, duration, event rate, GT flow sets, depth, frames."""
    table = Table(title=title)
    for column in (
        "recording",
        "H x W",
        "events",
        "duration [s]",
        "rate [Mev/s]",
        "GT flow (maps)",
        "depth",
        "frames",
    ):
        table.add_column(column, justify="left" if column in ("recording", "GT flow (maps)") else "right")
    for path in paths:
        with open_recording(path) as recording:
            duration_s = recording.t_end_us * 1e-6
            flows = ", ".join(
                f"{name} ({len(recording.flow_intervals(name)[0])})" for name in recording.flow_names
            )
            depth, frames = recording.depth(), recording.frames()
            table.add_row(
                recording.name,
                "{} x {}".format(*recording.sensor_size),
                f"{recording.num_events:,}",
                f"{duration_s:.3f}",
                f"{recording.num_events / max(duration_s, 1e-9) * 1e-6:.3f}",
                flows or "-",
                str(len(depth.t_us)) if depth is not None else "-",
                str(len(frames.t_us)) if frames is not None else "-",
            )
    return table
