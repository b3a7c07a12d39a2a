"""Networks: shapes, state handling, gradient flow, parameter counts; bodies built from layer specs."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tinyflow.models import (
    FireFlowNet,
    FireNet,
    FlowHead,
    LayerSpec,
    LIFFireFlowNet,
    LIFFireNet,
    LIFFireNetShort,
    PredictionHead,
    RecurrentBody,
    RecurrentNetwork,
    Skip,
    StatefulNetwork,
)
from tinyflow.models.blocks import ConvGRU, ConvReLU
from tinyflow.models.firenet import SHORT_LAYER_NAMES, firenet_body
from tinyflow.models.heads import gaussian_blur, gaussian_kernel
from tinyflow.models.neurons import NEURON_TYPES, build_spiking_layer
from tinyflow.models.spiking import spiking_layers
from tinyflow.models.stateful import map_state

SMALL = {"num_bins": 2, "base_num_channels": 4, "kernel_size": 3}
# a lower threshold keeps every layer of these 4-channel nets spiking
ACTIVE = {
    "lif": {"thresh_init": (0.3, 0.0)},
    "plif": {"thresh_init": (0.3, 0.0)},
    "snntorch_lif": {"thresh_init": (0.3, 0.0)},
    "if": {"thresh_init": (0.3, 0.0)},
    "alif": {},
    "xlif": {},
}


def spiking(cls, neuron: str) -> Callable[..., RecurrentNetwork]:
    return lambda **kw: cls(**SMALL, neuron=neuron, neuron_kwargs=ACTIVE[neuron], **kw)


NETWORKS: dict[str, Callable[..., RecurrentNetwork]] = {
    "FireNet": lambda **kw: FireNet(**SMALL, **kw),
    "FireFlowNet": lambda **kw: FireFlowNet(**SMALL, **kw),
    **{f"LIFFireNet-{n}": spiking(LIFFireNet, n) for n in NEURON_TYPES},
    **{f"LIFFireNetShort-{n}": spiking(LIFFireNetShort, n) for n in NEURON_TYPES},
    **{f"LIFFireFlowNet-{n}": spiking(LIFFireFlowNet, n) for n in NEURON_TYPES},
}
STATEFUL = [name for name in NETWORKS if name != "FireFlowNet"]
SPIKING = [name for name in NETWORKS if name.startswith("LIF")]


@pytest.fixture(autouse=True)
def seed() -> None:
    torch.manual_seed(0)


def windows(count: int, batch: int = 3) -> list[torch.Tensor]:
    """Per-polarity event counts [B, 2, 8, 8], about half the pixels with events."""
    return [torch.randint(0, 3, (batch, 2, 8, 8)).float() for _ in range(count)]


@pytest.mark.parametrize("name", NETWORKS)
def test_output_shapes_and_activity(name: str) -> None:
    net = NETWORKS[name]()
    (x,) = windows(1)
    out, state = net(x, None)
    assert out["flow"].shape == (3, 2, 8, 8)
    assert list(out["activity"]) == net.layer_names
    assert len(state) == len(net.layer_names)
    for activity in out["activity"].values():
        assert activity.shape == (3, 4, 8, 8)
        if name in SPIKING:
            assert set(activity.unique().tolist()) <= {0.0, 1.0}


def test_layer_order_follows_event_flow() -> None:
    assert LIFFireNet(**SMALL).layer_names == ["head", "G1", "R1a", "R1b", "G2", "R2a", "R2b"]
    assert FireFlowNet(**SMALL).layer_names == ["head", "G1", "R1a", "R1b", "G2", "R2a", "R2b"]
    assert LIFFireNetShort(**SMALL).layer_names == ["head", "G1", "R1a", "G2", "R2a"]


@pytest.mark.parametrize("cls", [LIFFireNet, LIFFireNetShort, LIFFireFlowNet])
def test_only_g_layers_of_recurrent_nets_have_recurrent_weights(cls) -> None:
    net = cls(**SMALL)
    for name, layer in net.layers.items():
        has_rec = layer.synapses.rec is not None
        assert has_rec == (cls is not LIFFireFlowNet and name.startswith("G")), name


@pytest.mark.parametrize("name", ["FireNet", "LIFFireNet-lif", "LIFFireFlowNet-alif"])
def test_flow_is_scaled_tanh_masked_by_events(name: str) -> None:
    net = NETWORKS[name](mask_output=True, flow_scaling=5.0)
    (x,) = windows(1)
    x[:, :, :3] = 0  # no events in the top three rows
    out = net(x, None)[0]
    flow = out["flow"]
    unmasked = 5.0 * torch.tanh(net.prediction.conv(out["activity"]["R2b"]))
    has_events = (x != 0).any(dim=1, keepdim=True).expand_as(flow)
    assert torch.all(flow[~has_events] == 0)
    assert unmasked[~has_events].abs().sum() > 0  # the mask removed something
    assert torch.allclose(flow[has_events], unmasked[has_events])


@pytest.mark.parametrize("name", NETWORKS)
def test_state_carried_across_windows_changes_output(name: str) -> None:
    net = NETWORKS[name]()
    (x,) = windows(1)
    first, state = net(x, None)
    second, _ = net(x, state)
    again, _ = net(x, None)
    assert torch.equal(again["flow"], first["flow"])
    if name in STATEFUL:
        assert not torch.allclose(second["flow"], first["flow"])
    else:
        assert all(layer_state is None for layer_state in state)
        assert torch.equal(second["flow"], first["flow"])


@pytest.mark.parametrize("name", STATEFUL)
def test_reset_state_mask_resets_only_masked_elements(name: str) -> None:
    net = NETWORKS[name]()
    x1, x2, x3 = windows(3)
    stateful = StatefulNetwork(net)
    stateful(x1)
    stateful(x2)
    carried_state = stateful.state
    mask = torch.tensor([True, False, True])
    stateful.reset_state(mask)
    flow = stateful(x3)["flow"]
    fresh = net(x3, None)[0]["flow"]
    continued = net(x3, carried_state)[0]["flow"]
    assert torch.allclose(flow[mask], fresh[mask])
    assert torch.allclose(flow[~mask], continued[~mask])
    assert not torch.allclose(fresh[mask], continued[mask])  # the reset mattered
    stateful.reset_state()
    assert stateful.state is None


@pytest.mark.parametrize("name", ["FireNet", *SPIKING])
def test_detach_state_cuts_the_graph_to_earlier_windows(name: str) -> None:
    for detach in (True, False):
        x1, x2 = windows(2)
        x1.requires_grad_()
        stateful = StatefulNetwork(NETWORKS[name]())
        stateful(x1)
        if detach:
            stateful.detach_state()
        stateful(x2)["flow"].sum().backward()
        if detach:
            assert x1.grad is None
        else:
            assert x1.grad is not None and x1.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_every_parameter(name: str) -> None:
    net = NETWORKS[name]()
    state, loss = None, 0.0
    for x in windows(3):
        out, state = net(x, state)
        loss = loss + (torch.rand_like(out["flow"]) * out["flow"]).sum()
    loss.backward()
    unreached = [n for n, p in net.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert unreached == []


def test_residual_adds_g_output_to_r_block_output() -> None:
    plain = LIFFireNet(**SMALL, neuron_kwargs=ACTIVE["lif"])
    residual = LIFFireNet(**SMALL, neuron_kwargs=ACTIVE["lif"], residual=True)
    residual.load_state_dict(plain.state_dict())
    (x,) = windows(1)
    a, b = plain(x, None)[0]["activity"], residual(x, None)[0]["activity"]
    for name in ["head", "G1", "R1a", "R1b"]:
        assert torch.equal(a[name], b[name])
    g2 = residual.layers["G2"]
    assert torch.equal(b["G2"], g2(b["R1b"] + b["G1"], None)[0])
    assert not torch.equal(a["G2"], b["G2"])


def conv_params(c_in: int, c_out: int, k: int, bias: bool) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


NEURON_PARAMS_PER_CHANNEL = {"lif": 2, "plif": 4, "alif": 2, "xlif": 2, "snntorch_lif": 2, "if": 0}


@pytest.mark.parametrize("neuron", sorted(NEURON_TYPES))
def test_parameter_counts_at_default_sizes(neuron: str) -> None:
    c, pred = 32, conv_params(32, 2, 1, True)
    head = conv_params(2, c, 3, False)
    ff = conv_params(c, c, 3, False)
    neuron_params = NEURON_PARAMS_PER_CHANNEL[neuron] * c
    expected = {
        LIFFireNet: head + 2 * 2 * ff + 4 * ff + 7 * neuron_params + pred,
        LIFFireNetShort: head + 2 * 2 * ff + 2 * ff + 5 * neuron_params + pred,
        LIFFireFlowNet: head + 6 * ff + 7 * neuron_params + pred,
    }
    for cls, count in expected.items():
        assert sum(p.numel() for p in cls(neuron=neuron).parameters()) == count, cls.__name__
    if neuron == "lif":
        assert (expected[LIFFireNet], expected[LIFFireNetShort], expected[LIFFireFlowNet]) == (
            74818,
            56258,
            56386,
        )


def test_ann_parameter_counts_at_default_sizes() -> None:
    c, pred = 32, conv_params(32, 2, 1, True)
    gru = 3 * conv_params(2 * c, c, 3, True)
    firenet = conv_params(2, c, 3, True) + 2 * gru + 4 * conv_params(c, c, 3, True) + pred
    fireflownet = conv_params(2, c, 3, True) + 6 * conv_params(c, c, 3, True) + pred
    assert sum(p.numel() for p in FireNet().parameters()) == firenet == 148450
    assert sum(p.numel() for p in FireFlowNet().parameters()) == fireflownet == 56162


def test_hydra_instantiates_from_config_containers() -> None:
    cfg = OmegaConf.create(
        {
            "_target_": "tinyflow.models.StatefulNetwork",
            "network": {
                "_target_": "tinyflow.models.LIFFireNet",
                "base_num_channels": 4,
                "neuron": "plif",
                "neuron_kwargs": {"leak_init": [-3.0, 0.0], "hard_reset": False},
                "mask_output": True,
            },
        }
    )
    model = instantiate(cfg)
    head = model.network.layers["head"]
    assert not head.hard_reset
    assert torch.allclose(head.leak_logit, torch.full_like(head.leak_logit, -3.0))
    assert model(windows(1)[0])["flow"].shape == (3, 2, 8, 8)


def test_bad_inputs_raise_clear_errors() -> None:
    net = LIFFireNet(**SMALL)
    with pytest.raises(ValueError, match=r"input shape \(3, 4, 8, 8\): expected \[B, 2, H, W\]"):
        net(torch.zeros(3, 4, 8, 8), None)
    with pytest.raises(ValueError, match="state has 2 entries, expected 7"):
        net(torch.zeros(3, 2, 8, 8), [None, None])
    with pytest.raises(ValueError, match="neuron='relu'"):
        LIFFireNet(**SMALL, neuron="relu")
    stateful = StatefulNetwork(net)
    stateful(torch.zeros(3, 2, 8, 8))
    with pytest.raises(ValueError, match="expected bool"):
        stateful.reset_state(torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="mask has 2 elements, state batch size is 3"):
        stateful.reset_state(torch.tensor([True, False]))
    with pytest.raises(ValueError, match="mask has 2 elements, state batch size is 3"):
        stateful.reset_state(torch.tensor([False, False]))  # checked also when nothing is reset


@pytest.mark.parametrize("name", STATEFUL)
def test_a_mask_without_true_keeps_the_state_tensors(name: str) -> None:
    stateful = StatefulNetwork(NETWORKS[name]())
    stateful(windows(1)[0])
    before = _tensors(stateful.state)
    stateful.reset_state(torch.zeros(3, dtype=torch.bool))
    after = _tensors(stateful.state)
    assert len(after) == len(before) > 0 and all(a is b for a, b in zip(after, before, strict=True))


def _tensors(state: object) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    map_state(lambda t: found.append(t) or t, state)
    return found


def test_prediction_without_bias_gives_zero_flow_for_silent_features() -> None:
    network = LIFFireNet(num_bins=2, base_num_channels=4, prediction_bias=False)
    assert network.prediction.conv.bias is None
    out, _ = network(torch.zeros(1, 2, 8, 8), None)
    assert torch.equal(out["flow"], torch.zeros(1, 2, 8, 8))


@pytest.mark.parametrize(
    ("network_class", "scale", "bound"),
    [
        (LIFFireNet, None, 0.01),  # event_flow's init of its spiking nets
        (LIFFireNet, 0.25, 0.25),
        (FireNet, None, 0.5),  # PyTorch's default: 1 / sqrt(4 channels)
        (FireNet, 0.01, 0.01),
    ],
)
def test_prediction_init_scale_bounds_the_initial_prediction_weights(
    network_class: Callable[..., torch.nn.Module], scale: float | None, bound: float
) -> None:
    kwargs = {} if scale is None else {"prediction_init_scale": scale}
    torch.manual_seed(0)
    weight = network_class(num_bins=2, base_num_channels=4, **kwargs).prediction.conv.weight
    assert float(weight.abs().max()) <= bound
    assert float(weight.abs().max()) > 0.5 * bound  # 8 uniform draws: the largest is near the bound


def test_gaussian_blur_keeps_constant_maps_and_spreads_an_impulse_by_the_kernel() -> None:
    kernel = gaussian_kernel(1.5)
    assert kernel.numel() == 11 and torch.isclose(kernel.sum(), torch.tensor(1.0))
    constant = torch.full((2, 2, 9, 13), -0.7)
    assert torch.allclose(gaussian_blur(constant, kernel), constant, atol=1e-6)  # borders included
    impulse = torch.zeros(1, 1, 21, 21)
    impulse[0, 0, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, kernel)[0, 0]  # far from the borders: the 2-D Gaussian itself
    offsets = torch.arange(-10, 11, dtype=torch.float32)
    expected = torch.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / 1.5**2)
    expected[(offsets.abs() > 5)[:, None] | (offsets.abs() > 5)[None, :]] = 0.0  # cut at 3 sigma
    assert torch.allclose(blurred, expected / expected.sum(), atol=1e-7)


def test_smoothed_flow_head_blurs_before_tanh_and_keeps_its_state_dict() -> None:
    torch.manual_seed(0)
    plain = FlowHead(4, flow_scaling=5.0)
    smoothed = FlowHead(4, flow_scaling=5.0, smoothing_px=2.0)
    smoothed.load_state_dict(plain.state_dict())  # the kernel is fixed: no new state-dict entry
    features = torch.randn(2, 4, 16, 16)
    logits = plain.conv(features)
    expected = 5.0 * torch.tanh(gaussian_blur(logits, gaussian_kernel(2.0)))
    assert torch.allclose(smoothed(features), expected, atol=1e-6)
    assert smoothed(features).diff(dim=-1).abs().mean() < 0.5 * plain(features).diff(dim=-1).abs().mean()
    network = LIFFireNet(**SMALL, prediction_smoothing_px=1.0)
    assert network.prediction.smoothing.sigma_px == 1.0
    with pytest.raises(ValueError, match=r"smoothing_px=0\.0: expected a positive standard deviation"):
        FlowHead(4, flow_scaling=1.0, smoothing_px=0.0)


def test_state_dict_keys_are_those_of_earlier_checkpoints() -> None:
    keys = list(LIFFireNet(**SMALL).state_dict())
    assert keys[:5] == [
        "layers.head.leak_logit",
        "layers.head.thresh",
        "layers.head.synapses.ff.weight",
        "layers.G1.leak_logit",
        "layers.G1.thresh",
    ]
    assert "layers.G1.synapses.rec.weight" in keys
    assert keys[-2:] == ["prediction.conv.weight", "prediction.conv.bias"]
    assert list(FireNet(**SMALL).state_dict())[:2] == ["layers.head.conv.weight", "layers.head.conv.bias"]


# ---- bodies built from layer specs: skips that add or concatenate, strided and upsampling layers ----

relu = partial(ConvReLU, kernel_size=3)
spiking_relu_like = partial(build_spiking_layer, "lif", kernel_size=3, recurrent=True, thresh_init=(0.3, 0.0))


def test_concatenating_skips_add_up_channels() -> None:
    body = RecurrentBody(
        2,
        [
            LayerSpec("a", 4, relu),
            LayerSpec("b", 6, relu, skip=Skip("a", mode="concat")),  # features: cat(b, a) = 10 channels
            LayerSpec("c", 3, relu, skip=Skip("a", mode="concat", into="input")),  # input: cat(10, a) = 14
        ],
    )
    assert body["b"].conv.in_channels == 4
    assert body["c"].conv.in_channels == 14
    assert body.out_channels == 3
    (x,) = windows(1)
    features, activity, state = body(x, None)
    a, b, c = activity["a"], activity["b"], activity["c"]
    assert (a.shape[1], b.shape[1], c.shape[1]) == (4, 6, 3)  # activity: each layer's own output
    assert torch.equal(b, body["b"](a, None)[0])
    assert torch.equal(c, body["c"](torch.cat([b, a, a], dim=1), None)[0])
    assert torch.equal(features, c) and state == [None, None, None]


def test_strided_encoders_and_upsampling_decoders_restore_the_resolution() -> None:
    """A small U-Net as EV-FlowNet / StereoSpike: decoders take cat(x, encoder output) and upsample."""
    body = RecurrentBody(
        2,
        [
            LayerSpec("E1", 4, spiking_relu_like, stride=2),  # 1/2
            LayerSpec("E2", 8, spiking_relu_like, stride=2),  # 1/4
            LayerSpec("R", 8, relu, skip=Skip("E2")),  # residual at 1/4
            LayerSpec("D1", 4, relu, upsample=2, skip=Skip("E2", mode="concat", into="input")),  # 1/2
            LayerSpec("D2", 4, relu, upsample=2, skip=Skip("E1", mode="concat", into="input")),  # 1/1
        ],
    )
    assert (body["D1"].conv.in_channels, body["D2"].conv.in_channels) == (16, 8)
    assert body.out_scale == 1 and body.out_channels == 4
    net = RecurrentNetwork(body=body, head=FlowHead(4, flow_scaling=3.0), mask_output=True)
    x1, x2 = windows(2)
    _, state = net(x1, None)
    out2, state2 = net(x2, state)
    assert out2["flow"].shape == (3, 2, 8, 8)
    sizes = {name: tuple(a.shape[1:]) for name, a in out2["activity"].items()}
    assert sizes == {"E1": (4, 4, 4), "E2": (8, 2, 2), "R": (8, 2, 2), "D1": (4, 4, 4), "D2": (4, 8, 8)}
    assert state2[0][0].shape == (3, 4, 4, 4) and not torch.equal(state2[0][0], state[0][0])
    assert body.size_divisor == net.size_divisor == 4 and body.strides == {"E1": 2, "E2": 2}
    for size in (6, 7):  # the network checks the size first, naming the divisor and the strided layers
        with pytest.raises(
            ValueError,
            match=rf"input of {size}x{size} pixels .*multiples of 4, the network's total downsampling "
            r"\(E1 /2, E2 /2\)",
        ):
            net(torch.ones(1, 2, size, size), None)
    with pytest.raises(ValueError, match=r"skip 'E1' -> 'D2': source \(3, 3\), target \(4, 4\).*divisible"):
        body(torch.ones(1, 2, 6, 6), None)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([LayerSpec("a", 4, relu, skip=Skip("b"))], r"skip 'b' -> 'a': the source must be an earlier layer"),
        ([LayerSpec("a", 4, relu), LayerSpec("a", 4, relu)], "layer name 'a' used twice"),
        (
            [LayerSpec("a", 4, relu), LayerSpec("b", 6, relu, skip=Skip("a"))],
            r"skip 'a' -> 'b' \(add into the output\): 'a' has 4 channels, the target's output 6",
        ),
        (
            [LayerSpec("a", 4, relu), LayerSpec("b", 4, relu, stride=2, skip=Skip("a", mode="concat"))],
            r"'a' is at the input resolution, the target's output at 1/2 of the input resolution",
        ),
        (
            [  # an input skip merges before the target's upsampling: at b's 1/2, not at the full resolution
                LayerSpec("a", 4, relu),
                LayerSpec("b", 4, relu, stride=2),
                LayerSpec("c", 4, relu, upsample=2, skip=Skip("a", into="input")),
            ],
            r"'a' is at the input resolution, the target's input at 1/2 of the input resolution",
        ),
        ([LayerSpec("a", 4, relu, stride=0)], r"layer 'a': stride=0: expected an integer >= 1"),
        ([LayerSpec("a", 4, relu, upsample=2, upsample_mode="cubic")], "upsample_mode='cubic'"),
        ([], "expected at least one layer"),
    ],
)
def test_invalid_body_specs_raise_clear_errors(specs: list[LayerSpec], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecurrentBody(2, specs)


def test_invalid_skips_heads_and_strides_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="mode='sum': expected one of"):
        Skip("a", mode="sum")
    with pytest.raises(ValueError, match="into='middle': expected one of"):
        Skip("a", into="middle")
    one_layer = RecurrentBody(2, [LayerSpec("a", 4, relu)])
    with pytest.raises(ValueError, match="FlowHead takes 8 channels, the body gives 4"):
        RecurrentNetwork(body=one_layer, head=FlowHead(8, flow_scaling=1.0))
    strided = RecurrentBody(2, [LayerSpec("a", 4, relu, stride=2)])
    with pytest.raises(ValueError, match="the body ends at 1/2 of the input resolution"):
        RecurrentNetwork(body=strided, head=FlowHead(4, flow_scaling=1.0))
    with pytest.raises(ValueError, match="ConvGRU: stride=2"):
        RecurrentBody(2, [LayerSpec("g", 4, partial(ConvGRU, kernel_size=3), stride=2)])
    with pytest.raises(ValueError, match=r"residual skips land on \['R1b', 'R2b'\]"):
        firenet_body(2, 4, feedforward=relu, recurrent=relu, names=SHORT_LAYER_NAMES, residual=True)


def test_a_head_names_its_output() -> None:
    """Another head (a depth head, say) plugs into the same network; its prediction is out[output_key]."""

    class MeanDepth(PredictionHead):
        output_key = "depth"

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return features.mean(dim=1, keepdim=True)

    net = RecurrentNetwork(body=RecurrentBody(2, [LayerSpec("a", 4, relu)]), head=MeanDepth(4))
    out, _ = net(windows(1)[0], None)
    assert list(out) == ["depth", "activity"] and out["depth"].shape == (3, 1, 8, 8)


@pytest.mark.parametrize("name", NETWORKS)
def test_spiking_layers_satisfy_the_spike_statistics_protocol(name: str) -> None:
    net = NETWORKS[name]()
    expected = [f"layers.{layer}" for layer in net.layer_names] if name in SPIKING else []
    assert list(spiking_layers(net)) == expected


def test_networks_copy_and_pickle() -> None:
    net = LIFFireNet(**SMALL, residual=True)
    (x,) = windows(1)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert torch.equal(clone(x, None)[0]["flow"], net(x, None)[0]["flow"])
