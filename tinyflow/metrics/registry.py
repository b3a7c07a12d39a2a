"""The metric registry: every reported metric declared once, with its title, unit, direction and task.

Tables, the JSON of ``validate.py output=``, checkpoint monitoring and the hyperparameter-search
objective read these declarations; a task reports values under the keys declared for it. A task computes
every metric it declares; tables and JSON show the default ones, or all of them with ``metrics=full``
(:data:`METRIC_SELECTIONS`, :meth:`TaskMetrics.select`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# What tables and JSON show: ``default`` = the metrics declared ``default=True``, ``full`` = all declared.
METRIC_SELECTIONS = ("default", "full")


@dataclass(frozen=True)
class Metric:
    """One reported number.

    Attributes:
        key: name in results, logs (``val/<key>``) and JSON.
        title: column heading without the unit.
        unit: unit of the value (``px``, ``deg``, ``%``), or None for a ratio without unit.
        lower_is_better: the direction a checkpoint monitor or a search optimises.
        task: the task that reports it (``flow``, ``depth``).
        description: one line: what is measured, over what.
        default: part of the default table and JSON; False = shown only with ``metrics=full``.
    """

    key: str
    title: str
    unit: str | None
    lower_is_better: bool
    task: str
    description: str
    default: bool = True

    @property
    def heading(self) -> str:
        """``title [unit]`` (plain text: print it as text, not as console markup)."""
        return f"{self.title} [{self.unit}]" if self.unit else self.title


@dataclass(frozen=True)
class TaskMetrics:
    """The metrics of one task, in table order, and what selects among runs.

    Attributes:
        task: task name.
        metrics: declarations in the order of tables and JSON.
        objective: keys tried in order for checkpoint monitoring and searches: the first whose mean is
            finite decides (flow: AEE where there is GT, else RSAT).
    """

    task: str
    metrics: tuple[Metric, ...]
    objective: tuple[str, ...]

    def __post_init__(self) -> None:
        keys = self.keys
        if len(set(keys)) != len(keys):
            raise ValueError(f"task {self.task!r}: metric keys declared twice: {keys}")
        for metric in self.metrics:
            if metric.task != self.task:
                raise ValueError(f"metric {metric.key!r} belongs to task {metric.task!r}, not {self.task!r}")
        unknown = [key for key in self.objective if key not in keys]
        if not self.objective or unknown:
            raise ValueError(f"task {self.task!r}: objective {self.objective} must name declared metrics")

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(metric.key for metric in self.metrics)

    def reported(self, selection: str = "default") -> tuple[Metric, ...]:
        """The metrics that tables and JSON show for ``selection`` (one of :data:`METRIC_SELECTIONS`)."""
        check_metric_selection(selection)
        return tuple(m for m in self.metrics if selection == "full" or m.default)

    def select(self, results: Mapping[str, Any], selection: str = "default") -> dict[str, Any]:
        """``results`` (``{"recordings": {name: {key: value}}, "mean": {key: value}}``) restricted to the keys
        of :meth:`reported`; other entries are kept as they are."""
        keys = {m.key for m in self.reported(selection)}

        def kept(values: Mapping[str, float]) -> dict[str, float]:
            return {key: value for key, value in values.items() if key in keys}

        selected = dict(results)
        selected["recordings"] = {name: kept(values) for name, values in results["recordings"].items()}
        selected["mean"] = kept(results["mean"])
        return selected

    def metric(self, key: str) -> Metric:
        for metric in self.metrics:
            if metric.key == key:
                return metric
        raise KeyError(f"task {self.task!r} declares no metric {key!r}; it has {list(self.keys)}")

    @property
    def monitor(self) -> Metric:
        """The metric a best-checkpoint callback monitors (the first objective key)."""
        return self.metric(self.objective[0])

    def mean_over_recordings(self, recordings: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """Mean of each declared metric over the recordings that report it (each recording weighs the same)."""
        mean: dict[str, float] = {}
        for key in self.keys:
            values = [metrics[key] for metrics in recordings.values() if key in metrics]
            if values:
                mean[key] = math.fsum(values) / len(values)
        return mean

    def objective_value(self, mean: Mapping[str, float]) -> float:
        """What a search minimises: the first finite objective mean, negated where higher is better; NaN if none."""
        for key in self.objective:
            value = mean.get(key, math.nan)
            if math.isfinite(value):
                return float(value if self.metric(key).lower_is_better else -value)
        return math.nan


_TASKS: dict[str, TaskMetrics] = {}


def register_task_metrics(task: str, metrics: Sequence[Metric], objective: Sequence[str]) -> TaskMetrics:
    """Declare the metrics of ``task`` (once; a second declaration of the same task is an error)."""
    if task in _TASKS:
        raise ValueError(f"the metrics of task {task!r} are already declared")
    _TASKS[task] = TaskMetrics(task, tuple(metrics), tuple(objective))
    return _TASKS[task]


def check_metric_selection(selection: object) -> str:
    """``selection`` if it is one of :data:`METRIC_SELECTIONS`, else a ValueError naming the choices."""
    if selection not in METRIC_SELECTIONS:
        raise ValueError(
            f"metrics={selection}: expected {' or '.join(METRIC_SELECTIONS)} (which metrics tables and JSON show)"
        )
    return str(selection)


def task_metrics(task: str) -> TaskMetrics:
    """The declared metrics of ``task``."""
    if task not in _TASKS:
        raise KeyError(f"no metrics declared for task {task!r}; declared: {sorted(_TASKS)}")
    return _TASKS[task]
