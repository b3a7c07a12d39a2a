"""Lightning callbacks: live Rerun visualisation (:mod:`~tinyflow.callbacks.rerun`, needs ``rerun-sdk``)
and images for W&B / MLflow (:mod:`~tinyflow.callbacks.media`).

Each module is imported only where a config names it, so a run without visualisers loads neither.
"""
