"""Rich tables: validation metrics per recording, and the summary of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from tinyflow.lit.flow import METRIC_KEYS

METRIC_TITLES = {
    "aee": "AEE [px]",
    "outliers": "% outliers",
    "aee_zero": "zero-flow AEE [px]",
    "aae": "AAE [deg]",
    "fwl": "FWL",
    "rsat": "RSAT",
}


def metrics_table(results: dict[str, Any], title: str) -> Table:
    """One row per recording and a mean row; columns are the metrics any recording reports."""
    recordings: dict[str, dict[str, float]] = results["recordings"]
    keys = [k for k in METRIC_KEYS if any(k in m for m in recordings.values())]
    table = Table(title=title)
    table.add_column("recording")
    for key in keys:
        table.add_column(METRIC_TITLES[key], justify="right")
    for name in sorted(recordings):
        table.add_row(name, *(f"{recordings[name][k]:.4f}" if k in recordings[name] else "-" for k in keys))
    table.add_section()
    table.add_row("mean", *(f"{results['mean'][k]:.4f}" for k in keys), style="bold")
    return table


def print_metrics(results: dict[str, Any], title: str) -> None:
    Console().print(metrics_table(results, title))


def summary_table(items: Mapping[str, object], title: str) -> Table:
    """Two columns: what, and its value (``None`` values are left out)."""
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in items.items():
        if value is not None:
            table.add_row(key, str(value))
    return table


def print_summary(items: Mapping[str, object], title: str) -> None:
    Console().print(summary_table(items, title))
