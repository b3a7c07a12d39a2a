"""Lightning callbacks: live Rerun visualisation (:mod:`~tinyflow.callbacks.rerun`, needs ``rerun-sdk``),
images for W&B / MLflow (:mod:`~tinyflow.callbacks.media`) and the export at the end of training
(:mod:`~tinyflow.callbacks.export`, whose formats need the ``export`` extra).

Each module is imported only where a config names it, so a run without visualisers loads neither.
"""
