"""Visualisation: flow colour wheel, event images, Rerun sinks, entity logging and blueprints.

:mod:`tinyflow.viz.colors` and :mod:`tinyflow.viz.images` need only numpy; the Rerun modules
(:mod:`~tinyflow.viz.sink`, :mod:`~tinyflow.viz.entities`, :mod:`~tinyflow.viz.blueprint`) import
``rerun-sdk`` (the ``viz`` extra) and are imported only by whoever visualises.
"""

from tinyflow.viz.colors import colour_wheel_legend, depth_to_rgb, events_to_rgb, flow_to_rgb, scalar_to_rgb
from tinyflow.viz.images import event_counts, sparse_arrows

__all__ = [
    "colour_wheel_legend",
    "depth_to_rgb",
    "event_counts",
    "events_to_rgb",
    "flow_to_rgb",
    "scalar_to_rgb",
    "sparse_arrows",
]
