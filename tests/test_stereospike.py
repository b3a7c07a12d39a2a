"""StereoSpike: its data path (SEW blocks, additive skips, nearest upsampling), the readout that integrates
the scales, stateless windows, any frame size; branch layers of a body."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinyflow.models import LayerSpec, MultiScaleDepthNetwork, RecurrentBody, Skip, StereoSpike
from tinyflow.models.blocks import ConvLayer
from tinyflow.models.heads import DepthHead
from tinyflow.models.spiking import spiking_layers

SMALL = {"base_num_channels": 4, "neuron_kwargs": {"thresh_init": (0.3, 0.0)}}


def events(shape=(2, 4, 32, 32), seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 2.0 * (torch.rand(shape, generator=generator) < 0.2)


def layer_inputs(network: StereoSpike, x: torch.Tensor) -> tuple[dict, dict[str, torch.Tensor]]:
    """The network's output and what each layer received."""
    received: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(lambda _m, args, _out, name=name: received.__setitem__(name, args[0]))
        for name, layer in network.layers.items()
    ]
    out, _ = network(x)
    for hook in hooks:
        hook.remove()
    return out, received


def test_the_data_path_is_stereospikes() -> None:
    torch.manual_seed(0)
    network = StereoSpike(**SMALL)
    out, received = layer_inputs(network, events())
    a = out["activity"]
    assert list(network.layer_names) == [
        "bottom", "conv1", "conv2", "conv3", "conv4", "R1a", "R1b", "R2a", "R2b",
        "deconv4", "P4", "deconv3", "P3", "deconv2", "P2", "deconv1",
    ]  # fmt: skip
    assert [tuple(a[name].shape[1:]) for name in ("bottom", "conv4", "deconv4", "deconv1")] == [
        (4, 32, 32),
        (64, 2, 2),
        (32, 4, 4),
        (4, 32, 32),
    ]
    for layer in network.layer_names:
        if not layer.startswith("P"):
            assert set(a[layer].unique().tolist()) <= {0.0, 1.0}, f"{layer} emits spikes"
    # SEW residual blocks (ADD): R{j}b's spikes plus the block's input
    assert torch.equal(received["R2a"], a["R1b"] + a["conv4"])
    assert torch.equal(received["deconv4"], F.interpolate(a["R2b"] + received["R2a"], scale_factor=2))
    # additive skips from the encoder of each resolution, nearest upsampling before each decoder conv
    merged4 = a["deconv4"] + a["conv3"]
    assert torch.equal(received["deconv3"], F.interpolate(merged4, scale_factor=2, mode="nearest"))
    assert torch.equal(received["P4"], F.interpolate(merged4, scale_factor=8, mode="nearest"))
    assert torch.equal(received["deconv1"], F.interpolate(a["deconv2"] + a["conv1"], scale_factor=2))
    assert set(received["deconv3"].unique().tolist()) <= {0.0, 1.0, 2.0}, "sums of two spike tensors"
    assert [name for name in spiking_layers(network)] == [
        f"layers.{n}" for n in network.layer_names if not n.startswith("P")
    ]


def test_the_readout_integrates_every_scale_coarsest_first() -> None:
    torch.manual_seed(1)
    network = StereoSpike(**SMALL)
    out, _ = network(events())
    a = out["activity"]
    final = a["deconv1"] + a["bottom"]
    head = network.prediction.conv(final)
    expected = [a["P4"], a["P4"] + a["P3"], a["P4"] + a["P3"] + a["P2"]]
    expected.append(expected[-1] + head)
    assert len(out["depth_scales"]) == 4 and out["depth_scales"][-1] is out["depth"]
    for got, want in zip(out["depth_scales"], expected, strict=True):
        assert got.shape == (2, 1, 32, 32) and torch.allclose(got, want)


def test_stateless_windows_and_carried_state() -> None:
    torch.manual_seed(2)
    stateless = StereoSpike(**SMALL)
    x = events()
    out1, state = stateless(x)
    assert state is None
    out2, _ = stateless(x, state)
    assert torch.equal(out1["depth"], out2["depth"]), "every window from rest"

    carried = StereoSpike(**SMALL, stateless=False)
    carried.load_state_dict(stateless.state_dict())
    first, state = carried(x)
    assert torch.equal(first["depth"], out1["depth"]) and len(state) == len(carried.layer_names)
    second, _ = carried(x, state)
    assert not torch.equal(second["depth"], first["depth"]), "the potentials left by the first window count"


def test_any_frame_size_is_padded_and_cropped_back() -> None:
    torch.manual_seed(3)
    network = StereoSpike(**SMALL, num_cameras=1)
    x = events((1, 2, 26, 35))
    out, _ = network(x)
    assert out["depth"].shape == (1, 1, 26, 35)
    assert all(scale.shape == (1, 1, 26, 35) for scale in out["depth_scales"])
    padded, _ = network(F.pad(x, (0, 13, 0, 6)))  # 32 x 48: what the network pads to
    assert torch.allclose(out["depth"], padded["depth"][..., :26, :35])


@pytest.mark.parametrize("neuron", ["if", "lif", "plif"])
def test_gradients_reach_every_parameter(neuron: str) -> None:
    torch.manual_seed(4)
    kwargs = {"if": {"thresh_init": (0.3, 0.0)}, "lif": {"shared_leak": True, "thresh_init": (0.05, 0.0)}}
    network = StereoSpike(base_num_channels=4, neuron=neuron, neuron_kwargs=kwargs.get(neuron, {}))
    out, _ = network(events())
    sum(scale.square().mean() for scale in out["depth_scales"]).backward()
    silent = [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


def test_bad_settings_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="StereoSpike: num_cameras=0: expected an integer >= 1"):
        StereoSpike(num_cameras=0)
    with pytest.raises(ValueError, match="StereoSpike: kernel_size=4: expected an odd integer"):
        StereoSpike(kernel_size=4)
    with pytest.raises(ValueError, match=r"StereoSpike: neuron='lif': neuron_kwargs.leak is not a setting"):
        StereoSpike(neuron="lif", neuron_kwargs={"leak": 0.5})
    with pytest.raises(ValueError, match=r"input shape \(1, 2, 32, 32\): expected \[B, 4, H, W\]"):
        StereoSpike(base_num_channels=4)(torch.zeros(1, 2, 32, 32))


def test_branch_layers_read_the_data_path_without_changing_it() -> None:
    def conv(i: int, o: int, stride: int) -> ConvLayer:
        return ConvLayer(i, o, 3, stride, activation=None)

    body = RecurrentBody(
        2,
        [
            LayerSpec("a", 3, conv, stride=2),
            LayerSpec("side", 1, conv, upsample=2, upsample_mode="nearest", branch=True),
            LayerSpec("b", 3, conv),
        ],
    )
    x = torch.randn(1, 2, 8, 8)
    features, activity, _ = body(x)
    assert torch.allclose(features, body["b"](activity["a"])[0]), "b reads a's output, not the branch's"
    side = body["side"](F.interpolate(activity["a"], scale_factor=2, mode="nearest"))[0]
    assert torch.allclose(activity["side"], side) and activity["side"].shape == (1, 1, 8, 8)
    assert body.branches == ("side",) and body.out_scale == body.scales["b"] and body.scales["side"] == 1
    with pytest.raises(ValueError, match="'side': a branch layer takes no skip"):
        RecurrentBody(2, [LayerSpec("a", 2, conv), LayerSpec("side", 1, conv, branch=True, skip=Skip("a"))])
    flat = RecurrentBody(2, [LayerSpec("a", 3, conv), LayerSpec("side", 2, conv, branch=True)])
    with pytest.raises(ValueError, match="scale layer 'a' is not a branch layer"):
        MultiScaleDepthNetwork(body=flat, head=DepthHead(3), scale_layers=["a"])
    with pytest.raises(ValueError, match="'side' gives 2 channels at 1 of the input resolution: expected 1"):
        MultiScaleDepthNetwork(body=flat, head=DepthHead(3), scale_layers=["side"])
