"""Tasks: the LightningModules. :class:`RecurrentTask` holds what every sequential task shares; a task
adds its loss, its targets and its evaluation (``task=flow``: :class:`FlowTask`)."""

from tinyflow.tasks.flow import FlowTask
from tinyflow.tasks.recurrent import ObservedWindow, RecurrentTask

__all__ = ["FlowTask", "ObservedWindow", "RecurrentTask"]
