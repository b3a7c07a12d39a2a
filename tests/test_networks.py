"""Flow networks: shapes, state handling, gradient flow and parameter counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tinyflow.models import (
    FireFlowNet,
    FireNet,
    LIFFireFlowNet,
    LIFFireNet,
    LIFFireNetShort,
    SequentialFlowNetwork,
    StatefulNetwork,
)
from tinyflow.models.neurons import NEURON_TYPES

SMALL = {"num_bins": 2, "base_num_channels": 4, "kernel_size": 3}
# a lower threshold keeps every layer of these 4-channel nets spiking
ACTIVE = {
    "lif": {"thresh_init": (0.3, 0.0)},
    "plif": {"thresh_init": (0.3, 0.0)},
    "snntorch_lif": {"thresh_init": (0.3, 0.0)},
    "alif": {},
    "xlif": {},
}


def spiking(cls, neuron: str) -> Callable[..., SequentialFlowNetwork]:
    return lambda **kw: cls(**SMALL, neuron=neuron, neuron_kwargs=ACTIVE[neuron], **kw)


NETWORKS: dict[str, Callable[..., SequentialFlowNetwork]] = {
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


NEURON_PARAMS_PER_CHANNEL = {"lif": 2, "plif": 4, "alif": 2, "xlif": 2, "snntorch_lif": 2}


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
