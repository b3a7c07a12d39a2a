"""LIF layer backed by ``snntorch.Leaky`` (snntorch 1.0), with the same interface as the native layers."""

from __future__ import annotations

from collections.abc import Sequence

import snntorch
import torch
from torch import Tensor, nn

from tinyflow.models.neurons.base import ConvSynapses, NeuronState, sample_channel_values
from tinyflow.models.neurons.surrogate import SpikeFunction


class SnnTorchConvLIF(nn.Module):
    """Conv (+ optional recurrent conv) feeding ``snntorch.Leaky`` with explicit membrane state.

    ``snntorch.Leaky`` (``init_hidden=False``, ``reset_delay=True``) computes
    ``mem_t = beta * mem_{t-1} + J_t - reset_{t-1} * thr`` (``reset_mechanism="subtract"``) or
    ``mem_t = beta * (1 - reset_{t-1}) * mem_{t-1} + J_t`` (``"zero"``), with the detached
    ``reset_{t-1} = H(mem_{t-1} - thr)`` and ``spike_t = H(mem_t - thr)``. Feeding it
    ``J_t = (1 - beta) * I_t`` makes this exactly :class:`~tinyflow.models.neurons.lif.ConvLIF` with
    ``leak = beta`` while the threshold stays >= 0.01 (snntorch does not clamp it, nor keep beta a
    sigmoid: it clamps beta to [0, 1]). ``beta`` and ``thr`` are learnable per channel.
    State ``(mem, z)``; ``z`` feeds the recurrent conv.

    Args:
        leak_init: ``(mean, std)`` of the leak logit; ``beta`` starts at its sigmoid.
        learn_leak, thresh_init, learn_thresh, hard_reset, surrogate, surrogate_width: as in ConvLIF.
        in_channels, out_channels, kernel_size, stride, padding, recurrent, recurrent_init_gain: as in
            ConvSynapses.
    """

    emits_spikes = True  # the SpikingLayer protocol of tinyflow.models.spiking (spike statistics)

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
        thresh_init: Sequence[float] = (0.8, 0.0),
        learn_thresh: bool = True,
        hard_reset: bool = True,
        surrogate: str = "arctan",
        surrogate_width: float = 1.0,
    ) -> None:
        super().__init__()
        self.synapses = ConvSynapses(
            in_channels, out_channels, kernel_size, stride, padding, recurrent, recurrent_init_gain
        )
        self.leaky = snntorch.Leaky(
            beta=torch.sigmoid(sample_channel_values("leak_logit", out_channels, leak_init)),
            threshold=sample_channel_values("thresh", out_channels, thresh_init),
            spike_grad=SpikeFunction(surrogate, surrogate_width),
            init_hidden=False,
            learn_beta=learn_leak,
            learn_threshold=learn_thresh,
            reset_mechanism="zero" if hard_reset else "subtract",
            reset_delay=True,
        )

    def forward(self, x: Tensor, state: NeuronState | None = None) -> tuple[Tensor, NeuronState]:
        """One time step: returns the spikes and the new state ``(mem, z)``."""
        if state is not None and len(state) != 2:
            raise ValueError(f"{type(self).__name__}: state has {len(state)} tensors, expected 2 (mem, z)")
        current = self.synapses(x, None if state is None else state[1])
        mem_prev = torch.zeros_like(current) if state is None else state[0]
        beta = self.leaky.beta.clamp(0, 1)
        spikes, mem = self.leaky((1 - beta) * current, mem_prev)
        # snntorch also keeps the membrane in its ``mem`` buffer; empty it (as snntorch initialises it)
        # so the module holds no autograd graph and stays deep-copyable
        self.leaky.mem = mem.new_zeros(0)
        return spikes, (mem, spikes)
