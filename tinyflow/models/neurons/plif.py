"""Convolutional PLIF layer: LIF with adaptation from a presynaptic trace (event_flow's ConvPLIF).

Adapted in event_flow from Paredes-Vallés et al. 2020. Not the "parametric LIF" of Fang et al.
2021; that one is ``ConvLIF(shared_leak=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tinyflow.models.neurons.base import register_channel_values
from tinyflow.models.neurons.lif import ConvLIF


class ConvPLIF(ConvLIF):
    """LIF whose input current is reduced by a trace of presynaptic activity.

    ``a_t = sig(w_a) a_{t-1} + (1 - sig(w_a)) * avgpool(mean_c |x_t|)`` (per-channel leak ``w_a``, so
    ``a`` is ``[B, C, H', W']``) and
    ``I'_t = I_t - sig(w_p) * a_t`` with a per-channel weight logit ``w_p``. State ``(v, z, a)``.

    Args:
        trace_leak_init: ``(mean, std)`` of the trace leak logit ``w_a``.
        trace_weight_init: ``(mean, std)`` of the adaptation weight logit ``w_p``
            (learnable when ``learn_leak``, as in event_flow).
        lif_kwargs: arguments of :class:`~tinyflow.models.neurons.lif.ConvLIF`.
    """

    NON_SETTINGS = frozenset({"trace"})  # a presynaptic trace, with its own leak (a setting)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        trace_leak_init: Sequence[float] = (-4.0, 0.1),
        trace_weight_init: Sequence[float] = (-2.0, 0.1),
        **lif_kwargs,
    ) -> None:
        super().__init__(
            in_channels, out_channels, trace="presynaptic", trace_leak_init=trace_leak_init, **lif_kwargs
        )
        register_channel_values(self, "trace_weight_logit", out_channels, trace_weight_init, self.learn_leak)

    def adapt_current(self, current: Tensor, trace: Tensor | None) -> Tensor:
        return current - torch.sigmoid(self.trace_weight_logit) * trace
