"""The export formats, as the ``export`` config group instantiates them: each writes a model file into a folder
and returns a runner of it for the parity check, with what the manifest says of it.

- :class:`OnnxFormat` (``export=onnx``): one time step as a float32 ONNX graph, standard operators.
- :class:`OnnxInt8Format` (``export=onnx_int8``): that graph quantised to INT8 by ONNX Runtime's static
  quantisation (QDQ), calibrated on validation windows fed with their states.
- :class:`NirFormat` (``export=nir``): the spiking network as a NIR graph, run for the parity check by
  snntorch's NIR importer.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import nir
import numpy as np
import onnx
import torch
from torch import nn

from tinyflow.export.errors import ExportError
from tinyflow.export.int8 import CALIBRATION_METHODS, quantize_int8
from tinyflow.export.nir_export import NIR_DT_S, NirSimulator, to_nir
from tinyflow.export.onnx_export import (
    check_step_graph,
    drop_unused_opsets,
    export_onnx,
    export_qcdq_step,
    is_quantised,
    opset_version,
)
from tinyflow.export.parity import CallableRunner, StepResult, StepRunner
from tinyflow.export.runtime import OnnxStep
from tinyflow.export.state import OneStep, StateLayout

ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}
DEFAULT_OPSET = 20


@dataclass
class Exported:
    """What a format wrote: the model file's name in the folder, a runner of it, the graph's inputs and
    outputs (name, shape, dtype, meaning), its state and format-specific manifest entries."""

    model_file: str
    runner: StepRunner
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    state: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


class ExportFormat(Protocol):
    """An export format: its ``name`` (the folder under ``<run>/export/``), ``precision``, and how many
    windows :meth:`write` reads (``calibration_windows``: 0 for a format that does not calibrate)."""

    name: ClassVar[str]
    precision: ClassVar[str]
    calibration_windows: int

    def write(
        self,
        network: nn.Module,
        x: torch.Tensor,
        folder: Path,
        windows: Iterable[tuple[np.ndarray, bool]],
        threads: int,
    ) -> Exported:
        """Write the model for inputs shaped like ``x`` into ``folder``; ``windows`` (``(x, starts_recording)``
        in sequence) are there for a format that calibrates; the runner uses ``threads`` CPU threads."""


def _graph_io(model: onnx.ModelProto, layout: StateLayout, prediction: str) -> tuple[list, list]:
    meaning = {"x": "one encoded window (see window)", prediction: _prediction_meaning(prediction)}
    for entry in layout.entries:
        meaning[entry.input_name] = f"state of layer {entry.layer} ({entry.layer_type}) #{entry.index}"
        meaning[entry.output_name] = f"{entry.input_name} for the next window"

    def describe(values: Iterable[onnx.ValueInfoProto]) -> list[dict[str, Any]]:
        return [
            {
                "name": value.name,
                "shape": [d.dim_value for d in value.type.tensor_type.shape.dim],
                "dtype": ONNX_DTYPES.get(
                    value.type.tensor_type.elem_type, str(value.type.tensor_type.elem_type)
                ),
                "meaning": meaning[value.name],
            }
            for value in values
        ]

    return describe(model.graph.input), describe(model.graph.output)


def _prediction_meaning(prediction: str) -> str:
    if prediction == "flow":
        return "flow: (x, y) displacement in pixels over the input window, channel 0 = x (column)"
    return prediction


def _state(layout: StateLayout) -> dict[str, Any]:
    return {
        "initial": "zeros (every state input; also where a recording starts)",
        "carry": "feed each new_state.<layer>.<i> output back as state.<layer>.<i> at the next window",
        "tensors": layout.describe(),
    }


def _onnx_runner(name: str, path: Path, threads: int) -> StepRunner:
    step = OnnxStep(path, threads)
    return CallableRunner(name, lambda x: StepResult(step(x)), step.reset)


@dataclass(frozen=True)
class OnnxFormat:
    """Float32 ONNX step graph (:mod:`~tinyflow.export.onnx_export`).

    Args:
        opset: the ONNX opset (default domain) of the graph.
    """

    opset: int = DEFAULT_OPSET
    name: ClassVar[str] = "onnx"
    precision: ClassVar[str] = "fp32"
    model_file: ClassVar[str] = "model.onnx"
    calibration_windows: ClassVar[int] = 0

    def write_graph(self, network: nn.Module, x: torch.Tensor, path: Path) -> tuple[onnx.ModelProto, OneStep]:
        if is_quantised(network):
            raise ExportError(
                f"{type(network).__name__} is quantised (a quant=qat_int8 / ptq_int8 run): export=onnx_int8 "
                "writes it with its own INT8 scales (QCDQ); a float graph would drop them"
            )
        step = OneStep(network, StateLayout.of(network, x))
        return export_onnx(step, x, path, self.opset), step

    def write(
        self,
        network: nn.Module,
        x: torch.Tensor,
        folder: Path,
        windows: Iterable[tuple[np.ndarray, bool]],
        threads: int,
    ) -> Exported:
        model, step = self.write_graph(network, x, folder / self.model_file)
        inputs, outputs = _graph_io(model, step.layout, step.output_key)
        runner = _onnx_runner(self.name, folder / self.model_file, threads)
        details = {"opset": opset_version(model)}
        return Exported(self.model_file, runner, inputs, outputs, _state(step.layout), details)


@dataclass(frozen=True)
class OnnxInt8Format:
    """INT8 ONNX step graph: the float graph of :class:`OnnxFormat`, statically quantised (QDQ) by ONNX
    Runtime (:mod:`~tinyflow.export.int8`); inputs, outputs and the state stay float32.

    Args:
        opset: of the float graph (QDQ with per-channel scales needs 13 or more).
        per_channel: one weight scale per output channel (else per tensor).
        op_types: operator types to quantise; empty: all that ONNX Runtime quantises.
        calibration: ``minmax``, ``entropy`` or ``percentile`` (activation ranges).
        calibration_windows: validation windows calibrated on, fed in sequence with their states.
    """

    opset: int = DEFAULT_OPSET
    per_channel: bool = True
    op_types: Sequence[str] = ("Conv",)
    calibration: str = "minmax"
    calibration_windows: int = 100
    name: ClassVar[str] = "onnx_int8"
    precision: ClassVar[str] = "int8"
    model_file: ClassVar[str] = "model.int8.onnx"

    def __post_init__(self) -> None:
        if self.calibration not in CALIBRATION_METHODS:
            raise ExportError(
                f"export.calibration={self.calibration!r}: expected one of {sorted(CALIBRATION_METHODS)}"
            )
        if self.calibration_windows < 1:
            raise ExportError(f"export.calibration_windows={self.calibration_windows!r}: expected >= 1")

    def write(
        self,
        network: nn.Module,
        x: torch.Tensor,
        folder: Path,
        windows: Iterable[tuple[np.ndarray, bool]],
        threads: int,
    ) -> Exported:
        if is_quantised(network):
            return self._write_qcdq(network, x, folder, threads)
        float_path = folder / f".{OnnxFormat.model_file}"
        try:
            _, step = OnnxFormat(self.opset).write_graph(network, x, float_path)
            calibration = itertools.islice(windows, self.calibration_windows)
            count = quantize_int8(
                float_path,
                folder / self.model_file,
                calibration,
                per_channel=self.per_channel,
                op_types=list(self.op_types),
                calibration=self.calibration,
            )
        finally:
            float_path.unlink(missing_ok=True)
        quantised = drop_unused_opsets(onnx.load(str(folder / self.model_file)))
        check_step_graph(quantised, step)
        onnx.save(quantised, str(folder / self.model_file))
        inputs, outputs = _graph_io(quantised, step.layout, step.output_key)
        details = {
            "opset": opset_version(quantised),
            "quantisation": {
                "tool": "onnxruntime.quantization.quantize_static",
                "format": "QDQ",
                "weights": "int8, " + ("per output channel" if self.per_channel else "per tensor"),
                "activations": "int8, per tensor",
                "op_types": list(self.op_types) or "all that ONNX Runtime quantises",
                "calibration": self.calibration,
                "calibration_windows": count,
                "calibration_data": "validation windows in sequence, each with the state the float graph carries into it",
            },
        }
        runner = _onnx_runner(self.name, folder / self.model_file, threads)
        return Exported(self.model_file, runner, inputs, outputs, _state(step.layout), details)

    def _write_qcdq(self, network: nn.Module, x: torch.Tensor, folder: Path, threads: int) -> Exported:
        """A quantised network (QAT or PTQ run) with the scales it trained or calibrated: no calibration here."""
        step = OneStep(network, StateLayout.of(network, x))
        model = export_qcdq_step(step, x, folder / self.model_file, self.opset)
        inputs, outputs = _graph_io(model, step.layout, step.output_key)
        details = {
            "opset": opset_version(model),
            "quantisation": {
                "tool": "brevitas.export.export_onnx_qcdq",
                "format": "QCDQ (QuantizeLinear, Clip, DequantizeLinear)",
                "scales": "the run's own (quantisation-aware training or post-training calibration)",
            },
        }
        runner = _onnx_runner(self.name, folder / self.model_file, threads)
        return Exported(self.model_file, runner, inputs, outputs, _state(step.layout), details)


@dataclass(frozen=True)
class NirFormat:
    """The spiking network as a NIR graph (:mod:`~tinyflow.export.nir_export`), checked with snntorch's
    NIR importer read back from the written file."""

    name: ClassVar[str] = "nir"
    precision: ClassVar[str] = "fp32"
    model_file: ClassVar[str] = "model.nir"
    calibration_windows: ClassVar[int] = 0

    def write(
        self,
        network: nn.Module,
        x: torch.Tensor,
        folder: Path,
        windows: Iterable[tuple[np.ndarray, bool]],
        threads: int,
    ) -> Exported:
        graph, post = to_nir(network, tuple(x.shape[1:]))
        nir.write(str(folder / self.model_file), graph)
        simulator = NirSimulator(nir.read(str(folder / self.model_file)))

        def step(x_np: np.ndarray) -> StepResult:
            x_t = torch.from_numpy(x_np)
            output, spikes = simulator.step(x_t)
            return StepResult(post(output, x_t).numpy(), {k: v.numpy() for k, v in spikes.items()})

        prediction = network.prediction.output_key
        inputs = [
            {
                "name": "input",
                "shape": list(x.shape[1:]),
                "dtype": "float32",
                "meaning": "one encoded window (see window), no batch axis",
            }
        ]
        outputs = [
            {
                "name": "output",
                "shape": [2, *x.shape[2:]],
                "dtype": "float32",
                "meaning": f"{prediction} = {post.describe()}",
            }
        ]
        details = {
            "dt_s": NIR_DT_S,
            "time_step": graph.metadata["time_step"],
            "postprocess": post.describe(),
            "neurons": "LIF: tau = dt / (1 - leak), r = tau / dt, v_leak = 0, v_reset = 0, v_threshold = 1; "
            "(1 - leak) / threshold folded into each channel's incoming weights (membrane = v / threshold)",
            "layers": [name for name in graph.nodes if name.endswith(".lif")],
            "simulator": "snntorch.import_nir.import_from_nir",
        }
        state = {
            "initial": "zeros",
            "held_by": "the graph's nodes: each LIF node's membrane, each recurrent Conv2d's previous output "
            "(the previous step's spikes, convolved)",
            "reset": "zero all of it where a recording starts",
        }
        runner = CallableRunner(self.name, step, simulator.reset)
        return Exported(self.model_file, runner, inputs, outputs, state, details)


__all__ = ["ExportFormat", "Exported", "NirFormat", "OnnxFormat", "OnnxInt8Format"]
