"""Rich tables of validation metrics."""

from __future__ import annotations

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
