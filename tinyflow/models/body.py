"""A network body: named layers run in order, one recurrent state per layer, skips that add or concatenate.

A body is described by a sequence of :class:`LayerSpec` (name, output channels, a builder, the
layer's stride, an optional upsampling of its input, an optional :class:`Skip`). The body works out
each layer's input channels and resolution, so strided encoders, upsampling decoders, U-Net skips
(EV-FlowNet, StereoSpike) and residual blocks of several layers (a skip of the block's first layer's
input) are specs like any other; every skip is checked when the body is built. A branch layer
(``branch=True``) reads the data path without changing it: a side output such as StereoSpike's
prediction at one decoder scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerState = Any  # None, a tensor, or a tuple of tensors, as the layer defines
NetworkState = list[LayerState]

SKIP_MODES = ("add", "concat")
SKIP_POINTS = ("output", "input")
SKIP_TAPS = ("output", "input")
UPSAMPLE_MODES = ("bilinear", "nearest")


class LayerBuilder(Protocol):
    """Makes one layer with the interface ``layer(x, state) -> (y, new_state)`` (``state=None``: zeros)."""

    def __call__(self, in_channels: int, out_channels: int, *, stride: int) -> nn.Module: ...


@dataclass(frozen=True)
class Skip:
    """Features of an earlier layer merged into a later layer's data path.

    Args:
        source: name of an earlier layer.
        mode: ``"add"`` (the source has the same channels) or ``"concat"`` (channels add up; the
            target's features first, then the source's).
        into: ``"output"``: merged with the target layer's output, the result feeds the next layer (or
            the head); the source must have the target's output resolution. ``"input"``: merged with the
            features the target receives (before its upsampling, if any), as a U-Net decoder takes
            ``cat(x, encoder skip)``; the source must have that resolution.
        of: ``"output"``: the source layer's own output (its ``activity``). ``"input"``: the features the
            source layer received (after its own input skip and upsampling): with ``into="output"`` and
            ``mode="add"`` on the last layer of a block that starts at the source, a residual block
            ``y = block(x) + x`` (event_flow's spiking residual blocks add ``x`` to the last spikes).
    """

    source: str
    mode: Literal["add", "concat"] = "add"
    into: Literal["output", "input"] = "output"
    of: Literal["output", "input"] = "output"

    def __post_init__(self) -> None:
        if self.mode not in SKIP_MODES:
            raise ValueError(f"Skip from {self.source!r}: mode={self.mode!r}: expected one of {SKIP_MODES}")
        if self.into not in SKIP_POINTS:
            raise ValueError(f"Skip from {self.source!r}: into={self.into!r}: expected one of {SKIP_POINTS}")
        if self.of not in SKIP_TAPS:
            raise ValueError(f"Skip from {self.source!r}: of={self.of!r}: expected one of {SKIP_TAPS}")

    @property
    def described(self) -> str:
        """The source as error messages name it: ``'E1'``, or ``'R1a' (its input)``."""
        return repr(self.source) + (" (its input)" if self.of == "input" else "")


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a body.

    Args:
        name: the layer's name (its ``activity`` key and state-dict prefix), unique in the body.
        out_channels: channels of the layer's output.
        build: ``build(in_channels, out_channels, stride=stride)`` makes the layer.
        stride: the layer's downsampling factor (passed to ``build``): its output has ``1 / stride`` of
            the resolution of its input.
        upsample: the body upsamples the layer's input by this factor first (a decoder layer).
        upsample_mode: ``"bilinear"`` (as EV-FlowNet) or ``"nearest"`` (keeps spikes binary).
        skip: an optional skip into this layer (one per layer).
        branch: a side output: the layer reads the features (upsampled by ``upsample``), its output is
            only its ``activity`` entry, and the next layer receives the features this one received
            (before its upsampling). A branch takes no skip.
    """

    name: str
    out_channels: int
    build: LayerBuilder
    stride: int = 1
    upsample: int = 1
    upsample_mode: str = "bilinear"
    skip: Skip | None = None
    branch: bool = False


def _resolution(scale: Fraction) -> str:
    return "the input resolution" if scale == 1 else f"{scale} of the input resolution"


class RecurrentBody(nn.ModuleDict):
    """The layers of a network by name, in execution order, with their skips and upsampling.

    ``forward(x, state) -> (features, activity, new_state)``: ``state`` has one entry per layer in
    ``layer_names`` order (``None`` for a stateless layer, and ``state=None`` means all zeros);
    ``activity`` maps each layer name to that layer's own output (spikes for spiking layers, before any
    skip is merged); ``features`` are the last layer's output after its skip, for the head.

    Args:
        in_channels: channels of the input.
        layers: the layer specs, in execution order.

    Attributes:
        out_channels: channels of ``features``.
        out_scale: resolution of ``features`` relative to the input (a ``Fraction``).
        skips: target layer name -> :class:`Skip`.
        channels: layer name -> channels of the layer's own output.
        scales: layer name -> resolution of the layer's own output relative to the input (a ``Fraction``).
        strides: name -> stride of every layer with a stride above 1, in execution order.
        branches: names of the branch layers (side outputs), in execution order.
        size_divisor: the input's height and width must be multiples of this (every layer's input and
            output then has integer size): the least common multiple of the scales' denominators.
    """

    def __init__(self, in_channels: int, layers: Sequence[LayerSpec]) -> None:
        super().__init__()
        if not layers:
            raise ValueError("RecurrentBody: expected at least one layer")
        self.in_channels = in_channels
        self.skips: dict[str, Skip] = {}
        self.upsampling: dict[str, tuple[int, str]] = {}
        self.strides: dict[str, int] = {}
        self.branches: tuple[str, ...] = tuple(spec.name for spec in layers if spec.branch)
        # (channels, resolution / input resolution) of each layer's own output and of what it received
        outputs: dict[str, tuple[int, Fraction]] = {}
        inputs: dict[str, tuple[int, Fraction]] = {}
        features_channels, features_scale = in_channels, Fraction(1)
        for spec in layers:
            self._check_spec(spec, outputs)
            skip = spec.skip
            if skip is not None and skip.into == "input":
                features_channels = self._merged_channels(
                    spec.name, skip, features_channels, features_scale, outputs, inputs
                )
            if spec.upsample != 1:
                self.upsampling[spec.name] = (spec.upsample, spec.upsample_mode)
            if spec.stride != 1:
                self.strides[spec.name] = spec.stride
            layer_scale = features_scale * spec.upsample
            inputs[spec.name] = (features_channels, layer_scale)
            self[spec.name] = spec.build(features_channels, spec.out_channels, stride=spec.stride)
            outputs[spec.name] = (spec.out_channels, layer_scale / spec.stride)
            if spec.branch:
                continue
            features_channels, features_scale = outputs[spec.name]
            if skip is not None and skip.into == "output":
                features_channels = self._merged_channels(
                    spec.name, skip, features_channels, features_scale, outputs, inputs
                )
            if skip is not None:
                self.skips[spec.name] = skip
        self.out_channels = features_channels
        self.out_scale = features_scale
        self.channels = {name: channels for name, (channels, _) in outputs.items()}
        self.scales = {name: scale for name, (_, scale) in outputs.items()}
        every_scale = [scale for _, scale in (*outputs.values(), *inputs.values())]
        self.size_divisor = math.lcm(*(scale.denominator for scale in every_scale))
        self._input_taps = {skip.source for skip in self.skips.values() if skip.of == "input"}

    @staticmethod
    def _check_spec(spec: LayerSpec, earlier: dict[str, tuple[int, Fraction]]) -> None:
        if spec.name in earlier:
            raise ValueError(f"RecurrentBody: layer name {spec.name!r} used twice")
        if spec.out_channels < 1:
            raise ValueError(f"layer {spec.name!r}: out_channels={spec.out_channels!r}: expected >= 1")
        for key in ("stride", "upsample"):
            value = getattr(spec, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"layer {spec.name!r}: {key}={value!r}: expected an integer >= 1")
        if spec.upsample_mode not in UPSAMPLE_MODES:
            raise ValueError(
                f"layer {spec.name!r}: upsample_mode={spec.upsample_mode!r}: expected one of {UPSAMPLE_MODES}"
            )
        if spec.branch and spec.skip is not None:
            raise ValueError(
                f"layer {spec.name!r}: a branch layer takes no skip (skip {spec.skip.described})"
            )
        if spec.skip is not None and spec.skip.source not in earlier:
            raise ValueError(
                f"skip {spec.skip.source!r} -> {spec.name!r}: the source must be an earlier layer, "
                f"one of {list(earlier)}"
            )

    @staticmethod
    def _merged_channels(
        target: str,
        skip: Skip,
        features_channels: int,
        features_scale: Fraction,
        outputs: dict[str, tuple[int, Fraction]],
        inputs: dict[str, tuple[int, Fraction]],
    ) -> int:
        """Channels after merging ``skip`` into features of ``features_channels`` at ``features_scale``."""
        where = f"skip {skip.described} -> {target!r} ({skip.mode} into the {skip.into})"
        source_channels, source_scale = (outputs if skip.of == "output" else inputs)[skip.source]
        if source_scale != features_scale:
            raise ValueError(
                f"{where}: {skip.described} is at {_resolution(source_scale)}, the target's "
                f"{skip.into} at {_resolution(features_scale)}: expected the same resolution"
            )
        if skip.mode == "concat":
            return features_channels + source_channels
        if source_channels != features_channels:
            raise ValueError(
                f"{where}: {skip.described} has {source_channels} channels, the target's {skip.into} "
                f"{features_channels}: 'add' expects the same channels ('concat' does not)"
            )
        return features_channels

    @property
    def layer_names(self) -> list[str]:
        return list(self.keys())

    @staticmethod
    def _merge(target: str, skip: Skip, features: Tensor, source: Tensor) -> Tensor:
        if features.shape[-2:] != source.shape[-2:]:
            raise ValueError(
                f"skip {skip.described} -> {target!r}: source {tuple(source.shape[-2:])}, target "
                f"{tuple(features.shape[-2:])}: expected the same height and width (are the input's "
                f"height and width divisible by the body's total stride?)"
            )
        return features + source if skip.mode == "add" else torch.cat([features, source], dim=1)

    def forward(
        self, x: Tensor, state: NetworkState | None = None
    ) -> tuple[Tensor, dict[str, Tensor], NetworkState]:
        """Run every layer once on ``x [B, in_channels, H, W]``; see the class docstring."""
        if state is None:
            state = [None] * len(self)
        activity: dict[str, Tensor] = {}
        received: dict[str, Tensor] = {}  # inputs of the layers that are the sources of input taps
        new_state: NetworkState = []
        features = x

        def source(skip: Skip) -> Tensor:
            return (activity if skip.of == "output" else received)[skip.source]

        for (name, layer), layer_state in zip(self.items(), state, strict=True):
            skip = self.skips.get(name)
            if skip is not None and skip.into == "input":
                features = self._merge(name, skip, features, source(skip))
            layer_input = features
            if name in self.upsampling:
                factor, mode = self.upsampling[name]
                align = False if mode == "bilinear" else None
                layer_input = F.interpolate(features, scale_factor=factor, mode=mode, align_corners=align)
            if name in self._input_taps:
                received[name] = layer_input
            output, layer_state = layer(layer_input, layer_state)
            activity[name] = output
            new_state.append(layer_state)
            if name in self.branches:
                continue
            features = output
            if skip is not None and skip.into == "output":
                features = self._merge(name, skip, features, source(skip))
        return features, activity, new_state


__all__ = ["LayerBuilder", "LayerSpec", "LayerState", "NetworkState", "RecurrentBody", "Skip"]
