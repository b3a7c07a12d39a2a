"""Evaluation metrics, declared once in the registry: flow (errors against ground truth, GT-free focus ratios)
and depth (errors against ground truth)."""

from tinyflow.metrics.depth import DEPTH_METRICS
from tinyflow.metrics.flow import FLOW_METRICS
from tinyflow.metrics.registry import (
    METRIC_SELECTIONS,
    Metric,
    TaskMetrics,
    check_metric_selection,
    register_task_metrics,
    task_metrics,
)

__all__ = [
    "DEPTH_METRICS",
    "FLOW_METRICS",
    "METRIC_SELECTIONS",
    "Metric",
    "TaskMetrics",
    "check_metric_selection",
    "register_task_metrics",
    "task_metrics",
]
