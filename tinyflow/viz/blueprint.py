"""Rerun blueprints (viewer layouts) of the entity paths tinyflow logs.

Training / validation (:class:`tinyflow.callbacks.rerun.RerunCallback`), per stage ``train`` / ``val``::

    <stage>/events                ON/OFF image of the window's events (of the left camera)
    <stage>/flow, .../arrows      predicted flow (colour wheel) and sparse arrows
    <stage>/flow_gt, .../arrows   ground-truth flow (windows with GT)
    <stage>/flow_error            endpoint error map (windows with GT)
    <stage>/iwe/unwarped          events of the accumulation window at their own pixels (before warping)
    <stage>/iwe/t_start, t_end    images of warped events at the first / last reference time
    <stage>/loss, <stage>/aee     scalars (training loss per step, AEE per validation window)
    <stage>/depth, depth_gt       predicted and GT depth, one colour map (near light, far dark; depth task)
    <stage>/depth_error           |predicted - GT depth| in metres (windows with GT)
    <stage>/input/<camera>        each camera's share of the network input (sum of |channels|)
    <stage>/mde                   the MDE [cm] of each validation window with GT
    <stage>/firing_rate/<layer>   mean spikes per neuron per window of each spiking layer
    metrics/val/<metric>          validation means (AEE, RSAT, ...) per validation pass

Datasets (``show.py``): ``<recording>/events``, ``frames``, ``flow_gt``, ``depth``, ``event_rate``; stereo
recordings also ``<recording>/right/events`` and ``disparity`` (pixels, black where occluded).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import rerun.blueprint as rrb

FLOW_IMAGES = ("events", "flow", "flow_gt", "flow_error", "iwe/unwarped", "iwe/t_start", "iwe/t_end")
FLOW_SERIES = {"train": ("loss", "firing_rate"), "val": ("aee", "firing_rate")}
DEPTH_IMAGES = ("events", "input/left", "input/right", "depth", "depth_gt", "depth_error")
DEPTH_SERIES = {"train": ("loss", "firing_rate"), "val": ("mde", "firing_rate")}
DATASET_IMAGES = ("events", "frames", "flow_gt", "depth")
STEREO_IMAGES = ("right/events", "disparity")


def stage_blueprint(
    images: Sequence[str] = FLOW_IMAGES,
    series: Mapping[str, Sequence[str]] = FLOW_SERIES,
    grid_columns: int = 4,
    collapse_panels: bool = False,
) -> rrb.Blueprint:
    """One tab per stage (the keys of ``series``): a grid of ``images`` over its time series; one tab of
    validation metrics.

    Args:
        images: image entities under ``<stage>/`` (see the module docstring), in grid order.
        series: stage -> scalar entities under ``<stage>/``, one time-series view each.
        grid_columns: columns of the image grid.
        collapse_panels: hide the side panels (blueprint, selection, time).
    """
    tabs: list[rrb.Container | rrb.View] = []
    for stage, names in series.items():
        grid = rrb.Grid(
            *(rrb.Spatial2DView(origin=f"{stage}/{name}", name=f"{stage} {name}") for name in images),
            grid_columns=grid_columns,
        )
        plots = [rrb.TimeSeriesView(origin=f"{stage}/{name}", name=f"{stage} {name}") for name in names]
        tabs.append(
            rrb.Vertical(grid, rrb.Horizontal(*plots), row_shares=[3, 1], name=stage) if plots else grid
        )
    tabs.append(rrb.TimeSeriesView(origin="metrics", name="validation metrics"))
    return rrb.Blueprint(rrb.Tabs(*tabs), collapse_panels=collapse_panels)


def dataset_blueprint(
    recordings: Sequence[str], grid_columns: int = 2, stereo: Collection[str] = ()
) -> rrb.Blueprint:
    """One tab per recording: events, frames, GT flow and depth (and for the ``stereo`` recordings the right
    camera's events and the disparity), over its event rate."""
    tabs = []
    for name in recordings:
        images = DATASET_IMAGES + (STEREO_IMAGES if name in stereo else ())
        grid = rrb.Grid(
            *(rrb.Spatial2DView(origin=f"{name}/{image}", name=f"{name} {image}") for image in images),
            grid_columns=grid_columns,
        )
        rate = rrb.TimeSeriesView(origin=f"{name}/event_rate", name=f"{name} events [Mev/s]")
        tabs.append(rrb.Vertical(grid, rate, row_shares=[4, 1], name=name))
    return rrb.Blueprint(rrb.Tabs(*tabs))
