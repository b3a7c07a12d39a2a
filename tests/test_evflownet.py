"""EV-FlowNet family, TinyCMax's ConvGRU network, their blocks, and the multi-scale flow and its loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from tinyflow.cmax import CMaxLinearLoss
from tinyflow.models import (
    ConvGRUFlowNet,
    EVFlowNet,
    LayerSpec,
    LIFEVFlowNet,
    RecEVFlowNet,
    RecurrentBody,
    RecurrentNetwork,
    Skip,
    StatefulNetwork,
)
from tinyflow.models.blocks import ConvLayer, ConvLSTM, ConvReLU, ResidualBlock, TorchStyleConvGRU
from tinyflow.models.neurons import NEURON_TYPES
from tinyflow.models.spiking import spiking_layers
from tinyflow.tasks import FlowTask

C = 4  # base_num_channels of the small test networks
SMALL = {"num_bins": 2, "base_num_channels": C, "flow_scaling": 16.0}
ACTIVE = {  # lower thresholds keep the layers of these small nets spiking
    "lif": {"thresh_init": (0.2, 0.0)},
    "plif": {"thresh_init": (0.2, 0.0)},
    "snntorch_lif": {"thresh_init": (0.2, 0.0)},
    "if": {"thresh_init": (0.2, 0.0)},
    "alif": {"adapt_thresh_init": (0.5, 0.0)},
    "xlif": {"adapt_thresh_init": (0.5, 0.0)},
}

NETWORKS: dict[str, Callable[..., RecurrentNetwork]] = {
    "EVFlowNet": lambda **kw: EVFlowNet(**SMALL, **kw),
    "RecEVFlowNet-convgru": lambda **kw: RecEVFlowNet(**SMALL, **kw),
    "RecEVFlowNet-convlstm": lambda **kw: RecEVFlowNet(**SMALL, recurrent_block="convlstm", **kw),
    **{
        f"LIFEVFlowNet-{n}": partial(LIFEVFlowNet, **SMALL, neuron=n, neuron_kwargs=ACTIVE[n])
        for n in NEURON_TYPES
    },
    "ConvGRUFlowNet": lambda **kw: ConvGRUFlowNet(num_bins=2, base_num_channels=8, **kw),
}
EV_FLOWNETS = [name for name in NETWORKS if "EVFlowNet" in name]
SPIKING = [name for name in NETWORKS if name.startswith("LIF")]
ENCODERS = ["E1", "E2", "E3", "E4"]
RECURRENT = ["G1", "G2", "G3", "G4"]
DECODERS = ["D1", "P1", "D2", "P2", "D3", "P3", "D4"]


@pytest.fixture(autouse=True)
def seed() -> None:
    torch.manual_seed(0)


def windows(count: int, size: int = 32, batch: int = 2) -> list[torch.Tensor]:
    """Per-polarity event counts [B, 2, size, size], about half the pixels with events."""
    return [torch.randint(0, 3, (batch, 2, size, size)).float() for _ in range(count)]


def stateful_layers(name: str, net: RecurrentNetwork) -> list[str]:
    if name.startswith("RecEVFlowNet"):
        return RECURRENT
    if name == "ConvGRUFlowNet":
        return ["memory"]
    if name in SPIKING:
        return [layer for layer in net.layer_names if not layer.startswith("P")]
    return []


def first_tensor(state) -> torch.Tensor:
    while not isinstance(state, torch.Tensor):
        state = state[0]
    return state


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", NETWORKS)
def test_two_windows_with_state_carried(name: str, size: int) -> None:
    net = NETWORKS[name]()
    x1, x2 = windows(2, size)
    out1, state1 = net(x1, None)
    out2, state2 = net(x2, state1)
    again, _ = net(x1, None)
    assert torch.equal(again["flow"], out1["flow"])
    for out in (out1, out2):
        assert out["flow"].shape == (2, 2, size, size) and torch.isfinite(out["flow"]).all()
        assert list(out["activity"]) == net.layer_names
    holding = [layer for layer, s in zip(net.layer_names, state1, strict=True) if s is not None]
    assert holding == stateful_layers(name, net)
    for layer, before, after in zip(net.layer_names, state1, state2, strict=True):
        if before is not None:
            assert not torch.equal(first_tensor(before), first_tensor(after)), f"{name}: {layer} unchanged"
    if holding:  # the carried state changes the output
        assert not torch.allclose(net(x2, None)[0]["flow"], out2["flow"])


def test_layer_order_follows_event_flow() -> None:
    residual = ["R1", "R2"]
    assert EVFlowNet(**SMALL).layer_names == [*ENCODERS, *residual, *DECODERS]
    interleaved = [layer for pair in zip(ENCODERS, RECURRENT, strict=True) for layer in pair]
    assert RecEVFlowNet(**SMALL).layer_names == [*interleaved, *residual, *DECODERS]
    spiking_residual = ["R1a", "R1b", "R2a", "R2b"]
    assert LIFEVFlowNet(**SMALL).layer_names == [*interleaved, *spiking_residual, *DECODERS]
    assert ConvGRUFlowNet(base_num_channels=8).layer_names == ["head", "res1", "res2", "memory", "decoder"]


@pytest.mark.parametrize("name", EV_FLOWNETS)
def test_channels_and_resolutions_of_the_u_net(name: str) -> None:
    """event_flow: encoders to 2C, 4C, 8C, 16C at 1/2 .. 1/16; decoders take 2 * channels (+ 2 for the
    prediction of the scale before) and give 8C, 4C, 2C, C at 1/8 .. 1/1."""
    net = NETWORKS[name]()
    out, _ = net(windows(1, 32)[0], None)
    shapes = {layer: tuple(a.shape[1:]) for layer, a in out["activity"].items()}
    for i, layer in enumerate(ENCODERS, start=1):
        assert shapes[layer] == (C * 2**i, 32 // 2**i, 32 // 2**i)
    for i, layer in enumerate(["D1", "D2", "D3", "D4"], start=1):
        assert shapes[layer] == (C * 2 ** (4 - i), 4 * 2 ** (i - 1), 4 * 2 ** (i - 1))
    for i, layer in enumerate(["P1", "P2", "P3"], start=1):
        assert shapes[layer] == (2, 4 * 2 ** (i - 1), 4 * 2 ** (i - 1))

    def in_channels(layer: str) -> int:
        module = net.layers[layer]
        return (module.conv if hasattr(module, "conv") else module.synapses.ff).in_channels

    assert [in_channels(d) for d in ["D1", "D2", "D3", "D4"]] == [
        2 * 16 * C,
        2 * 8 * C + 2,
        2 * 4 * C + 2,
        2 * 2 * C + 2,
    ]
    assert in_channels("E1") == 2


def test_decoder_input_is_prediction_then_decoder_then_encoder() -> None:
    """event_flow's MultiResUNet: ``x = cat(x, encoder block)``, ``x = cat(prediction, x)``, then upsample + conv."""
    net = EVFlowNet(**SMALL)
    (x,) = windows(1)
    a = net(x, None)[0]["activity"]
    merged = torch.cat([a["P1"], a["D1"], a["E3"]], dim=1)
    upsampled = F.interpolate(merged, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(net.layers["D2"](upsampled)[0], a["D2"])
    first = F.interpolate(
        torch.cat([a["R2"], a["E4"]], dim=1), scale_factor=2, mode="bilinear", align_corners=False
    )
    assert torch.allclose(net.layers["D1"](first)[0], a["D1"])
    assert torch.allclose(a["P1"], torch.tanh(net.layers["P1"].conv(a["D1"])))


def test_spiking_residual_blocks_add_the_block_input_to_the_last_spikes() -> None:
    """event_flow's SpikingResidualBlock: ``conv2(conv1(x)) spikes + x``; first window (zero state)."""
    net = NETWORKS["LIFEVFlowNet-lif"]()
    (x,) = windows(1)
    a = net(x, None)[0]["activity"]
    block1 = a["R1b"] + a["G4"]
    assert torch.equal(a["R1a"], net.layers["R1a"](a["G4"], None)[0])
    assert torch.equal(a["R2a"], net.layers["R2a"](block1, None)[0])
    block2 = a["R2b"] + block1
    decoder_input = F.interpolate(
        torch.cat([block2, a["G4"]], dim=1), scale_factor=2, mode="bilinear", align_corners=False
    )
    assert torch.equal(a["D1"], net.layers["D1"](decoder_input, None)[0])
    assert block2.max() > 1  # not binary: the residual adds spikes to spikes


@pytest.mark.parametrize("name", SPIKING)
def test_spiking_layers_are_all_but_the_predictions(name: str) -> None:
    net = NETWORKS[name]()
    neuron = name.split("-")[1]
    expected = [f"layers.{layer}" for layer in net.layer_names if not layer.startswith("P")]
    assert list(spiking_layers(net)) == expected
    assert all(isinstance(layer, NEURON_TYPES[neuron]) for layer in spiking_layers(net).values())
    recurrent = [
        layer for layer in net.layer_names if getattr(net.layers[layer], "synapses", None) is not None
    ]
    assert [n for n in recurrent if net.layers[n].synapses.rec is not None] == RECURRENT
    out, _ = net(windows(1)[0], None)
    for layer in expected:
        activity = out["activity"][layer.removeprefix("layers.")]
        assert set(activity.unique().tolist()) <= {0.0, 1.0}
        assert activity.sum() > 0, f"{layer} is silent"
    assert isinstance(net.layers["P1"], ConvLayer) and net.layers["P1"].activation == "tanh"
    assert float(net.prediction.conv.weight.detach().abs().max()) <= 0.01  # event_flow's w_scale_pred


@pytest.mark.parametrize("name", EV_FLOWNETS)
def test_flow_scales_are_coarsest_first_at_full_resolution(name: str) -> None:
    net = NETWORKS[name]()
    (x,) = windows(1, 64)
    out, _ = net(x, None)
    scales = out["flow_scales"]
    assert len(scales) == 4 and scales[-1] is out["flow"]
    assert all(flow.shape == (2, 2, 64, 64) for flow in scales)
    for flow, layer, block in zip(scales[:3], ["P1", "P2", "P3"], [8, 4, 2], strict=True):
        raw = out["activity"][layer]
        assert raw.shape[-1] == 64 // block
        expected = 16.0 * raw.repeat_interleave(block, dim=-2).repeat_interleave(block, dim=-1)
        assert torch.allclose(flow, expected)  # nearest upsampling, values in full-resolution pixels


def test_a_coarse_flow_is_upsampled_without_rescaling_by_hand() -> None:
    """P1 (1/8 resolution) says tanh 0.25 in x at its pixel (row 1, column 2): with flow_scaling 16 that is
    4 px at full resolution on the full-resolution pixels rows 8-15, columns 16-23 (event_flow: the same
    flow_scaling for every scale, nearest upsampling, no factor 8)."""
    net = EVFlowNet(**SMALL)
    coarse = torch.zeros(1, 2, 4, 4)
    coarse[0, 0, 1, 2] = 0.25
    net.layers["P1"].register_forward_hook(lambda module, args, output: (coarse, None))
    out, _ = net(torch.ones(1, 2, 32, 32), None)
    flow = out["flow_scales"][0]
    expected = torch.zeros(1, 2, 32, 32)
    expected[0, 0, 8:16, 16:24] = 4.0
    assert torch.equal(flow, expected)


def test_mask_output_masks_every_scale() -> None:
    net = EVFlowNet(**SMALL, mask_output=True)
    (x,) = windows(1)
    x[:, :, :8] = 0  # no events in the top eight rows
    out, _ = net(x, None)
    has_events = (x != 0).any(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    for flow in out["flow_scales"]:
        assert torch.all(flow[~has_events] == 0) and flow[has_events].abs().sum() > 0


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_every_parameter(name: str) -> None:
    net = NETWORKS[name]()
    state, loss = None, 0.0
    for x in windows(2):
        out, state = net(x, state)
        for flow in out.get("flow_scales", [out["flow"]]):
            loss = loss + (torch.rand_like(flow) * flow).sum()
    loss.backward()
    unreached = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert unreached == []


@pytest.mark.parametrize("name", [n for n in NETWORKS if n != "EVFlowNet"])
def test_reset_state_mask_resets_only_masked_elements(name: str) -> None:
    net = NETWORKS[name]()
    x1, x2, x3 = windows(3, batch=3)
    stateful = StatefulNetwork(net)
    stateful(x1)
    stateful(x2)
    carried = stateful.state
    mask = torch.tensor([True, False, True])
    stateful.reset_state(mask)
    flow = stateful(x3)["flow"]
    assert torch.allclose(flow[mask], net(x3, None)[0]["flow"][mask])
    assert torch.allclose(flow[~mask], net(x3, carried)[0]["flow"][~mask])


def test_convlstm_state_is_hidden_and_cell() -> None:
    net = RecEVFlowNet(**SMALL, recurrent_block="convlstm")
    _, state = net(windows(1)[0], None)
    g1 = state[net.layer_names.index("G1")]
    assert isinstance(g1, tuple) and len(g1) == 2 and g1[0].shape == g1[1].shape == (2, 2 * C, 16, 16)
    assert isinstance(net.layers["G1"], ConvLSTM)


@pytest.mark.parametrize(
    ("network", "size", "divisor", "strided"),
    [
        (lambda: EVFlowNet(**SMALL), (24, 32), 16, r"E1 /2, E2 /2, E3 /2, E4 /2"),
        (lambda: LIFEVFlowNet(**SMALL, num_encoders=3), (32, 20), 8, r"E1 /2, E2 /2, E3 /2"),
        (lambda: ConvGRUFlowNet(base_num_channels=8), (36, 36), 8, r"head /2, res1 /2, res2 /2"),
    ],
)
def test_input_size_must_be_a_multiple_of_the_downsampling(network, size, divisor, strided) -> None:
    net = network()
    height, width = size
    with pytest.raises(
        ValueError, match=rf"input of {height}x{width} pixels .*multiples of {divisor}.*\({strided}\)"
    ):
        net(torch.zeros(1, 2, height, width), None)
    assert net.size_divisor == divisor


def test_settings_a_model_does_not_take_fail_naming_both() -> None:
    for cls in (EVFlowNet, RecEVFlowNet):
        with pytest.raises(ValueError, match=rf"{cls.__name__}: neuron='lif'.*ANN"):
            cls(**SMALL, neuron="lif")
    with pytest.raises(ValueError, match=r"ConvGRUFlowNet: neuron='alif'.*ANN"):
        ConvGRUFlowNet(neuron="alif")
    with pytest.raises(ValueError, match=r"EVFlowNet: recurrent_block='convgru'.*model=rec_evflownet"):
        EVFlowNet(**SMALL, recurrent_block="convgru")
    with pytest.raises(ValueError, match=r"LIFEVFlowNet: recurrent_block='convlstm'"):
        LIFEVFlowNet(**SMALL, recurrent_block="convlstm")
    with pytest.raises(
        ValueError, match=r"RecEVFlowNet: recurrent_block='lstm': expected one of \['convgru', 'convlstm'\]"
    ):
        RecEVFlowNet(**SMALL, recurrent_block="lstm")
    with pytest.raises(ValueError, match=r"LIFEVFlowNet: neuron='lyf': expected one of"):
        LIFEVFlowNet(**SMALL, neuron="lyf")
    with pytest.raises(
        ValueError, match=r"LIFEVFlowNet: neuron='alif': neuron_kwargs.thresh_init is not a setting"
    ):
        LIFEVFlowNet(**SMALL, neuron="alif", neuron_kwargs={"thresh_init": (0.5, 0.1)})
    with pytest.raises(ValueError, match=r"ConvGRUFlowNet: base_num_channels=6: expected a multiple of 4"):
        ConvGRUFlowNet(base_num_channels=6)
    with pytest.raises(ValueError, match=r"EVFlowNet: num_encoders=0: expected an integer >= 1"):
        EVFlowNet(**SMALL, num_encoders=0)


# ---- TinyCMax's network ----


def test_convgru_flownet_follows_tinycmax() -> None:
    net = ConvGRUFlowNet(base_num_channels=8, memory_channels=12, decoder_channels=6)
    (x,) = windows(1, 32)
    out, state = net(x, None)
    shapes = {layer: tuple(a.shape[1:]) for layer, a in out["activity"].items()}
    assert shapes == {
        "head": (2, 16, 16),
        "res1": (4, 8, 8),
        "res2": (8, 4, 4),
        "memory": (12, 4, 4),
        "decoder": (6, 4, 4),
    }
    assert net.layers["head"].conv.kernel_size == (7, 7) and net.layers["res1"].shortcut.stride == (2, 2)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(conv.padding_mode == "reflect" and conv.bias is not None for conv in convs)
    head = net.prediction.conv  # 3x3 to 2 channels, linear, 8x bilinear upsampling, times 32
    coarse = head(out["activity"]["decoder"])
    expected = 32.0 * F.interpolate(coarse, scale_factor=8, mode="bilinear", align_corners=False)
    assert torch.allclose(out["flow"], expected)
    assert torch.equal(state[3], out["activity"]["memory"]) and "flow_scales" not in out


# ---- blocks ----


def test_skip_of_a_layer_input_makes_a_residual_block() -> None:
    relu = partial(ConvReLU, kernel_size=3)
    body = RecurrentBody(
        2,
        [
            LayerSpec("a", 4, relu),
            LayerSpec("b", 4, relu),
            LayerSpec("c", 4, relu, skip=Skip("b", of="input")),  # c(b(x)) + x, x = a's output
        ],
    )
    (x,) = windows(1, 8)
    features, activity, _ = body(x, None)
    assert torch.equal(features, activity["c"] + activity["a"])
    with pytest.raises(
        ValueError,
        match=r"skip 'a' \(its input\) -> 'b' \(add into the output\): 'a' \(its input\) has 2 channels",
    ):
        RecurrentBody(2, [LayerSpec("a", 4, relu), LayerSpec("b", 4, relu, skip=Skip("a", of="input"))])
    with pytest.raises(ValueError, match="of='middle': expected one of"):
        Skip("a", of="middle")


def test_residual_block_shortcut() -> None:
    same = ResidualBlock(4, 4)
    assert same.shortcut is None
    x = torch.randn(2, 4, 8, 8)
    y, state = same(x)
    assert state is None and torch.allclose(y, torch.relu(same.conv2(torch.relu(same.conv1(x))) + x))
    strided = ResidualBlock(4, 6, stride=2)
    y, _ = strided(x)
    assert y.shape == (2, 6, 4, 4)
    assert torch.allclose(y, torch.relu(strided.conv2(torch.relu(strided.conv1(x))) + strided.shortcut(x)))


def test_convlstm_matches_torch_lstm_cell() -> None:
    """With a 1x1 kernel, ConvLSTM is an LSTMCell per pixel (gate order i, f, o, g here; i, f, g, o there)."""
    lstm = ConvLSTM(3, 5, kernel_size=1)
    cell = torch.nn.LSTMCell(3, 5)
    i, f, o, g = lstm.gates.weight[:, :, 0, 0].detach().chunk(4)
    bias_i, bias_f, bias_o, bias_g = lstm.gates.bias.detach().chunk(4)
    weight = torch.cat([i, f, g, o])
    with torch.no_grad():
        cell.weight_ih.copy_(weight[:, :3])
        cell.weight_hh.copy_(weight[:, 3:])
        cell.bias_ih.copy_(torch.cat([bias_i, bias_f, bias_g, bias_o]))
        cell.bias_hh.zero_()
    x1, x2 = torch.randn(2, 4, 3, 1, 1)
    h, state = lstm(x1, None)
    h, state = lstm(x2, state)
    reference = cell(x1[..., 0, 0])
    reference = cell(x2[..., 0, 0], reference)
    assert torch.allclose(state[0][..., 0, 0], reference[0], atol=1e-6)
    assert torch.allclose(state[1][..., 0, 0], reference[1], atol=1e-6)
    assert torch.equal(h, state[0])


def test_torch_style_convgru_matches_torch_gru_cell_with_the_update_gate_negated() -> None:
    """TinyCMax's h' = (1 - z) h + z n is nn.GRUCell's (1 - z) n + z h with z -> 1 - z (its logits negated)."""
    gru = TorchStyleConvGRU(3, 5, kernel_size=1, padding_mode="reflect")
    cell = torch.nn.GRUCell(3, 5)
    flip = torch.ones(15, 1)
    flip[5:10] = -1  # the update gate's rows
    with torch.no_grad():
        cell.weight_ih.copy_(gru.input_gates.weight[:, :, 0, 0] * flip)
        cell.weight_hh.copy_(gru.hidden_gates.weight[:, :, 0, 0] * flip)
        cell.bias_ih.copy_(gru.input_gates.bias * flip[:, 0])
        cell.bias_hh.copy_(gru.hidden_gates.bias * flip[:, 0])
    x1, x2 = torch.randn(2, 4, 3, 1, 1)
    h, state = gru(x1, None)
    h, state = gru(x2, state)
    reference = cell(x2[..., 0, 0], cell(x1[..., 0, 0]))
    assert torch.allclose(h[..., 0, 0], reference, atol=1e-6) and torch.equal(h, state)


# ---- the training loss sees every scale ----


def events_window(batch: int = 2, size: int = 32, count: int = 200) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randint(0, size, (batch, count), generator=generator).float()
    y = torch.randint(0, size, (batch, count), generator=generator).float()
    t = torch.sort(torch.rand(batch, count, generator=generator), dim=1).values
    p = torch.randint(0, 2, (batch, count), generator=generator).float() * 2 - 1
    return {
        "events": torch.stack([x, y, t, p], dim=-1),
        "event_mask": torch.ones(batch, count, dtype=torch.bool),
    }


def flow_task(network: torch.nn.Module) -> FlowTask:
    return FlowTask(network, partial(CMaxLinearLoss, smoothness_weight=0.01), partial(torch.optim.Adam))


def task_loss(task: FlowTask, output: dict, size: int = 32) -> torch.Tensor:
    task.begin_sequence({"input": torch.zeros(1, 2, 2, size, size)})
    task.accumulate(events_window(size=size), output)
    return task.sequence_loss()


def single_loss(flow: torch.Tensor) -> torch.Tensor:
    """The CMax loss of ``flow`` alone, on the events of :func:`events_window`."""
    window = events_window()
    loss = CMaxLinearLoss((32, 32), smoothness_weight=0.01)
    loss.accumulate(window["events"], window["event_mask"], flow)
    return loss.compute()


def test_the_training_loss_is_the_mean_over_scales_with_one_loss_object_each() -> None:
    task = flow_task(EVFlowNet(**SMALL))
    flows = [torch.randn(2, 2, 32, 32) for _ in range(4)]
    loss = task_loss(task, {"flow": flows[-1], "flow_scales": flows})
    expected = torch.stack([single_loss(flow) for flow in flows]).mean()  # event_flow: loss /= len(flow_list)
    assert torch.allclose(loss, expected)
    assert len({id(scale_loss) for scale_loss in task._sequence_losses}) == 4
    assert sorted(key[1] for key in task._losses) == [0, 1, 2, 3]  # (sensor size, scale)
    single = task_loss(flow_task(EVFlowNet(**SMALL)), {"flow": flows[-1]})
    assert torch.allclose(single, single_loss(flows[-1]))


def test_the_coarsest_scale_alone_carries_gradient_and_moves_the_loss() -> None:
    task = flow_task(EVFlowNet(**SMALL))
    fixed = [torch.randn(2, 2, 32, 32) for _ in range(3)]
    coarsest = (
        (3 * torch.randn(2, 2, 4, 4)).repeat_interleave(8, -1).repeat_interleave(8, -2).requires_grad_()
    )
    loss = task_loss(task, {"flow": fixed[-1], "flow_scales": [coarsest, *fixed]})
    loss.backward()
    assert coarsest.grad is not None and coarsest.grad.abs().sum() > 0
    moved = task_loss(task, {"flow": fixed[-1], "flow_scales": [coarsest.detach() + 2.0, *fixed]})
    assert not math.isclose(float(moved.detach()), float(loss.detach()))


def test_an_ev_flownet_trains_on_every_scale_it_predicts() -> None:
    net = EVFlowNet(**SMALL)
    task = flow_task(net)
    out, _ = net(windows(1)[0], None)
    loss = task_loss(task, out)
    expected = torch.stack([single_loss(flow) for flow in out["flow_scales"]]).mean()
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, single_loss(out["flow"]))
    loss.backward()
    assert net.layers["P1"].conv.weight.grad.abs().sum() > 0
