"""Convolutional ALIF layer: adaptive threshold driven by the layer's own spikes (event_flow's ConvALIF).

Following Bellec et al. 2020 and Yin et al. 2021 as in event_flow.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from tinyflow.models.neurons.base import MIN_THRESHOLD, SpikingConv, register_channel_values


class ConvALIF(SpikingConv):
    """Adaptive-threshold LIF: ``thresh_t = max(t0, 0.01) + max(t1, 0) * a_t``.

    The adaptation ``a_t = sig(w_a) a_{t-1} + (1 - sig(w_a)) z_{t-1}`` rises by ``(1 - sig(w_a))``
    per spike and decays with its own leak. State ``(v, z, a)``. Default soft reset, which subtracts
    the previous step's threshold. Remaining arguments: :class:`~tinyflow.models.neurons.base.SpikingConv`.

    Args:
        trace_leak_init: ``(mean, std)`` of the adaptation leak logit ``w_a``.
        base_thresh_init: ``(mean, std)`` of ``t0``.
        adapt_thresh_init: ``(mean, std)`` of ``t1``.
        learn_thresh: ``t0`` and ``t1`` learnable (event_flow default: fixed).
    """

    TRACE = "spikes"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        trace_leak_init: Sequence[float] = (-4.0, 0.1),
        base_thresh_init: Sequence[float] = (0.01, 0.0),
        adapt_thresh_init: Sequence[float] = (1.8, 0.0),
        learn_thresh: bool = False,
        hard_reset: bool = False,
        **common,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            hard_reset=hard_reset,
            trace=self.TRACE,
            trace_leak_init=trace_leak_init,
            **common,
        )
        register_channel_values(self, "base_thresh", out_channels, base_thresh_init, learn_thresh)
        register_channel_values(self, "adapt_thresh", out_channels, adapt_thresh_init, learn_thresh)

    def threshold(self, trace: Tensor | None) -> Tensor:
        return self.base_thresh.clamp_min(MIN_THRESHOLD) + self.adapt_thresh.clamp_min(0) * trace
