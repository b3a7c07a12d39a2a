"""Convolutional LIF layer (event_flow's ConvLIF / ConvLIFRecurrent formulation)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from tinyflow.models.neurons.base import MIN_THRESHOLD, SpikingConv, register_channel_values


class ConvLIF(SpikingConv):
    """Leaky integrate-and-fire layer with a learnable per-channel threshold.

    ``thresh = max(thresh_param, 0.01)`` per channel; state ``(v, z)``. Dynamics and the remaining
    arguments: :class:`~tinyflow.models.neurons.base.SpikingConv` (default hard reset).

    Args:
        thresh_init: ``(mean, std)`` of the threshold parameter (event_flow: mean 0.8).
        learn_thresh: threshold is learnable; otherwise a fixed buffer.
    """

    NON_SETTINGS = frozenset({"trace", "trace_leak_init"})  # no trace

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        thresh_init: Sequence[float] = (0.8, 0.0),
        learn_thresh: bool = True,
        hard_reset: bool = True,
        **common,
    ) -> None:
        super().__init__(in_channels, out_channels, hard_reset=hard_reset, **common)
        register_channel_values(self, "thresh", out_channels, thresh_init, learn_thresh)

    def threshold(self, trace: Tensor | None) -> Tensor:
        return self.thresh.clamp_min(MIN_THRESHOLD)
