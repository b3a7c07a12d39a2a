"""Console tables: validation metrics per recording, a run's summary, what a dataset holds.

Headings and cells are plain text (``rich.text.Text``): a unit such as ``[px]`` is printed as written,
not read as console markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tinyflow.app.checks import ConfigError
from tinyflow.io import open_recording
from tinyflow.metrics.registry import TaskMetrics, check_metric_selection


def metric_selection(value: object) -> str:
    """The ``metrics=`` value (``default`` when unset or null); :class:`ConfigError` unless default or full."""
    try:
        return check_metric_selection("default" if value is None else value)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def metrics_table(results: Mapping[str, Any], metrics: TaskMetrics, title: str) -> Table:
    """One row per recording and a mean row; columns: the task's declared metrics that any recording reports
    (pass results through :meth:`TaskMetrics.select` to show the default ones only)."""
    recordings: Mapping[str, Mapping[str, float]] = results["recordings"]
    shown = [m for m in metrics.metrics if any(m.key in values for values in recordings.values())]
    table = Table(title=Text(title))
    table.add_column("recording")
    for metric in shown:
        table.add_column(Text(metric.heading), justify="right")
    for name in sorted(recordings):
        values = recordings[name]
        table.add_row(Text(name), *(f"{values[m.key]:.4f}" if m.key in values else "-" for m in shown))
    table.add_section()
    table.add_row("mean", *(f"{results['mean'][m.key]:.4f}" for m in shown), style="bold")
    return table


def print_metrics(results: Mapping[str, Any], metrics: TaskMetrics, title: str) -> None:
    Console().print(metrics_table(results, metrics, title))


def layers_table(layers: Mapping[str, Mapping[str, float]], metrics: TaskMetrics, title: str) -> Table:
    """One row per layer (in the given order); columns: the declared metrics that any layer reports."""
    shown = [m for m in metrics.metrics if any(m.key in values for values in layers.values())]
    table = Table(title=Text(title))
    table.add_column("layer")
    for metric in shown:
        table.add_column(Text(metric.heading), justify="right")
    for name, values in layers.items():
        table.add_row(Text(name), *(f"{values[m.key]:.4g}" if m.key in values else "-" for m in shown))
    return table


def print_layers(layers: Mapping[str, Mapping[str, float]], metrics: TaskMetrics, title: str) -> None:
    Console().print(layers_table(layers, metrics, title))


def summary_table(items: Mapping[str, object], title: str) -> Table:
    """Two columns: what, and its value (``None`` values are left out)."""
    table = Table(title=Text(title), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in items.items():
        if value is not None:
            table.add_row(Text(key), Text(str(value)))
    return table


def print_summary(items: Mapping[str, object], title: str) -> None:
    Console().print(summary_table(items, title))


RECORDING_COLUMNS = (
    "recording",
    "H x W",
    "events",
    "duration [s]",
    "rate [Mev/s]",
    "GT flow (maps)",
    "depth",
    "frames",
)


def recordings_table(paths: Sequence[str | Path], title: str) -> Table:
    """One row per recording: sensor size, events, duration, event rate, GT flow sets, depth, frames."""
    table = Table(title=Text(title))
    for column in RECORDING_COLUMNS:
        table.add_column(
            Text(column), justify="left" if column in ("recording", "GT flow (maps)") else "right"
        )
    for path in paths:
        with open_recording(path) as recording:
            duration_s = recording.t_end_us * 1e-6
            flows = ", ".join(
                f"{name} ({len(recording.flow_intervals(name)[0])})" for name in recording.flow_names
            )
            depth, frames = recording.depth(), recording.frames()
            table.add_row(
                Text(recording.name),
                "{} x {}".format(*recording.sensor_size),
                f"{recording.num_events:,}",
                f"{duration_s:.3f}",
                f"{recording.num_events / max(duration_s, 1e-9) * 1e-6:.3f}",
                Text(flows or "-"),
                str(len(depth.t_us)) if depth is not None else "-",
                str(len(frames.t_us)) if frames is not None else "-",
            )
    return table
