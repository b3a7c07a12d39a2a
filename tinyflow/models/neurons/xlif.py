"""Convolutional XLIF layer: event_flow's "crossing between PLIF and ALIF" (ConvXLIF).

The threshold adapts as in ALIF, but the adaptation integrates presynaptic activity as in PLIF.
"""

from __future__ import annotations

from tinyflow.models.neurons.alif import ConvALIF


class ConvXLIF(ConvALIF):
    """ALIF threshold ``max(t0, 0.01) + max(t1, 0) * a_t`` with a presynaptic trace.

    ``a_t = sig(w_a) a_{t-1} + (1 - sig(w_a)) * avgpool(mean_c |x_t|)`` (per-channel leak). State
    ``(v, z, a)``. Arguments: :class:`~tinyflow.models.neurons.alif.ConvALIF`.
    """

    TRACE = "presynaptic"
