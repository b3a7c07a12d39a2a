"""Experiment trackers (W&B, MLflow): record a run's config, tags and checkpoints, and find runs again.

A tracker run is published as a folder like a local run (``config.yaml``, ``checkpoints/*.ckpt``), so a
run found through a tracker is validated exactly like a local one (see :func:`tinyflow.app.runs.find_run`).
"""

from tinyflow.app.tracking.publish import describe_loggers, finish_trackers, publish_run, record_run_start

__all__ = ["describe_loggers", "finish_trackers", "publish_run", "record_run_start"]
