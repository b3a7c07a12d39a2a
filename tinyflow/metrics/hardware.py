"""Hardware profiles: what a deployment target means for a run (precision, export format, energy per op).

A profile is the object of a ``config/hardware/<name>.yaml`` option. Its :class:`EnergyModel` prices the
operations that :mod:`tinyflow.metrics.spikes` counts; every constant carries its source
(:class:`EnergyConstant`), so a reported energy can be traced back to a publication.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

PRECISIONS = ("fp32", "int8")
EXPORT_FORMATS = ("onnx", "onnx_int8", "nir")
REAL_INPUT_COSTS = ("mac", "ac")


@dataclass(frozen=True)
class EnergyConstant:
    """Energy of one operation, in picojoules, and where the number comes from."""

    pj: float
    source: str

    def __post_init__(self) -> None:
        if not self.pj >= 0:
            raise ValueError(f"energy constant: pj={self.pj!r}: expected a number of picojoules >= 0")
        if not self.source or not self.source.strip():
            raise ValueError(f"energy constant of {self.pj} pJ: every constant needs its source")


@dataclass(frozen=True)
class EnergyModel:
    """Picojoules per counted operation (the counts: :class:`tinyflow.metrics.spikes.OperationCounts`).

    Attributes:
        mac: one multiply-accumulate (a synaptic operation on a real-valued input); None where the target
            has no multiplier (then a network that needs MACs has no energy on it).
        ac: one accumulate (a synaptic operation on a binary spike: the weight is added).
        neuron_update: one spiking neuron's state update in one window.
        ann_mac: one MAC of the ANN-equivalent comparison (the same network, every dense op a MAC).
        spike: routing one emitted spike to its targets (a chip's spike energy); None = not modelled.
        real_inputs_of_spiking_layers: how a spiking layer's real-valued input (the voxel grid of the
            first layer) is priced: ``"mac"`` (multiplied), or ``"ac"`` (delivered as graded spikes that
            the neuromorphic core integrates with one accumulate each: ACs only for spiking layers).
    """

    ac: EnergyConstant
    neuron_update: EnergyConstant
    ann_mac: EnergyConstant
    mac: EnergyConstant | None = None
    spike: EnergyConstant | None = None
    real_inputs_of_spiking_layers: Literal["mac", "ac"] = "mac"

    def __post_init__(self) -> None:
        if self.real_inputs_of_spiking_layers not in REAL_INPUT_COSTS:
            raise ValueError(
                f"energy model: real_inputs_of_spiking_layers={self.real_inputs_of_spiking_layers!r}: "
                f"expected one of {REAL_INPUT_COSTS}"
            )

    def constants(self) -> dict[str, EnergyConstant]:
        """The model's constants by field name (those set)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), EnergyConstant)
        }


@dataclass(frozen=True)
class HardwareProfile:
    """A deployment target.

    Attributes:
        name: the profile's name (its config option).
        description: one line: what hardware this models.
        precision: numeric precision of weights and activations on the target (``fp32``, ``int8``).
        export_format: the format export writes for it (``onnx``, ``onnx_int8``, ``nir``).
        energy: energy per operation.
    """

    name: str
    description: str
    precision: Literal["fp32", "int8"]
    export_format: Literal["onnx", "onnx_int8", "nir"]
    energy: EnergyModel

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"hardware {self.name}: precision={self.precision!r}: expected one of {PRECISIONS}"
            )
        if self.export_format not in EXPORT_FORMATS:
            raise ValueError(
                f"hardware {self.name}: export_format={self.export_format!r}: expected one of {EXPORT_FORMATS}"
            )
