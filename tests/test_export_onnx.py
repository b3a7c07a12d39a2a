"""One time step as an ONNX graph: the state as named inputs and outputs, standard operators, parity with PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from tinyflow.app.resolvers import register_resolvers  # noqa: E402
from tinyflow.export.errors import ExportError  # noqa: E402
from tinyflow.export.onnx_export import check_default_domain, check_step_graph, export_onnx  # noqa: E402
from tinyflow.export.runtime import OnnxStep  # noqa: E402
from tinyflow.export.state import OneStep, StateLayout  # noqa: E402
from tinyflow.models import FireFlowNet, FireNet, LIFFireNet, RecEVFlowNet  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
SIZE = 16


def windows(steps: int, channels: int = 2, size: int = SIZE, seed: int = 0) -> list[torch.Tensor]:
    """Sparse event-count-like inputs [1, C, size, size]."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(1, channels, size, size, generator=generator) < 0.2).float()
        * torch.randint(1, 4, (1, channels, size, size), generator=generator)
        for _ in range(steps)
    ]


def exported(network: torch.nn.Module, path: Path, channels: int = 2, size: int = SIZE) -> OneStep:
    network.eval()
    x = windows(1, channels, size)[0]
    step = OneStep(network, StateLayout.of(network, x))
    export_onnx(step, x, path, opset=20)
    return step


def assert_parity(
    network: torch.nn.Module, path: Path, steps: int, channels: int = 2, size: int = SIZE
) -> float:
    """The largest |flow difference| of ONNX Runtime and PyTorch over ``steps`` windows with state carried."""
    runner, state, largest = OnnxStep(path), None, 0.0
    for x in windows(steps, channels, size, seed=1):
        with torch.no_grad():
            out, state = network(x, state)
        largest = max(largest, float(np.abs(runner(x.numpy()) - out["flow"].numpy()).max()))
    return largest


@pytest.fixture(scope="module")
def lif_firenet(tmp_path_factory) -> tuple[LIFFireNet, OneStep, Path]:
    """A small LIF-FireNet (residual skips, recurrent G layers) and its step graph."""
    torch.manual_seed(0)
    network = LIFFireNet(
        num_bins=2,
        base_num_channels=4,
        residual=True,
        neuron_kwargs={"thresh_init": [0.3, 0.1], "recurrent_init_gain": 0.5},
    )
    path = tmp_path_factory.mktemp("lif_firenet") / "m.onnx"
    return network, exported(network, path), path


def test_lif_firenet_step_graph_has_the_state_as_inputs_and_outputs(lif_firenet) -> None:
    _, step, path = lif_firenet
    model = onnx.load(str(path))
    layers = ["head", "G1", "R1a", "R1b", "G2", "R2a", "R2b"]
    state_inputs = [f"state.{layer}.{i}" for layer in layers for i in (0, 1)]  # (v, z) of every LIF layer
    assert [v.name for v in model.graph.input] == ["x", *state_inputs]
    assert [v.name for v in model.graph.output] == [
        "flow",
        *(n.replace("state.", "new_state.") for n in state_inputs),
    ]
    for value in [*model.graph.input, *model.graph.output]:
        tensor = value.type.tensor_type
        assert tensor.elem_type == onnx.TensorProto.FLOAT
        shape = [d.dim_value for d in tensor.shape.dim]
        channels = {"x": 2, "flow": 2}.get(value.name, 4)
        assert shape == [1, channels, SIZE, SIZE], value.name
    assert step.layout.input_names == state_inputs


def test_every_node_is_a_default_domain_operator_and_spikes_are_comparisons(lif_firenet) -> None:
    model = onnx.load(str(lif_firenet[2]))
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"} and not model.functions
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Greater") == 7  # one threshold comparison per spiking layer
    assert "Cast" in ops
    assert not {"Sigmoid", "Atan"} & set(ops)  # leaks folded into constants; no surrogate in the graph


def test_float_parity_over_a_sequence(lif_firenet) -> None:
    network, _, path = lif_firenet
    assert assert_parity(network, path, steps=12) <= 1e-5


@pytest.mark.parametrize(
    "network",
    [
        pytest.param(lambda: FireFlowNet(num_bins=2, base_num_channels=4), id="stateless"),
        pytest.param(lambda: FireNet(num_bins=2, base_num_channels=4), id="convgru-tensor-state"),
        pytest.param(
            lambda: RecEVFlowNet(num_bins=2, base_num_channels=2, num_encoders=2, recurrent_block="convlstm"),
            id="convlstm-tuple-state",
        ),
        pytest.param(  # the head's fixed blur: two depthwise convs and the renormalisation, standard ops
            lambda: LIFFireNet(num_bins=2, base_num_channels=4, prediction_smoothing_px=1.5),
            id="smoothed-head",
        ),
    ],
)
def test_state_layouts_of_every_kind_round_trip(network, tmp_path) -> None:
    torch.manual_seed(0)
    net = network().eval()
    x = windows(1)[0]
    layout = StateLayout.of(net, x)
    _, state = net(x, None)
    assert layout.unflatten(layout.flatten(state)) == state
    for entry, zeros in zip(layout.entries, layout.zeros(), strict=True):
        assert zeros.shape == entry.shape and not zeros.any()
    step = OneStep(net, layout)
    export_onnx(step, x, tmp_path / "m.onnx", opset=20)
    assert assert_parity(net, tmp_path / "m.onnx", steps=4) <= 1e-5


def test_a_custom_domain_node_is_refused(tmp_path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("LIF", ["x"], ["y"], domain="com.example")],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", 20), onnx.helper.make_opsetid("com.example", 1)]
    )
    with pytest.raises(ExportError, match=r"outside the default domain: .*com.example::LIF"):
        check_default_domain(model)


def test_a_graph_whose_state_outputs_are_out_of_order_is_refused(lif_firenet) -> None:
    _, step, path = lif_firenet
    model = onnx.load(str(path))
    first, second = (onnx.ValueInfoProto(), onnx.ValueInfoProto())
    first.CopyFrom(model.graph.output[1])
    second.CopyFrom(model.graph.output[2])
    model.graph.output[1].CopyFrom(second)
    model.graph.output[2].CopyFrom(first)
    with pytest.raises(ExportError, match=r"outputs \['flow', 'new_state.head.1', 'new_state.head.0'"):
        check_step_graph(model, step)


def test_the_runtime_refuses_an_input_of_another_size(lif_firenet) -> None:
    with pytest.raises(ValueError, match=r"input of shape \(1, 2, 8, 8\): the graph takes \(1, 2, 16, 16\)"):
        OnnxStep(lif_firenet[2])(np.zeros((1, 2, 8, 8), np.float32))


def model_configs() -> list[tuple[str, str | None]]:
    models = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
    return [(m, None) for m in models] + [
        ("lif_firenet", n) for n in ("plif", "alif", "xlif", "snntorch_lif")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "neuron"), model_configs(), ids=lambda v: str(v))
def test_every_model_config_exports_with_parity(model: str, neuron: str | None, tmp_path) -> None:
    """Every network of config/model (and LIF-FireNet with every neuron) as an ONNX step graph within 1e-5 px."""
    register_resolvers()
    overrides = [f"model={model}", "model.base_num_channels=4", "data.num_bins=2"]
    overrides += [f"model.neuron={neuron}"] if neuron else []
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    network = instantiate(cfg.model)
    exported(network, tmp_path / "m.onnx", size=32)
    assert assert_parity(network, tmp_path / "m.onnx", steps=3, size=32) <= 1e-5
