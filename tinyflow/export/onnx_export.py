"""One time step of a network as an ONNX graph: standard operators only, the state as inputs and outputs.

``torch.onnx.export`` (the dynamo exporter, ``torch.export`` underneath) traces :class:`~tinyflow.export.state.OneStep`
in inference mode: a spike is the forward of the Heaviside, ``Greater`` then ``Cast`` (the surrogate
gradient lives in the backward and is not traced), the sigmoid of a learnt leak is folded into a constant.
The graph is checked after export: the ONNX checker, every node and opset in the default domain (no custom
operator), and the inputs ``x, state.*`` and outputs ``<prediction>, new_state.*`` as the layout names them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from torch import nn

from tinyflow.export.errors import ExportError
from tinyflow.export.runtime import INPUT_NAME
from tinyflow.export.state import OneStep

DEFAULT_DOMAINS = ("", "ai.onnx")
# torch.onnx logs one warning per torchvision operator it cannot register when torchvision is absent;
# tinyflow uses none of them.
_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    logger = logging.getLogger(_REGISTRATION_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(step: OneStep, x: torch.Tensor, path: Path, opset: int) -> onnx.ModelProto:
    """Write the step graph of ``step`` for inputs shaped like ``x`` ([1, C, H, W]) to ``path``; returns it.

    Raises:
        ExportError: the exporter fails on the network, or the graph breaks :func:`check_step_graph`.
    """
    layout = step.layout
    sample = (x, *(torch.zeros(e.shape, dtype=getattr(torch, e.dtype)) for e in layout.entries))
    network_name = type(step.network).__name__
    try:
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                step.eval(),
                sample,
                str(path),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME, *layout.input_names],
                output_names=[step.output_key, *layout.output_names],
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as error:  # the exporter's own errors have no common base class
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"torch.onnx could not export {network_name}: {first}") from error
    model = onnx.load(str(path))
    check_step_graph(model, step)
    return model


def is_quantised(network: nn.Module) -> bool:
    """The network holds brevitas quantised layers (a run with ``quant=qat_int8`` or ``ptq_int8``)."""
    return any(type(module).__module__.startswith("brevitas.") for module in network.modules())


def export_qcdq_step(step: OneStep, x: torch.Tensor, path: Path, opset: int) -> onnx.ModelProto:
    """The step graph of a quantised network as brevitas writes it (QuantizeLinear -> Clip ->
    DequantizeLinear around every quantised tensor: the network's own INT8 scales), checked as
    :func:`export_onnx`'s graphs are."""
    from tinyflow.quant.onnx_qcdq import export_qcdq  # brevitas: the export extra

    layout = step.layout
    sample = (x, *(torch.zeros(e.shape, dtype=getattr(torch, e.dtype)) for e in layout.entries))
    try:
        with _quiet_exporter():
            export_qcdq(
                step,
                sample,
                [INPUT_NAME, *layout.input_names],
                [step.output_key, *layout.output_names],
                path,
                opset_version=opset,
            )
    except Exception as error:  # brevitas' and the exporter's errors have no common base class
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"brevitas could not export {type(step.network).__name__}: {first}") from error
    model = onnx.load(str(path))
    check_step_graph(model, step)
    return model


def check_default_domain(model: onnx.ModelProto) -> None:
    """``ExportError`` unless ``model`` passes the ONNX checker and uses only default-domain operators (no
    node, opset import or local function in another domain)."""
    onnx.checker.check_model(model)
    custom = sorted(
        {f"{node.domain}::{node.op_type}" for node in model.graph.node if node.domain not in DEFAULT_DOMAINS}
        | {f"{o.domain} (opset import)" for o in model.opset_import if o.domain not in DEFAULT_DOMAINS}
        | {f"{f.domain}::{f.name} (local function)" for f in model.functions}
    )
    if custom:
        raise ExportError(f"the ONNX graph uses operators outside the default domain: {', '.join(custom)}")


def drop_unused_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without the opset imports of domains that none of its nodes uses (ONNX Runtime's graph
    optimisations declare their own domains)."""
    used = {node.domain for node in model.graph.node} | set(DEFAULT_DOMAINS)
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return model


def check_step_graph(model: onnx.ModelProto, step: OneStep) -> None:
    """:func:`check_default_domain`, and ``ExportError`` unless ``model`` has ``step``'s input and output
    names in order."""
    check_default_domain(model)
    layout = step.layout
    expected_inputs = [INPUT_NAME, *layout.input_names]
    expected_outputs = [step.output_key, *layout.output_names]
    inputs = [value.name for value in model.graph.input]
    outputs = [value.name for value in model.graph.output]
    if inputs != expected_inputs or outputs != expected_outputs:
        raise ExportError(
            f"the ONNX graph of {type(step.network).__name__} has inputs {inputs} and outputs {outputs}: "
            f"expected {expected_inputs} and {expected_outputs} (a state tensor the step does not use is "
            f"dropped by the exporter)"
        )


def opset_version(model: onnx.ModelProto) -> int:
    """The default-domain opset the model imports."""
    return next(o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS)


__all__ = ["check_default_domain", "check_step_graph", "drop_unused_opsets", "export_onnx", "opset_version"]
