"""Convolutional integrate-and-fire layer (SpikingJelly's ``IFNode``, as StereoSpike uses it)."""

from __future__ import annotations

from collections.abc import Sequence

from tinyflow.models.neurons.lif import ConvLIF


class ConvIF(ConvLIF):
    """Integrate-and-fire: no leak, a fixed threshold, hard reset to 0 with the detached spike.

    ``v_t = v_{t-1} (1 - z_{t-1}) + I_t`` and ``z_t = H(v_t - thresh)``: SpikingJelly's
    ``IFNode(v_threshold=1.0, v_reset=0.0, detach_reset=True)`` (which resets within the step; the spikes
    are the same). The current is not weighted by ``1 - leak`` as in the leaky types, so ``v`` sums the
    currents until it crosses the threshold. State ``(v, z)``; remaining arguments:
    :class:`~tinyflow.models.neurons.lif.ConvLIF` and :class:`~tinyflow.models.neurons.base.SpikingConv`.

    Args:
        thresh_init: ``(mean, std)`` of the threshold (SpikingJelly, StereoSpike: 1.0).
        learn_thresh: threshold learnable (StereoSpike: fixed, no parameter).
    """

    has_leak = False
    # no trace, and no leak to set
    NON_SETTINGS = frozenset({"trace", "trace_leak_init", "leak_init", "learn_leak", "shared_leak"})

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        thresh_init: Sequence[float] = (1.0, 0.0),
        learn_thresh: bool = False,
        **common,
    ) -> None:
        super().__init__(
            in_channels, out_channels, thresh_init=thresh_init, learn_thresh=learn_thresh, **common
        )
