"""Config values checked when a run starts, before anything is built or written.

Each rule names a key, the type and range it takes, and what the key means; a value that breaks a rule
raises one :class:`ConfigError` naming the key, the value and what was expected. Keys that a config does
not have are skipped (a data config without ``crop_size``, a model without neurons).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tinyflow.data.targets import build_targets
from tinyflow.io.recording import LEFT, RIGHT
from tinyflow.metrics.hardware import HardwareProfile
from tinyflow.metrics.registry import METRIC_SELECTIONS
from tinyflow.quant.profiles import WEIGHT_GRANULARITIES


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and what was expected."""


@dataclass(frozen=True)
class Rule:
    """``key`` must be a ``kind`` (``int``, ``float``: any real number, ``bool``, ``str``) within the bounds.

    Attributes:
        minimum, maximum: inclusive bounds, or None.
        above: exclusive lower bound, or None.
        nullable: None is allowed.
        special: further allowed values outside the bounds (e.g. -1 for "no limit").
        meaning: what the value is, in the message (``optimiser steps``, ``learning rate``).
    """

    key: str
    kind: type
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    nullable: bool = False
    special: tuple[object, ...] = ()

    def expected(self) -> str:
        words = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.kind]
        bounds = []
        if self.above is not None:
            bounds.append(f"> {self.above:g}")
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        text = f"{words} ({self.meaning})" + (f" {' and '.join(bounds)}" if bounds else "")
        alternatives = [repr(v) for v in self.special] + (["null"] if self.nullable else [])
        return text + (f", or {' or '.join(alternatives)}" if alternatives else "")

    def violated_by(self, value: object) -> bool:
        if value is None:
            return not self.nullable
        if value in self.special and type(value) is not bool:
            return False
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                return True
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return True
        elif not isinstance(value, self.kind):
            return True
        if self.kind in (int, float):
            if self.above is not None and not value > self.above:
                return True
            if self.minimum is not None and value < self.minimum:
                return True
            if self.maximum is not None and value > self.maximum:
                return True
        return False


STEPS = "optimiser steps"
RULES: tuple[Rule, ...] = (
    Rule("seed", int, "random seed", minimum=0),
    Rule("trainer.max_steps", int, STEPS, minimum=1, special=(-1,)),
    Rule("trainer.max_epochs", int, "epochs", minimum=1, special=(-1,), nullable=True),
    Rule("trainer.check_val_every_n_epoch", int, "epochs between validations", minimum=1, nullable=True),
    Rule("trainer.log_every_n_steps", int, STEPS, minimum=1),
    Rule("trainer.devices", int, "devices per node", minimum=1, special=("auto", -1)),
    Rule("trainer.num_nodes", int, "nodes", minimum=1),
    Rule("optimizer.lr", float, "learning rate", above=0),
    Rule("optimizer.weight_decay", float, "weight decay", minimum=0),
    Rule(
        "scheduler.T_max",
        int,
        "optimiser steps to decay over; it follows trainer.max_steps: set trainer.max_steps, or scheduler=constant",
        minimum=1,
    ),
    Rule("task.gradient_clip_val", float, "max gradient norm", above=0, nullable=True),
    Rule("data.batch_size", int, "parallel streams per batch", minimum=1),
    Rule("data.seq_len", int, "windows per stream and batch", minimum=1),
    Rule("data.val_batch_size", int, "parallel validation streams", minimum=1),
    Rule("data.num_bins", int, "input channels of the voxel grid", minimum=1),
    Rule("data.num_workers", int, "loader processes", minimum=0),
    Rule("data.num_train", int, "training recordings (0: a validation-only set)", minimum=0),
    Rule("data.num_val", int, "validation recordings", minimum=1),
    Rule("data.synth.height", int, "pixels", minimum=8),
    Rule("data.synth.width", int, "pixels", minimum=8),
    Rule("data.synth.duration_us", int, "microseconds", minimum=1),
    Rule("data.train_windowing.events_per_window", int, "events", minimum=1),
    Rule("data.train_windowing.duration_us", int, "microseconds", minimum=1),
    Rule("data.val_windowing.events_per_window", int, "events", minimum=1),
    Rule("data.val_windowing.duration_us", int, "microseconds", minimum=1),
    Rule(
        "data.val_windowing.model_window_us", int, "microseconds per network window", minimum=1, nullable=True
    ),
    Rule("model.base_num_channels", int, "channels", minimum=1),
    Rule("model.kernel_size", int, "pixels", minimum=1),
    Rule("model.flow_scaling", float, "pixels per window at tanh = 1", above=0),
    Rule("loss.smoothness_weight", float, "weight", minimum=0),
    Rule("regularizer.weight", float, "weight of the firing-rate penalty", minimum=0),
    Rule("quant.calibration_batches", int, "training batches that set the activation scales", minimum=1),
    Rule("quant.trains", bool, "train after calibration: QAT, or not: PTQ"),
    Rule("quant.membrane_bits", int, "bits of the membrane grid", minimum=2, maximum=16, nullable=True),
    Rule("quant.membrane_range", float, "membrane potential at the grid's ends", above=0),
)
ENCODINGS = ("counts", "voxel")


def check_config(cfg: DictConfig, rules: Sequence[Rule] = RULES) -> None:
    """Raise :class:`ConfigError` for the first value that breaks a rule, or an encoding or crop that
    cannot work; values that cannot be resolved (a broken interpolation) are errors too."""
    for rule in rules:
        value = _value(cfg, rule.key)
        if value is not _MISSING and rule.violated_by(value):
            raise ConfigError(f"{rule.key}={value!r} ({type(value).__name__}): expected {rule.expected()}")
    encoding = _value(cfg, "data.encoding")
    if encoding is not _MISSING and encoding not in ENCODINGS:
        raise ConfigError(f"data.encoding={encoding!r}: expected one of {', '.join(ENCODINGS)}")
    crop = _value(cfg, "data.crop_size")
    if crop is not _MISSING and crop is not None and not _is_size(crop):
        raise ConfigError(
            f"data.crop_size={crop!r}: expected [height, width] in pixels (integers >= 1) or null"
        )
    _check_cameras(cfg)
    _check_task_targets(cfg)
    _check_model_cameras(cfg)
    selection = _value(cfg, "metrics")
    if selection not in (_MISSING, None) and selection not in METRIC_SELECTIONS:
        raise ConfigError(
            f"metrics={selection!r}: expected {' or '.join(METRIC_SELECTIONS)} (what tables and JSON show)"
        )
    kernel = _value(cfg, "model.kernel_size")
    if isinstance(kernel, int) and kernel % 2 == 0:
        raise ConfigError(f"model.kernel_size={kernel}: expected an odd number of pixels (same-size padding)")
    hardware_profile(cfg)
    check_quant(cfg)


def hardware_profile(cfg: DictConfig) -> HardwareProfile | None:
    """The config's ``hardware`` profile, instantiated (None without one); :class:`ConfigError` naming the
    profile and the broken value where it cannot be built."""
    if cfg.get("hardware") is None:
        return None
    try:
        profile = instantiate(cfg.hardware)
    except Exception as error:  # Hydra wraps what the profile's dataclasses raised
        cause = error.__cause__ or error
        name = OmegaConf.select(cfg, "hardware.name", default="?")
        raise ConfigError(f"hardware={name}: {cause}".splitlines()[0]) from None
    if not isinstance(profile, HardwareProfile):
        raise ConfigError(f"hardware: {cfg.hardware.get('_target_')} is not a HardwareProfile")
    return profile


def check_quant(cfg: DictConfig) -> None:
    """The ``quant`` group's combinations: brevitas installed, a known weight granularity, a float run to
    calibrate (``init_from``) and one process for PTQ, spiking layers for a membrane grid."""
    if _value(cfg, "quant.calibration_batches") in (_MISSING, 0):  # quant=none, or a run without the group
        return
    if importlib.util.find_spec("brevitas") is None:
        raise ConfigError("quant: INT8 quantisation needs brevitas: pip install -e '.[export]'")
    weights = _value(cfg, "quant.weights")
    if weights is not _MISSING and weights not in WEIGHT_GRANULARITIES:
        granularities = " or ".join(WEIGHT_GRANULARITIES)
        raise ConfigError(
            f"quant.weights={weights!r}: expected {granularities} (one weight scale per conv or channel)"
        )
    if _value(cfg, "quant.trains") is False:
        if _value(cfg, "init_from") in (_MISSING, None):
            raise ConfigError(
                "quant.trains=false (post-training quantisation) calibrates a trained float network: "
                "give init_from=<float run id>"
            )
        processes = [_value(cfg, key) for key in ("trainer.devices", "trainer.num_nodes")]
        if any(isinstance(n, int) and n > 1 for n in processes):
            raise ConfigError(
                f"quant.trains=false (post-training quantisation) runs in one process: trainer.devices="
                f"{processes[0]}, trainer.num_nodes={processes[1]}; use trainer=default"
            )
    bits = _value(cfg, "quant.membrane_bits")
    if bits not in (_MISSING, None) and _value(cfg, "model.neuron") in (_MISSING, None):
        raise ConfigError(
            f"quant.membrane_bits={bits}: model {_value(cfg, 'model._target_')} is an ANN without membrane "
            "potentials: set quant.membrane_bits=null or pick a spiking model"
        )


def check_resumable(cfg: DictConfig) -> None:
    """A run that did not train (post-training quantisation, ``quant.trains=false``) has nothing to resume."""
    if _value(cfg, "quant.trains") is False:
        raise ConfigError(
            f"resume={cfg.get('run_id')}: that run is a post-training quantisation (quant.trains=false): it "
            "calibrated and validated without training, so there is no training to continue; start a new run"
        )


_MISSING = object()
CAMERA_CHOICES = ([LEFT], [LEFT, RIGHT])


def _check_cameras(cfg: DictConfig) -> None:
    """``data.cameras`` is [left] or [left, right]; a stereo pair takes no horizontal flips."""
    cameras = _value(cfg, "data.cameras")
    if cameras is _MISSING:
        return
    if cameras not in CAMERA_CHOICES:
        raise ConfigError(
            f"data.cameras={cameras!r}: expected [{LEFT}] or [{LEFT}, {RIGHT}] (the cameras whose events form "
            "the input, the left camera first: it carries the ground truth)"
        )
    flip = _value(cfg, "data.augmentation.p_flip_x")
    if len(cameras) > 1 and isinstance(flip, int | float) and flip > 0:
        raise ConfigError(
            f"data.augmentation.p_flip_x={flip!r}: expected 0 with data.cameras={cameras}: a horizontal flip "
            "mirrors the left image into a right camera's view (the disparity changes sign)"
        )


def _check_task_targets(cfg: DictConfig) -> None:
    """The data's windows carry every target the task learns from (``task=depth`` needs ``depth``)."""
    task = _value(cfg, "task._target_")
    if task is _MISSING:
        return
    required = get_class(task).required_targets
    targets = _value(cfg, "data.targets")
    try:
        names = [target.name for target in build_targets(None if targets is _MISSING else targets)]
    except ValueError as error:
        raise ConfigError(f"data.targets={targets!r}: {error}") from None
    missing = [name for name in required if name not in names]
    if missing:
        raise ConfigError(
            f"data.targets={names}: the task ({task.rsplit('.', 1)[-1]}) learns from {missing}, which the data "
            f"does not carry: add it (data.targets=[{','.join([*names, *missing])}]), or use data whose "
            "recordings have it (task=depth: data=synthetic_stereo, data=mvsec_depth)"
        )


def _check_model_cameras(cfg: DictConfig) -> None:
    """A model with ``num_cameras`` takes the input of as many cameras as ``data.cameras`` lists."""
    model_cameras = _value(cfg, "model.num_cameras")
    if model_cameras is _MISSING:
        return
    cameras = _value(cfg, "data.cameras")
    cameras = [LEFT] if cameras is _MISSING else cameras
    if model_cameras != len(cameras):
        raise ConfigError(
            f"model.num_cameras={model_cameras!r}, but data.cameras={cameras} gives the input of "
            f"{len(cameras)} camera{'s' * (len(cameras) != 1)}: expected the same number (stereo: "
            f"model=stereospike with data.cameras=[{LEFT},{RIGHT}]; one camera: model=stereospike_mono with "
            f"data.cameras=[{LEFT}])"
        )


def _value(cfg: DictConfig, key: str) -> object:
    """The resolved value at ``key`` (containers as plain lists), or ``_MISSING`` when there is none."""
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"{key}: {error}".splitlines()[0]) from None
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _is_size(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    )
