"""What a window carries besides its input: ground-truth targets, declared per dataset.

A :class:`WindowTarget` loads its arrays for a window from the recording, follows the episode's crop
and flow-aware augmentation (:class:`EpisodeView`) together with the events, and gives the arrays of a
window that has none (a recording without that GT, or an inactive padding window). The dataset adds
the keys of every declared target to its items; a task states the target names it needs
(:meth:`~tinyflow.data.datamodule.EventDataModule.require_targets`).

Targets: :class:`FlowTarget` (``flow``) and :class:`DepthTarget` (``depth``); :data:`TARGETS` maps a
name to its class, for configs (:func:`build_targets`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np

from tinyflow.events.core import Events
from tinyflow.events.transforms import WindowSample, apply_transforms, crop
from tinyflow.events.windows import Window
from tinyflow.io.recording import Recording

if TYPE_CHECKING:
    from tinyflow.data.dataset import Windowing

Arrays = dict[str, np.ndarray | bool]
T = TypeVar("T")


@dataclass(frozen=True)
class EpisodeView:
    """The crop and flow-aware transforms drawn for one episode, applied alike to events and targets.

    Attributes:
        crop: ``(top, left, height, width)`` in recording pixels, or None for the whole frame.
        transforms: names of :mod:`tinyflow.events.transforms` transforms (``flip_x``, ``flip_y``,
            ``polarity``, ``time_reversal``), applied in order after the crop.
    """

    crop: tuple[int, int, int, int] | None = None
    transforms: tuple[str, ...] = ()

    def __call__(self, sample: WindowSample) -> WindowSample:
        """The sample cropped, then transformed."""
        if self.crop is not None:
            sample = crop(sample, *self.crop)
        return apply_transforms(sample, self.transforms)


class WindowTarget(abc.ABC, Generic[T]):
    """One kind of ground truth a window carries; subclasses are frozen dataclasses.

    ``T`` is the target's own data of a window between :meth:`load` and :meth:`arrays`.
    """

    name: ClassVar[str]

    def bind(self, windowing: Windowing) -> WindowTarget:
        """This target for a dataset cut into windows by ``windowing`` (fills what it derives from it)."""
        return self

    @abc.abstractmethod
    def load(self, recording: Recording, window: Window) -> T | None:
        """The window's data at the recording's sensor size, or None where the recording has none."""

    @abc.abstractmethod
    def view(self, data: T, view: EpisodeView) -> T:
        """The data under the episode's crop and augmentation, consistent with the events."""

    @abc.abstractmethod
    def arrays(self, data: T) -> Arrays:
        """The item entries of a window with data (same keys, shapes and dtypes as :meth:`absent`)."""

    @abc.abstractmethod
    def absent(self, sensor_size: tuple[int, int]) -> Arrays:
        """The item entries of a window without data, on a ``(height, width)`` grid."""


@dataclass(frozen=True)
class FlowTarget(WindowTarget[WindowSample]):
    """Ground-truth flow of the windows aligned to GT flow set ``flow_name`` (``Windowing(mode="gt")``).

    Item entries: ``flow_gt`` float32 [2, H, W], (x, y) pixels over the GT interval (zeros without GT),
    ``gt_valid`` bool [H, W], ``has_gt`` bool. Crop and augmentation are the flow-aware transforms of
    :mod:`tinyflow.events.transforms`, so warping the window's events by ``flow_gt`` stays as sharp. A GT
    interval split into several windows (:attr:`~tinyflow.data.dataset.Windowing.model_window_us`) carries
    its map on its last window only (``has_gt``), when all of the interval has been seen.

    Attributes:
        flow_name: the GT flow set; None = the windowing's ``flow_name`` (a window's ``gt_index``
            points into that set, so in ``gt`` mode the two must agree).
    """

    name: ClassVar[str] = "flow"
    flow_name: str | None = None

    def bind(self, windowing: Windowing) -> FlowTarget:
        if self.flow_name is None:
            return replace(self, flow_name=windowing.flow_name)
        if windowing.mode == "gt" and self.flow_name != windowing.flow_name:
            raise ValueError(
                f"FlowTarget(flow_name={self.flow_name!r}) reads the maps that the windows are aligned to, "
                f"but the windowing aligns them to GT flow {windowing.flow_name!r}; leave the target's "
                "flow_name unset to follow the windowing"
            )
        return self

    def load(self, recording: Recording, window: Window) -> WindowSample | None:
        if not window.ends_gt_interval:
            return None
        if self.flow_name is None:
            raise ValueError("FlowTarget.flow_name is unset: bind the target to a windowing first")
        flow, valid = recording.flow_map(self.flow_name, window.gt_index)
        if valid is None:
            valid = np.ones(recording.sensor_size, bool)
        return WindowSample(
            Events.empty(), recording.sensor_size, window.t_start_us, window.t_end_us, flow, valid
        )

    def view(self, data: WindowSample, view: EpisodeView) -> WindowSample:
        return view(data)

    def arrays(self, data: WindowSample) -> Arrays:
        return {
            "flow_gt": np.ascontiguousarray(data.flow, np.float32),
            "gt_valid": np.ascontiguousarray(data.valid),
            "has_gt": True,
        }

    def absent(self, sensor_size: tuple[int, int]) -> Arrays:
        return {
            "flow_gt": np.zeros((2, *sensor_size), np.float32),
            "gt_valid": np.zeros(sensor_size, bool),
            "has_gt": False,
        }


_DEPTH_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "flip_x": lambda depth: depth[:, ::-1],
    "flip_y": lambda depth: depth[::-1, :],
    "polarity": lambda depth: depth,
}


@dataclass(frozen=True)
class DepthTarget(WindowTarget[np.ndarray]):
    """Ground-truth depth at the GT timestamp nearest the window end (``/depth``, :meth:`Recording.depth`).

    Item entries: ``depth_gt`` float32 [H, W] metres, NaN where invalid (all NaN without GT), and
    ``has_depth`` bool. A map without a single valid pixel is no ground truth (``has_depth`` False): a
    protocol view marks the maps that are not among its labels so (e.g. MVSEC's held-out validation
    maps). Crop and flips move the map with the events; time reversal is refused (the map would belong
    to the other end of the window).

    Attributes:
        max_offset_us: a window whose nearest depth map is further than this from its end has none;
            None = any distance.
    """

    name: ClassVar[str] = "depth"
    max_offset_us: int | None = None

    def load(self, recording: Recording, window: Window) -> np.ndarray | None:
        t_us = recording.depth_t_us()
        if t_us is None or len(t_us) == 0:
            return None
        offsets = np.abs(np.asarray(t_us, np.int64) - window.t_end_us)
        k = int(np.argmin(offsets))
        if self.max_offset_us is not None and offsets[k] > self.max_offset_us:
            return None
        depth = recording.depth_map(k)
        return depth if np.isfinite(depth).any() else None

    def view(self, data: np.ndarray, view: EpisodeView) -> np.ndarray:
        if view.crop is not None:
            top, left, height, width = view.crop
            data = data[top : top + height, left : left + width]
        for name in view.transforms:
            if name not in _DEPTH_TRANSFORMS:
                raise ValueError(
                    f"DepthTarget: augmentation '{name}' is not supported (supported: "
                    f"{sorted(_DEPTH_TRANSFORMS)}); set its probability to 0 in the data config"
                )
            data = _DEPTH_TRANSFORMS[name](data)
        return data

    def arrays(self, data: np.ndarray) -> Arrays:
        return {"depth_gt": np.ascontiguousarray(data, np.float32), "has_depth": True}

    def absent(self, sensor_size: tuple[int, int]) -> Arrays:
        return {"depth_gt": np.full(sensor_size, np.nan, np.float32), "has_depth": False}


TARGETS: dict[str, type[WindowTarget]] = {"flow": FlowTarget, "depth": DepthTarget}

TargetSpec = WindowTarget | str | Mapping[str, Any]
TargetsConfig = Sequence[TargetSpec] | Mapping[str, Mapping[str, Any] | WindowTarget | None]


def build_targets(config: TargetsConfig | None) -> tuple[WindowTarget, ...]:
    """Targets from a data config's ``targets``; None = ``(FlowTarget(),)``.

    Accepted: a list whose entries are target names (``[flow, depth]``), targets, or ``_target_``
    configs; or a mapping name -> options of that target (``{flow: {flow_name: dt4}, depth: null}``).
    """
    if config is None:
        return (FlowTarget(),)
    if isinstance(config, str):
        raise ValueError(f"data targets: expected a list or a mapping of targets, got the string {config!r}")
    if isinstance(config, Mapping):
        targets = tuple(_from_name(name, options) for name, options in config.items())
    else:
        targets = tuple(_from_entry(entry) for entry in config)
    names = [target.name for target in targets]
    if len(set(names)) < len(names):
        raise ValueError(f"data targets: each target may appear once, got {names}")
    return targets


def _from_name(name: str, options: Mapping[str, Any] | WindowTarget | None) -> WindowTarget:
    if name not in TARGETS:
        raise ValueError(f"data targets: unknown target '{name}'; expected one of {sorted(TARGETS)}")
    if isinstance(options, WindowTarget):
        if options.name != name:
            raise ValueError(f"data targets: entry '{name}' holds a '{options.name}' target")
        return options
    return TARGETS[name](**dict(options or {}))


def _from_entry(entry: TargetSpec) -> WindowTarget:
    if isinstance(entry, WindowTarget):
        return entry
    if isinstance(entry, str):
        return _from_name(entry, None)
    if isinstance(entry, Mapping) and "_target_" in entry:
        from hydra.utils import instantiate  # only for configs instantiated non-recursively

        target = instantiate(entry)
        if not isinstance(target, WindowTarget):
            raise ValueError(f"data targets: {entry['_target_']} is not a WindowTarget")
        return target
    raise ValueError(
        f"data targets: expected a target name (one of {sorted(TARGETS)}), a WindowTarget or a "
        f"_target_ config; got {entry!r}"
    )
