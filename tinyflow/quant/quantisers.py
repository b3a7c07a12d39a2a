"""The brevitas quantisers of tinyflow's INT8 profiles: weights, activations and the membrane grid.

Conventions (brevitas' own): a quantised value is ``scale * k`` with an integer ``k``.

- Weights: signed 8-bit, narrow range (``k`` in [-127, 127]), the scale from the weights' max ``|w|`` at
  every forward (per tensor, or per output channel).
- Activations (every conv's input): signed 8-bit, narrow range (``k`` in [-127, 127]), one scale per
  tensor, a learned parameter initialised from the 99.999th percentile of ``|x|`` seen during calibration
  over 127 (narrow: brevitas' default range [-128, 127] puts that percentile at 128, beyond the grid, so
  every spike (1) would be clipped, and clipping stops its gradient: the surrogate would learn from
  silent neurons only).
- Biases: signed 32-bit with the accumulator's scale (input scale x weight scale), so the conv runs in
  integers end to end.
- Membrane potential: a fixed grid, ``scale = membrane_range / (2**(bits - 1) - 1)``, ``k`` in
  ``[-(2**(bits - 1) - 1), 2**(bits - 1) - 1]`` (narrow, symmetric), values beyond ``+-membrane_range``
  clipped; the gradient passes straight through where the value rounds into the range (up to half a step
  beyond ``membrane_range``) and is zero outside (round and clip, as snntorch's ``state_quant``).
"""

from __future__ import annotations

from brevitas.inject.enum import RestrictValueType, ScalingImplType
from brevitas.nn import QuantIdentity
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Int8WeightPerTensorFloat,
    Int32Bias,
)

from tinyflow.quant.profiles import WEIGHT_GRANULARITIES, WeightGranularity

WEIGHT_QUANTISERS = dict(
    zip(WEIGHT_GRANULARITIES, (Int8WeightPerTensorFloat, Int8WeightPerChannelFloat), strict=True)
)
BIAS_QUANTISER = Int32Bias


class NarrowInt8Activation(Int8ActPerTensorFloat):
    """Signed 8-bit on ``[-127, 127]``: the calibrated percentile of ``|x|`` is the grid's last level."""

    narrow_range = True


class FixedGridActivation(NarrowInt8Activation):
    """A signed, symmetric grid with a constant scale (``max_val / (2**(bit_width - 1) - 1)``)."""

    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP


ACTIVATION_QUANTISER = NarrowInt8Activation


def weight_quantiser(granularity: WeightGranularity) -> type:
    """The 8-bit weight quantiser per ``tensor`` or per output ``channel``."""
    if granularity not in WEIGHT_QUANTISERS:
        raise ValueError(f"weights={granularity!r}: expected one of {sorted(WEIGHT_QUANTISERS)}")
    return WEIGHT_QUANTISERS[granularity]


def membrane_quantiser(bits: int, membrane_range: float) -> QuantIdentity:
    """A fake quantiser of the membrane potential to ``bits`` on ``[-membrane_range, membrane_range]``."""
    if not 2 <= bits <= 16:
        raise ValueError(f"membrane_bits={bits!r}: expected an integer in [2, 16]")
    if not membrane_range > 0:
        raise ValueError(f"membrane_range={membrane_range!r}: expected a positive membrane potential")
    return QuantIdentity(
        act_quant=FixedGridActivation,
        bit_width=bits,
        max_val=float(membrane_range),
        min_val=-float(membrane_range),
        return_quant_tensor=False,
    )
