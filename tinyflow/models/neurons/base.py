"""Shared pieces of the convolutional spiking layers (event_flow formulation, Hagenaars et al. 2021).

Every layer has the interface ``forward(x [B, Cin, H, W], state) -> (spikes [B, C, H', W'], state)``;
``state=None`` means all-zero state. Per time step (one call), with ``z`` the spikes (0/1):

    I_t     = W_ff * x_t (+ W_rec * z_{t-1} when recurrent)       input current
    a_t     = sig(w_a) * a_{t-1} + (1 - sig(w_a)) * drive_t          optional trace (PLIF/ALIF/XLIF)
    hard:  v_t = sig(w_v) * v_{t-1} * (1 - z_{t-1}) + (1 - sig(w_v)) * I'_t
    soft:  v_t = sig(w_v) * v_{t-1} + (1 - sig(w_v)) * I'_t - z_{t-1} * thresh_{t-1}
    z_t     = H(v_t - thresh_t)     (surrogate gradient in backward)

``I'`` is the current after the subclass's adaptation (PLIF subtracts a trace). The leak ``sig(w_v)``
is a sigmoid of a learnable per-channel logit; the current is weighted by ``1 - leak`` (event_flow,
after Fang et al. 2020), so a constant input ``I`` drives ``v`` towards ``I``. A layer without leak
(``has_leak = False``, the integrate-and-fire neuron) has neither: ``sig(w_v)`` is replaced by 1 and the
current enters unweighted, ``v_t = v_{t-1} (1 - z_{t-1}) + I'_t`` (hard reset). The ``z_{t-1}`` in the
reset is detached by default (``detach_reset``), so no gradient flows through the reset; the recurrent
current and the ALIF trace use the attached spikes, as event_flow does.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from tinyflow.models.neurons.surrogate import SpikeFunction

NeuronState = tuple[Tensor, ...]
MIN_THRESHOLD = 0.01


def sample_channel_values(name: str, num_channels: int, init: Sequence[float]) -> Tensor:
    """Per-channel values ``[C, 1, 1]`` drawn from ``Normal(mean, std)`` with ``init = (mean, std)``."""
    if len(init) != 2 or float(init[1]) < 0:
        raise ValueError(f"{name} init={init!r}: expected (mean, std) with std >= 0")
    mean, std = float(init[0]), float(init[1])
    return torch.randn(num_channels, 1, 1) * std + mean


def register_channel_values(
    module: nn.Module, name: str, num_channels: int, init: Sequence[float], learnable: bool
) -> None:
    """Register ``name`` on ``module`` as a parameter (learnable) or a buffer of sampled values."""
    values = sample_channel_values(name, num_channels, init)
    if learnable:
        module.register_parameter(name, nn.Parameter(values))
    else:
        module.register_buffer(name, values)


class ConvSynapses(nn.Module):
    """Input current of a spiking layer: feed-forward conv plus an optional recurrent conv of the spikes.

    Both convs have no bias (the learnable threshold plays its role). Weights are uniform in
    ``+-sqrt(1 / fan_in_channels)`` as in event_flow, the recurrent ones times ``recurrent_init_gain``.
    The recurrent conv has stride 1 and keeps the output resolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        recurrent: bool = False,
        recurrent_init_gain: float = 1.0,
    ) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.ff = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        nn.init.uniform_(self.ff.weight, -math.sqrt(1 / in_channels), math.sqrt(1 / in_channels))
        self.rec: nn.Conv2d | None = None
        if recurrent:
            self.rec = nn.Conv2d(out_channels, out_channels, kernel_size, 1, kernel_size // 2, bias=False)
            bound = recurrent_init_gain * math.sqrt(1 / out_channels)
            nn.init.uniform_(self.rec.weight, -bound, bound)

    def forward(self, x: Tensor, spikes_prev: Tensor | None) -> Tensor:
        """Current ``[B, C, H', W']``; ``spikes_prev=None`` means no previous spikes."""
        current = self.ff(x)
        if self.rec is not None and spikes_prev is not None:
            current = current + self.rec(spikes_prev)
        return current


class PresynapticActivity(nn.Module):
    """Mean absolute input over channels, average-pooled over each neuron's receptive field.

    Output ``[B, 1, H', W']`` on the same grid as the layer's conv (same kernel, stride, padding,
    zero padding counted in the average).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(conv.kernel_size, conv.stride, conv.padding)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x.abs().mean(dim=1, keepdim=True))


class SpikingConv(nn.Module, ABC):
    """Base convolutional spiking layer; subclasses set the threshold, and optionally a trace.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding: of the feed-forward conv (``padding=None``: ``kernel_size // 2``).
        recurrent: add a recurrent conv of the previous spikes to the input current.
        recurrent_init_gain: scale of the recurrent weights' initial range (event_flow: 1). Below 1 the
            untrained layer is driven by its input rather than by its own spikes: at gain 1 a layer at
            a moderate firing rate sustains itself where the input has no event.
        leak_init: ``(mean, std)`` of the membrane leak logit ``w_v`` (leak = sigmoid(w_v)).
        learn_leak: leak logits (and any trace parameters) are learnable; otherwise fixed buffers.
        shared_leak: one leak for the whole layer instead of one per channel (the "parametric LIF"
            of Fang et al. 2021).
        hard_reset: ``v <- v * (1 - z)`` if True, else soft reset ``v <- v - z * thresh``.
        detach_reset: use the detached previous spike in the reset.
        surrogate, surrogate_width: see :class:`~tinyflow.models.neurons.surrogate.SpikeFunction`.
        trace: what the layer's trace integrates: ``None`` (no trace), ``"presynaptic"``
            (:class:`PresynapticActivity` of the input) or ``"spikes"`` (the layer's previous spikes).
        trace_leak_init: ``(mean, std)`` of the trace leak logit ``w_a`` (used when ``trace`` is set).
    """

    TRACE_KINDS = (None, "presynaptic", "spikes")
    # False: no membrane leak and no leak logit; the current enters unweighted (integrate-and-fire)
    has_leak: ClassVar[bool] = True
    emits_spikes = True  # the SpikingLayer protocol of tinyflow.models.spiking (spike statistics)
    # constructor arguments that are not user settings of the type (see ``neurons.registry.neuron_settings``):
    # what a subclass fixes itself, or does not use
    NON_SETTINGS: ClassVar[frozenset[str]] = frozenset({"trace"})

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        recurrent: bool = False,
        recurrent_init_gain: float = 1.0,
        leak_init: Sequence[float] = (-4.0, 0.1),
        learn_leak: bool = True,
        shared_leak: bool = False,
        hard_reset: bool = True,
        detach_reset: bool = True,
        surrogate: str = "arctan",
        surrogate_width: float = 1.0,
        trace: str | None = None,
        trace_leak_init: Sequence[float] = (-4.0, 0.1),
    ) -> None:
        super().__init__()
        self.synapses = ConvSynapses(
            in_channels, out_channels, kernel_size, stride, padding, recurrent, recurrent_init_gain
        )
        self.learn_leak = learn_leak
        if self.has_leak:
            channels = 1 if shared_leak else out_channels
            register_channel_values(self, "leak_logit", channels, leak_init, learn_leak)
        if trace not in self.TRACE_KINDS:
            raise ValueError(f"{type(self).__name__}: trace={trace!r}: expected one of {self.TRACE_KINDS}")
        self.trace = trace
        self.presynaptic: PresynapticActivity | None = None
        if trace == "presynaptic":
            self.presynaptic = PresynapticActivity(self.synapses.ff)
        if trace is not None:
            register_channel_values(self, "trace_leak_logit", out_channels, trace_leak_init, learn_leak)
        self.spike = SpikeFunction(surrogate, surrogate_width)
        # maps the new membrane potential before it fires and is stored (None: unchanged); tinyflow.quant
        # sets a fake quantiser here (the membrane on a fixed grid, as snntorch's ``state_quant``)
        self.membrane_quant: nn.Module | None = None
        self.hard_reset = hard_reset
        self.detach_reset = detach_reset

    @abstractmethod
    def threshold(self, trace: Tensor | None) -> Tensor:
        """Firing threshold given the trace at the same step (``None`` for a layer without trace)."""

    def adapt_current(self, current: Tensor, trace: Tensor | None) -> Tensor:
        """Input current after adaptation; unchanged by default."""
        return current

    def forward(self, x: Tensor, state: NeuronState | None = None) -> tuple[Tensor, NeuronState]:
        """One time step: returns the spikes and the new state ``(v, z)`` or ``(v, z, trace)``."""
        expected = 2 if self.trace is None else 3
        if state is not None and len(state) != expected:
            raise ValueError(
                f"{type(self).__name__}: state has {len(state)} tensors, expected {expected} "
                f"({'v, z' if self.trace is None else 'v, z, trace'})"
            )
        spikes_prev = None if state is None else state[1]
        current = self.synapses(x, spikes_prev)
        if state is None:
            v_prev = spikes_prev = torch.zeros_like(current)
        else:
            v_prev = state[0]

        trace_prev = trace = None
        if self.trace is not None:
            drive = spikes_prev if self.presynaptic is None else self.presynaptic(x)
            trace_prev = torch.zeros_like(current) if state is None else state[2]
            trace_leak = torch.sigmoid(self.trace_leak_logit)
            trace = trace_leak * trace_prev + (1 - trace_leak) * drive

        current = self.adapt_current(current, trace)
        if self.has_leak:
            leak = torch.sigmoid(self.leak_logit)
            v_prev, current = leak * v_prev, (1 - leak) * current
        reset_spikes = spikes_prev.detach() if self.detach_reset else spikes_prev
        if self.hard_reset:
            v = v_prev * (1 - reset_spikes) + current
        else:
            v = v_prev + current - reset_spikes * self.threshold(trace_prev)
        if self.membrane_quant is not None:
            v = self.membrane_quant(v)
        spikes = self.spike(v - self.threshold(trace))
        new_state = (v, spikes) if trace is None else (v, spikes, trace)
        return spikes, new_state
