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
