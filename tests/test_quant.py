"""tinyflow.quant: the converters, the INT8 grids, calibration, QAT through TBPTT, and the QCDQ ONNX export."""

from __future__ import annotations

import math

import onnx
import onnxruntime as ort
import pytest
import torch
from brevitas.graph.calibrate import quantization_status_manager
from brevitas.nn import QuantConv2d
from torch import Tensor, nn

from tinyflow.models import FireFlowNet, FireNet, LIFFireNet, StatefulNetwork
from tinyflow.models.neurons.base import SpikingConv
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF
from tinyflow.quant import Int8Quantisation, NoQuantisation
from tinyflow.quant.calibrate import calibrate
from tinyflow.quant.converters import quant_conv2d, quantise_network
from tinyflow.quant.onnx_qcdq import export_qcdq
from tinyflow.quant.quantisers import membrane_quantiser

BINS = 3


def tiny(cls: type[nn.Module], **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return cls(num_bins=BINS, base_num_channels=4, **kwargs)


def float_convs(network: nn.Module) -> dict[str, nn.Conv2d]:
    return {name: m for name, m in network.named_modules() if type(m) is nn.Conv2d}


def windows(count: int, batch: int = 2, size: int = 16, seed: int = 1) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, BINS, size, size, generator=generator) for _ in range(count)]


def calibrated(network: nn.Module, inputs: list[Tensor]) -> StatefulNetwork:
    """``network`` in a state wrapper, calibrated on ``inputs`` as one stream of windows."""
    stateful = StatefulNetwork(network)
    ends = torch.zeros(1, inputs[0].shape[0], dtype=torch.bool)
    calibrate(stateful, [{"input": x.unsqueeze(0), "end_of_recording": ends} for x in inputs])
    return stateful


@pytest.mark.parametrize(
    "network",
    [tiny(LIFFireNet), tiny(LIFFireNet, neuron="snntorch_lif"), tiny(FireNet)],
    ids=["lif_firenet", "snntorch_lif", "firenet"],
)
def test_quantised_convs_replace_the_float_ones_and_carry_their_weights(network: nn.Module) -> None:
    before = {name: conv.weight.detach().clone() for name, conv in float_convs(network).items()}
    quantised = quantise_network(network, "channel")
    assert not float_convs(quantised)
    convs = {name: m for name, m in quantised.named_modules() if isinstance(m, QuantConv2d)}
    assert convs.keys() == before.keys()
    for name, weight in before.items():
        assert torch.equal(convs[name].weight, weight), name
        original = float_convs(network)[name]
        if original.bias is not None:
            assert torch.equal(convs[name].bias, original.bias), name
    assert float_convs(network).keys() == before.keys()  # the float network is left as it was
    assert NoQuantisation().quantise(network) is network


class OneConv(nn.Module):
    """One conv with a network's interface, ``(x, state) -> (y, state)``, to calibrate it alone."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        return self.conv(x), None


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_conv_converter_round_trip(padding_mode: str) -> None:
    """With quantisation switched off the quantised conv is the float conv; with it on, the difference is
    the rounding of the INT8 input and weights."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=True, padding_mode=padding_mode)
    quantised = quant_conv2d(conv, "tensor")
    x = torch.randn(2, 3, 9, 9)
    calibrated(OneConv(quantised), [x])
    off = dict(disable_act_quant=True, disable_weight_quant=True, disable_bias_quant=True)
    with torch.no_grad():
        with quantization_status_manager(quantised, **off):
            assert torch.equal(quantised(x), conv(x))
        quantised.eval()
        difference = (quantised(x) - conv(x)).abs().max()
    weight_step = conv.weight.abs().max() / 127
    input_step = quantised.input_quant.scale()
    fan_in = conv.weight[0].numel()
    bound = fan_in * (input_step * conv.weight.abs().max() + x.abs().max() * weight_step)
    assert 0 < difference < bound


@pytest.mark.parametrize(("weights", "scale_shape"), [("tensor", ()), ("channel", (4, 1, 1, 1))])
def test_weights_are_int8_on_their_scale(weights: str, scale_shape: tuple[int, ...]) -> None:
    quantised = quantise_network(tiny(LIFFireNet), weights)
    for name, conv in quantised.named_modules():
        if not isinstance(conv, QuantConv2d) or name.startswith("prediction"):
            continue
        weight = conv.quant_weight()
        assert tuple(weight.scale.shape) == scale_shape, name
        integers = weight.int()
        assert integers.dtype == torch.int8 and int(weight.bit_width) == 8
        assert int(integers.abs().max()) == 127  # the scale is max |w| / 127 (narrow range)
        torch.testing.assert_close(weight.value, integers.float() * weight.scale)
        per = integers.flatten(1).abs().amax(1)
        if weights == "channel":
            assert (per == 127).all(), name  # every output channel spans the whole grid


def test_activations_are_int8_on_a_calibrated_scale() -> None:
    inputs = windows(4)
    network = calibrated(quantise_network(tiny(LIFFireNet)), inputs).network
    head = network.layers.head.synapses.ff
    scale = float(head.input_quant.scale().detach())
    percentiles = [torch.quantile(x.abs().flatten(), 0.99999) for x in inputs]
    # the grid ends (127 steps) at the mean over the calibration windows of the 99.999th percentile of |x|
    assert scale == pytest.approx(float(torch.stack(percentiles).mean()) / 127, rel=1e-2)
    network.eval()
    quantised = head.input_quant(inputs[0])
    integers = quantised.int()
    assert integers.min() >= -127 and integers.max() <= 127
    torch.testing.assert_close(quantised.value, integers.float() * scale)
    scales = [m.input_quant.scale().detach() for m in network.modules() if isinstance(m, QuantConv2d)]
    assert all(0 < float(s) < math.inf for s in scales)


def test_spikes_are_exact_on_their_grid_and_keep_their_gradient() -> None:
    """A conv fed spikes: 1 is the grid's last level (k = 127), and the gradient passes for 1 as for 0."""
    torch.manual_seed(0)
    spikes = (torch.rand(4, 3, 8, 8) < 0.2).float()
    conv = calibrated(OneConv(quant_conv2d(nn.Conv2d(3, 2, 3, padding=1), "tensor")), [spikes]).network.conv
    conv.train()
    x = spikes.clone().requires_grad_(True)
    quantised = conv.input_quant(x)
    assert set(quantised.int().unique().tolist()) == {0, 127}
    torch.testing.assert_close(quantised.value, spikes)
    quantised.value.sum().backward()
    assert (x.grad == 1).all()


def test_membrane_grid_rounds_clips_and_passes_gradients_straight_through() -> None:
    quantiser = membrane_quantiser(4, 2.0)
    v = torch.linspace(-3, 3, 61, requires_grad=True)
    q = quantiser(v)
    step = 2.0 / 7
    levels = q.detach() / step
    torch.testing.assert_close(levels, levels.round(), atol=1e-5, rtol=0)
    assert float(q.min()) == pytest.approx(-2.0) and float(q.max()) == pytest.approx(2.0)
    q.sum().backward()
    magnitude = v.detach().abs()  # rounding comes first: the grid's last level takes up to half a step more
    assert (v.grad[magnitude < 2.0 + step / 2] == 1).all() and (v.grad[magnitude > 2.0 + step / 2] == 0).all()


@pytest.mark.parametrize("neuron", ["lif", "snntorch_lif"])
def test_the_membrane_option_puts_every_stored_membrane_on_its_grid(neuron: str) -> None:
    profile = Int8Quantisation(membrane_bits=6, membrane_range=1.5)
    network = calibrated(profile.quantise(tiny(LIFFireNet, neuron=neuron)), windows(2)).network
    quantisers = [
        m.membrane_quant if isinstance(m, SpikingConv) else m.leaky.state_quant
        for m in network.modules()
        if isinstance(m, SpikingConv | SnnTorchConvLIF)
    ]
    assert len(quantisers) == len(network.layer_names)
    network.eval()
    state = None
    for x in windows(3):
        _, state = network(x, state)
    step = 1.5 / 31
    for v, _spikes in state:
        levels = v / step
        torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
        assert v.abs().max() <= 1.5 + 1e-6


def test_a_membrane_grid_for_an_ann_is_refused() -> None:
    with pytest.raises(ValueError, match="no spiking layer"):
        quantise_network(tiny(FireNet), membrane_bits=8)


def test_qat_trains_through_truncated_bptt() -> None:
    """Three windows with the state carried, one loss at the end: gradients reach the first window's
    weights through the recurrent state, the activation scales learn, and a few steps lower the loss."""
    inputs = windows(3, seed=2)
    stateful = calibrated(quantise_network(tiny(LIFFireNet)), windows(4))
    stateful.train()
    optimizer = torch.optim.Adam(stateful.parameters(), lr=3e-3)
    target = torch.full((2, 2, 16, 16), 1.5)

    def sequence_loss() -> Tensor:
        stateful.reset_state()
        flows = [stateful(x)["flow"] for x in inputs]
        return sum((flow - target).square().mean() for flow in flows) / len(flows)

    losses = []
    for _ in range(8):
        loss = sequence_loss()
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            head = stateful.network.layers.head.synapses
            assert head.ff.weight.grad.abs().sum() > 0
            assert head.ff.input_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value.grad != 0
            assert stateful.network.layers.G1.synapses.rec.weight.grad.abs().sum() > 0
        optimizer.step()
        stateful.detach_state()
        losses.append(float(loss))
    assert losses[-1] < losses[0]


def test_calibration_carries_the_state_and_resets_it() -> None:
    stateful = StatefulNetwork(quantise_network(tiny(LIFFireNet)))
    batch = {"input": torch.stack(windows(3)), "end_of_recording": torch.zeros(3, 2, dtype=torch.bool)}
    assert calibrate(stateful, [batch, batch]) == 6
    assert stateful.state is None
    recurrent = stateful.network.layers.G1.synapses.rec  # sees spikes only from a carried state
    assert float(recurrent.input_quant.scale()) != 1.0  # brevitas' initial value: it saw statistics
    with pytest.raises(ValueError, match="no training batch"):
        calibrate(stateful, [])


class FlowOf(nn.Module):
    """One window of a feed-forward network as a graph: ``x -> flow``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)[0]["flow"]


class LIFStep(nn.Module):
    """One time step of a spiking network with its state flattened: ``(x, v_1, z_1, ...) -> (flow, v_1', z_1', ...)``."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        out, new = self.network(x, [state[i : i + 2] for i in range(0, len(state), 2)])
        return (out["flow"], *(t for layer in new for t in layer))


@pytest.mark.parametrize("model", [FireFlowNet, LIFFireNet], ids=["fireflownet", "lif_firenet"])
def test_qcdq_export_runs_in_onnxruntime_and_matches_brevitas(model: type[nn.Module], tmp_path) -> None:
    network = calibrated(quantise_network(tiny(model)), windows(3)).network.eval()
    x = windows(1, batch=1, seed=5)[0]
    if model is LIFFireNet:
        with torch.no_grad():
            _, state = network(x)
        graph = LIFStep(network)
        inputs = (x, *(t for layer in state for t in layer))
    else:
        graph, inputs = FlowOf(network), (x,)
    names = ["x"] + [f"state_{i}" for i in range(len(inputs) - 1)]
    outputs = ["flow"] + [f"state_{i}_out" for i in range(len(inputs) - 1)]
    path = export_qcdq(graph, inputs, names, outputs, tmp_path / "model.onnx")

    model_proto = onnx.load(path)
    ops = {node.op_type for node in model_proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert {node.domain for node in model_proto.graph.node} <= {"", "ai.onnx"}
    assert [i.name for i in model_proto.graph.input] == names
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    results = session.run(None, {name: t.numpy() for name, t in zip(names, inputs, strict=True)})
    with torch.no_grad():
        expected = graph(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    prediction_input = network.prediction.conv.input_quant.scale()
    step_px = float(
        network.prediction.flow_scaling * prediction_input * network.prediction.conv.weight.abs().max()
    )
    flow = torch.from_numpy(results[0])
    assert (flow - expected[0]).abs().max() <= step_px  # within one quantisation step of the prediction
    for got, want in zip(results[1:], expected[1:], strict=True):  # the state: spikes agree
        torch.testing.assert_close(torch.from_numpy(got), want, atol=1e-4, rtol=0)

    with pytest.raises(FileExistsError, match="does not replace"):
        export_qcdq(graph, inputs, names, outputs, path)
    with pytest.raises(ValueError, match="no brevitas quantised layer"):
        export_qcdq(FlowOf(tiny(FireFlowNet)), (x,), ["x"], ["flow"], tmp_path / "float.onnx")
