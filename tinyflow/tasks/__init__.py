"""Tasks: the LightningModules. :class:`RecurrentTask` holds what every sequential task shares; a task
adds its loss, its targets and its evaluation (``task=flow``: :class:`FlowTask`; ``task=depth``:
:class:`DepthTask`)."""

from tinyflow.tasks.depth import DepthTask
from tinyflow.tasks.depth_loss import DepthRepresentation, DepthSIGradLoss
from tinyflow.tasks.flow import FlowTask
from tinyflow.tasks.recurrent import ObservedWindow, RecurrentTask, TaskNetworkError

__all__ = [
    "DepthRepresentation",
    "DepthSIGradLoss",
    "DepthTask",
    "FlowTask",
    "ObservedWindow",
    "RecurrentTask",
    "TaskNetworkError",
]
