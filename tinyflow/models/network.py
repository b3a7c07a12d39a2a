"""A network = a body (:class:`~tinyflow.models.body.RecurrentBody`) + a head (:mod:`tinyflow.models.heads`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from tinyflow.models.body import NetworkState, RecurrentBody
from tinyflow.models.heads import DepthHead, FlowHead, PredictionHead


def event_presence_mask(x: Tensor) -> Tensor:
    """``[B, 1, H, W]`` mask (dtype of ``x``): 1 where any input channel is nonzero (at least one event)."""
    return (x != 0).any(dim=1, keepdim=True).to(x.dtype)


class RecurrentNetwork(nn.Module):
    """Pure recurrent network: ``forward(x, state) -> (out, new_state)``.

    The state is a list with one entry per body layer, in ``layer_names`` order (``None`` for stateless
    layers); ``state=None`` means all-zero state. ``out[head.output_key]`` is the head's prediction at the
    input resolution (``out["flow"]`` ``[B, 2, H, W]`` for a :class:`~tinyflow.models.heads.FlowHead`:
    the (x, y) displacement in pixels over the input window, channel 0 = x); ``out["activity"]`` maps each
    layer name to that layer's own output (spikes for spiking layers) for firing-rate statistics.

    The body is held as ``layers`` and the head as ``prediction``, so state-dict keys read
    ``layers.<layer name>.…`` and ``prediction.…`` (the keys of checkpoints from earlier runs).

    The input's height and width must be multiples of ``body.size_divisor`` (the product of the strides
    on the way down, 16 for EV-FlowNet's four stride-2 encoders): else one ``ValueError`` names the
    size, the divisor and the strided layers; with ``pad_input`` the network pads them instead.

    Args:
        body: the layers; it must end at ``1 / head.upsample`` of the input resolution (the input
            resolution for most heads) with ``head.in_channels`` channels.
        head: the prediction from the body's last features.
        mask_output: multiply the prediction by :func:`event_presence_mask` of the input.
        pad_input: zero-pad the input at the bottom and right to multiples of ``size_divisor`` (no events
            there) and crop the prediction back to the input's size; the layers' state and ``activity``
            keep the padded size.
    """

    def __init__(
        self, *, body: RecurrentBody, head: PredictionHead, mask_output: bool = False, pad_input: bool = False
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if body.out_scale * head.upsample != 1:
            upsampled = f" ({type(head).__name__} upsamples {head.upsample}x)" if head.upsample != 1 else ""
            raise ValueError(
                f"{name}: the body ends at {body.out_scale} of the input resolution{upsampled}: expected the "
                f"prediction at the input resolution (the head predicts per input pixel)"
            )
        if head.in_channels != body.out_channels:
            raise ValueError(
                f"{name}: {type(head).__name__} takes {head.in_channels} channels, the body gives "
                f"{body.out_channels}"
            )
        self.layers = body
        self.prediction = head
        self.mask_output = mask_output
        self.pad_input = pad_input

    @property
    def num_bins(self) -> int:
        """Channels of the input."""
        return self.layers.in_channels

    @property
    def layer_names(self) -> list[str]:
        return self.layers.layer_names

    @property
    def size_divisor(self) -> int:
        """The input's height and width must be multiples of this."""
        return self.layers.size_divisor

    def check_input(self, x: Tensor, state: NetworkState | None) -> None:
        """``ValueError`` unless ``x`` is ``[B, num_bins, H, W]`` with H, W multiples of :attr:`size_divisor`
        (any size with ``pad_input``) and ``state`` is None or has one entry per layer."""
        name = type(self).__name__
        if x.ndim != 4 or x.shape[1] != self.num_bins:
            raise ValueError(f"{name}: input shape {tuple(x.shape)}: expected [B, {self.num_bins}, H, W]")
        divisor = self.size_divisor
        height, width = x.shape[-2:]
        if not self.pad_input and (height % divisor or width % divisor):
            strided = ", ".join(f"{layer} /{stride}" for layer, stride in self.layers.strides.items())
            raise ValueError(
                f"{name}: input of {height}x{width} pixels (height x width): both must be multiples of "
                f"{divisor}, the network's total downsampling ({strided}); crop or pad the input "
                f"(e.g. data.crop_size) to a multiple of {divisor}"
            )
        if state is not None and len(state) != len(self.layers):
            raise ValueError(
                f"{name}: state has {len(state)} entries, expected {len(self.layers)} "
                f"(one per layer: {self.layer_names})"
            )

    def forward(self, x: Tensor, state: NetworkState | None = None) -> tuple[dict[str, Any], NetworkState]:
        """One input window ``x [B, num_bins, H, W]``; returns ``({output_key, "activity"}, new_state)``."""
        name = type(self).__name__
        self.check_input(x, state)
        height, width = x.shape[-2:]
        if self.pad_input:
            divisor = self.size_divisor
            features, activity, new_state = self.layers(
                F.pad(x, (0, -width % divisor, 0, -height % divisor)), state
            )
            prediction = self.prediction(features)[..., :height, :width]
        else:
            features, activity, new_state = self.layers(x, state)
            prediction = self.prediction(features)
        if prediction.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"{name}: the prediction is {tuple(prediction.shape[-2:])} for an input of "
                f"{tuple(x.shape[-2:])}: expected the input's height and width to be divisible by the "
                f"body's total stride"
            )
        if self.mask_output:
            prediction = prediction * event_presence_mask(x)
        return {self.prediction.output_key: prediction, "activity": activity}, new_state


class MultiScaleFlowNetwork(RecurrentNetwork):
    """A flow network that also predicts flow at coarser scales, in body layers (EV-FlowNet's decoders).

    ``out["flow"]`` is the head's flow (full resolution, pixels per window, x first), as in every
    network. ``out["flow_scales"]`` lists the flow of every scale, **coarsest first**, each at full
    resolution: the outputs of ``scale_layers`` (the raw predictions, ``tanh`` values, at their layer's
    resolution) times the head's ``flow_scaling``, upsampled to the input resolution by nearest
    neighbour, then ``out["flow"]`` itself (the same tensor) last.

    Units, as event_flow (models/model.py, ``EVFlowNet.forward`` / ``RecEVFlowNet.forward``: every
    prediction goes through ``F.interpolate(flow, scale_factor=...)``, nearest, values unchanged; loss/
    flow.py and utils/iwe.py: ``get_interpolation`` warps the full-resolution events of every scale by
    ``flow * flow_scaling`` with the same ``flow_scaling``): a coarse prediction is never a displacement
    in its own grid's pixels. It is trained by the full-resolution loss as a full-resolution
    displacement, so it is one already and upsampling does not rescale it (the "1 px at half
    resolution = 2 px at full resolution" rule would apply to a flow measured on the coarse grid).
    With ``mask_output``, every scale is masked by the input's events, as ``out["flow"]``.

    Args:
        body, mask_output: see :class:`RecurrentNetwork`.
        head: a :class:`~tinyflow.models.heads.FlowHead` (its ``flow_scaling`` scales every scale).
        scale_layers: body layers whose outputs are the coarser predictions (2 channels each, at
            1 / 2**k of the input resolution), coarsest first.
    """

    def __init__(
        self, *, body: RecurrentBody, head: FlowHead, scale_layers: Sequence[str], mask_output: bool = False
    ) -> None:
        super().__init__(body=body, head=head, mask_output=mask_output)
        name = type(self).__name__
        self.scale_layers = tuple(scale_layers)
        previous = 0.0
        for layer in self.scale_layers:
            if layer not in body:
                raise ValueError(f"{name}: scale layer {layer!r} is not a body layer ({body.layer_names})")
            scale = body.scales[layer]
            if scale.numerator != 1 or scale >= 1 or float(scale) <= previous:
                raise ValueError(
                    f"{name}: scale layer {layer!r} is at {scale} of the input resolution: expected "
                    f"1/n (n > 1 an integer; the head gives the full resolution), each scale finer than "
                    f"the one before"
                )
            if body.channels[layer] != 2:
                raise ValueError(
                    f"{name}: scale layer {layer!r} has {body.channels[layer]} channels: expected 2 (x, y)"
                )
            previous = float(scale)

    def forward(self, x: Tensor, state: NetworkState | None = None) -> tuple[dict[str, Any], NetworkState]:
        """As :meth:`RecurrentNetwork.forward`, plus ``out["flow_scales"]`` (see the class docstring)."""
        out, new_state = super().forward(x, state)
        mask = event_presence_mask(x) if self.mask_output else None
        scales: list[Tensor] = []
        for layer in self.scale_layers:
            factor = self.layers.scales[layer].denominator
            flow = self.prediction.flow_scaling * F.interpolate(
                out["activity"][layer], scale_factor=factor, mode="nearest"
            )
            scales.append(flow if mask is None else flow * mask)
        out["flow_scales"] = [*scales, out["flow"]]
        return out, new_state


class MultiScaleDepthNetwork(RecurrentNetwork):
    """A depth network read out by neurons that integrate the predictions of several scales (StereoSpike).

    The readout neurons (StereoSpike's "I-neurons": integrate-and-fire neurons with an infinite threshold,
    which never fire) start each window at 0 and integrate, coarsest scale first, the output of each of
    ``scale_layers`` (branch layers of the body, each 1 channel at the input resolution: its own
    upsampling brings it there) and last the head's. ``out["depth"]`` [B, 1, H, W] is their potential
    after the head; ``out["depth_scales"]`` lists the potential after each scale, coarsest first, ending
    with ``out["depth"]`` (StereoSpike's ``depth4``, ``depth3``, ``depth2``, ``depth1``). Values are in the
    representation the loss trains (see :class:`~tinyflow.models.heads.DepthHead`).

    Args:
        body: the layers (the head's input at the input resolution).
        head: a :class:`~tinyflow.models.heads.DepthHead`.
        scale_layers: body branch layers whose outputs are the coarser scales' currents, coarsest first.
        stateless: every layer starts each window from rest (zero state) and the network returns no state,
            as StereoSpike (its paper: all potentials are reset at every timestep); False carries the
            spiking layers' state across windows.
        pad_input: see :class:`RecurrentNetwork` (the scales are cropped like the head's prediction).
    """

    def __init__(
        self,
        *,
        body: RecurrentBody,
        head: DepthHead,
        scale_layers: Sequence[str],
        stateless: bool = False,
        pad_input: bool = False,
    ) -> None:
        super().__init__(body=body, head=head, pad_input=pad_input)
        name = type(self).__name__
        self.scale_layers = tuple(scale_layers)
        self.stateless = stateless
        for layer in self.scale_layers:
            if layer not in body.branches:
                raise ValueError(
                    f"{name}: scale layer {layer!r} is not a branch layer of the body {body.branches}"
                )
            if body.channels[layer] != 1 or body.scales[layer] != 1:
                raise ValueError(
                    f"{name}: scale layer {layer!r} gives {body.channels[layer]} channels at "
                    f"{body.scales[layer]} of the input resolution: expected 1 channel at the input resolution"
                )

    def forward(
        self, x: Tensor, state: NetworkState | None = None
    ) -> tuple[dict[str, Any], NetworkState | None]:
        """As :meth:`RecurrentNetwork.forward`, plus ``out["depth_scales"]`` (see the class docstring)."""
        out, new_state = super().forward(x, None if self.stateless else state)
        height, width = x.shape[-2:]
        potentials: list[Tensor] = []
        for layer in self.scale_layers:
            current = out["activity"][layer][..., :height, :width]
            potentials.append(current if not potentials else potentials[-1] + current)
        if potentials:
            out["depth"] = potentials[-1] + out["depth"]
        out["depth_scales"] = [*potentials, out["depth"]]
        return out, None if self.stateless else new_state


__all__ = [
    "MultiScaleDepthNetwork",
    "MultiScaleFlowNetwork",
    "NetworkState",
    "RecurrentNetwork",
    "event_presence_mask",
]
