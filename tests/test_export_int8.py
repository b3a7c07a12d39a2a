"""INT8 ONNX by static quantisation (QDQ), calibrated on windows fed with their recurrent states."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from tinyflow.export.formats import OnnxFormat, OnnxInt8Format  # noqa: E402
from tinyflow.export.int8 import SequenceCalibration  # noqa: E402
from tinyflow.export.runtime import OnnxStep  # noqa: E402
from tinyflow.models import LIFFireNet  # noqa: E402

SIZE = 16
FLOW_SCALING = 4.0  # px at tanh = 1: an INT8 step of the output is 4 / 127 px


def sequence(steps: int, seed: int = 0) -> list[tuple[np.ndarray, bool]]:
    """``(x, starts_recording)``: two recordings of sparse count windows."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            ((torch.rand(1, 2, SIZE, SIZE, generator=generator) < 0.2).float() * 2).numpy(),
            t in (0, steps // 2),
        )
        for t in range(steps)
    ]


@pytest.fixture(scope="module")
def network() -> LIFFireNet:
    torch.manual_seed(0)
    return LIFFireNet(
        num_bins=2, base_num_channels=8, neuron_kwargs={"thresh_init": [0.3, 0.1], "recurrent_init_gain": 0.5}
    ).eval()


def test_calibration_samples_carry_the_float_graphs_state(network, tmp_path) -> None:
    _, _ = OnnxFormat().write_graph(network, torch.from_numpy(sequence(1)[0][0]), tmp_path / "f.onnx")
    windows = sequence(6)
    samples = list(iter(SequenceCalibration(tmp_path / "f.onnx", windows).get_next, None))
    assert len(samples) == 6
    reference, state = OnnxStep(tmp_path / "f.onnx"), None
    for (x, starts), sample in zip(windows, samples, strict=True):
        if starts:
            reference.reset()
            state = None
        np.testing.assert_array_equal(sample["x"], x)
        for name, value in reference.state.items():
            np.testing.assert_array_equal(sample[name], value)
        assert any(value.any() for value in sample.values() if value is not x) == (state is not None)
        reference(x)
        state = reference.state


def test_int8_graph_is_qdq_in_the_default_domain_and_close_to_float(network, tmp_path) -> None:
    windows = sequence(12)
    x = torch.from_numpy(windows[0][0])
    exported = OnnxInt8Format(calibration_windows=12).write(network, x, tmp_path, iter(windows), threads=1)
    model = onnx.load(str(tmp_path / exported.model_file))
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0 and ops["Conv"] == 10
    assert {node.domain for node in model.graph.node} <= {""} and {o.domain for o in model.opset_import} <= {
        ""
    }
    weights = {init.name: init for init in model.graph.initializer}
    assert any(w.data_type == onnx.TensorProto.INT8 and len(w.dims) == 4 for w in weights.values())
    assert model.graph.input[0].name == "x" and len(model.graph.input) == 15
    assert not (tmp_path / ".model.onnx").exists()  # the float graph was a temporary
    assert exported.details["quantisation"]["calibration_windows"] == 12
    assert exported.details["quantisation"]["format"] == "QDQ"

    exported.runner.reset()
    state, differences = None, []
    for x_np, starts in windows:
        if starts:
            exported.runner.reset()
            state = None
        with torch.no_grad():
            out, state = network(torch.from_numpy(x_np), state)
        differences.append(np.abs(exported.runner.step(x_np).prediction - out["flow"].numpy()).mean())
    # INT8 is not float: close on average (flow_scaling is 16 px), not equal
    assert 0 < float(np.mean(differences)) < 1.0


def test_a_quantised_network_exports_with_its_own_int8_scales_qcdq(network, tmp_path) -> None:
    """A QAT / PTQ network (brevitas layers) is written by brevitas' QCDQ export, without calibration; the
    graph (default domain, state as I/O) follows the quantised PyTorch network over a sequence with its
    state carried to within one INT8 step of the flow on average."""
    pytest.importorskip("brevitas")
    from tinyflow.quant import Int8Quantisation

    torch.manual_seed(0)
    float_network = LIFFireNet(num_bins=2, base_num_channels=8, flow_scaling=FLOW_SCALING)
    quantised = Int8Quantisation().quantise(float_network).eval()
    windows = sequence(6)
    with torch.no_grad():
        quantised(torch.from_numpy(windows[0][0]), None)
    exported = OnnxInt8Format().write(quantised, torch.from_numpy(windows[0][0]), tmp_path, iter(()), 1)
    assert exported.details["quantisation"]["tool"] == "brevitas.export.export_onnx_qcdq"
    model = onnx.load(str(tmp_path / exported.model_file))
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert model.graph.input[0].name == "x" and len(model.graph.input) > 1
    state, differences = None, []
    for x, _ in windows:
        with torch.no_grad():
            out, state = quantised(torch.from_numpy(x), state)
        differences.append(np.abs(exported.runner.step(x).prediction - out["flow"].numpy()))
    flow_px = float(np.abs(out["flow"].numpy()).mean())
    means = [float(d.mean()) for d in differences]
    # the first window computes the same integer grid (equal); later a spike near its threshold may flip
    # between brevitas' fake quantisation and ONNX Runtime's rounding, and the flip carries through the state
    step_px = FLOW_SCALING / 127
    assert means[0] < 1e-6 and max(means) < 0.25 * step_px, (means, flow_px)


def test_a_quantised_network_refuses_a_float_graph(network, tmp_path) -> None:
    pytest.importorskip("brevitas")
    from tinyflow.export.errors import ExportError
    from tinyflow.quant import Int8Quantisation

    quantised = Int8Quantisation().quantise(LIFFireNet(num_bins=2, base_num_channels=8)).eval()
    with pytest.raises(ExportError, match="export=onnx_int8 writes it with its own INT8 scales"):
        OnnxFormat().write_graph(quantised, torch.zeros(1, 2, SIZE, SIZE), tmp_path / "f.onnx")
