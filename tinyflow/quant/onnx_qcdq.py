"""INT8 ONNX of a quantised network: brevitas' QCDQ export (QuantizeLinear -> Clip -> DequantizeLinear).

Every quantised tensor appears as ``DequantizeLinear(Clip(QuantizeLinear(x)))`` before the op that uses it
(weights as INT8 initialisers, biases as INT32), all in the default ONNX domain, so stock ONNX Runtime runs
the graph on the CPU (and fuses the patterns into integer convolutions where it can).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from brevitas.export import export_onnx_qcdq
from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer
from torch import Tensor, nn

DEFAULT_OPSET = 17


def export_qcdq(
    network: nn.Module,
    example_inputs: tuple[Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    path: str | Path,
    opset_version: int = DEFAULT_OPSET,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
) -> Path:
    """Write ``network`` (a module holding brevitas quantised layers, ``forward(*example_inputs)`` returning a
    tensor or a tuple of tensors) as a QCDQ ONNX graph at ``path``; returns ``path``.

    The graph is traced in eval mode (the network's mode is restored after) with TorchScript tracing:
    brevitas' dynamo exporter cannot write quantised biases. The file is written next to ``path`` and
    renamed onto it, so a reader never sees a partial file; an existing ``path`` is never replaced.

    Args:
        example_inputs: one tensor per graph input, in order.
        input_names, output_names: the graph's input and output names (one per tensor).
        opset_version: ONNX opset (>= 13: per-channel ``QuantizeLinear``).
        dynamic_axes: ``{name: {axis: label}}`` of axes left symbolic (e.g. the batch).

    Raises:
        FileExistsError: ``path`` exists.
        ValueError: ``network`` holds no quantised layer (a float network: see tinyflow's float export).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists: the QCDQ export does not replace a file")
    if not any(isinstance(m, QuantWeightBiasInputOutputLayer) for m in network.modules()):
        raise ValueError(
            f"{type(network).__name__} holds no brevitas quantised layer: the QCDQ export takes a network "
            "quantised by tinyflow.quant (a run with quant=qat_int8 or quant=ptq_int8)"
        )
    if len(input_names) != len(example_inputs):
        raise ValueError(f"{len(input_names)} input names for {len(example_inputs)} example inputs")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            export_onnx_qcdq(
                network,
                args=tuple(example_inputs),
                export_path=str(temporary),
                input_names=list(input_names),
                output_names=list(output_names),
                opset_version=opset_version,
                dynamic_axes=dict(dynamic_axes) if dynamic_axes else None,
                keep_initializers_as_inputs=False,
                dynamo=False,
            )
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
        network.train(was_training)
    return path
