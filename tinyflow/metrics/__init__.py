"""Evaluation metrics, declared once in the registry (flow errors against ground truth, GT-free focus ratios)."""

from tinyflow.metrics.flow import FLOW_METRICS
from tinyflow.metrics.registry import Metric, TaskMetrics, register_task_metrics, task_metrics

__all__ = ["FLOW_METRICS", "Metric", "TaskMetrics", "register_task_metrics", "task_metrics"]
