"""The options of the ``quant`` config group: what a run does to its network before training.

Each is a frozen dataclass with the same small interface, so the app never asks which one it holds:

- ``quantise(network)``: the network the task trains and validates (the float one, or its quantised twin);
- ``calibration_batches``: training batches that set the activation scales before training (0: none);
- ``trains``: False for post-training quantisation (calibrate a trained float network, then validate);
- ``describe()``: one line for the console.

This module imports without brevitas (an optional dependency: ``pip install -e ".[export]"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

WeightGranularity = Literal["tensor", "channel"]
WEIGHT_GRANULARITIES = ("tensor", "channel")


@dataclass(frozen=True)
class NoQuantisation:
    """``quant=none``: the float network as built."""

    calibration_batches: int = 0
    trains: bool = True

    def quantise(self, network: nn.Module) -> nn.Module:
        return network

    def describe(self) -> str:
        return "none (float32)"


@dataclass(frozen=True)
class Int8Quantisation:
    """INT8 weights and activations (brevitas): ``quant=qat_int8`` (quantisation-aware training) and
    ``quant=ptq_int8`` (``trains=False``: post-training calibration only).

    Attributes:
        weights: ``"channel"`` (one scale per output channel) or ``"tensor"`` (one per conv).
        calibration_batches: training batches whose float activations initialise the activation scales
            (>= 1; QAT then learns the scales with the weights).
        trains: train after calibration (QAT), or not (PTQ).
        membrane_bits: bits of the membrane-potential grid of every spiking layer; None = float membrane.
        membrane_range: the grid spans ``[-membrane_range, membrane_range]`` (membrane units; the thresholds
            are of order 0.5).
    """

    weights: WeightGranularity = "channel"
    calibration_batches: int = 8
    trains: bool = True
    membrane_bits: int | None = None
    membrane_range: float = 4.0

    def __post_init__(self) -> None:
        if self.weights not in WEIGHT_GRANULARITIES:
            raise ValueError(f"quant.weights={self.weights!r}: expected one of {WEIGHT_GRANULARITIES}")
        if self.calibration_batches < 1:
            raise ValueError(f"quant.calibration_batches={self.calibration_batches!r}: expected >= 1")

    def quantise(self, network: nn.Module) -> nn.Module:
        from tinyflow.quant.converters import quantise_network  # brevitas: only where a run quantises

        return quantise_network(network, self.weights, self.membrane_bits, self.membrane_range)

    def describe(self) -> str:
        kind = "QAT" if self.trains else "PTQ"
        membrane = (
            f", membrane {self.membrane_bits} bits in +-{self.membrane_range:g}" if self.membrane_bits else ""
        )
        return (
            f"INT8 {kind} (weights per {self.weights}, activations per tensor, calibrated on "
            f"{self.calibration_batches} training batches{membrane})"
        )


Quantisation = NoQuantisation | Int8Quantisation
