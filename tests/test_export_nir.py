"""Spiking networks as NIR graphs, run back by snntorch's NIR importer: the same spikes per layer and the same flow."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from tinyflow.export.errors import ExportError  # noqa: E402
from tinyflow.export.nir_export import NIR_DT_S, NirSimulator, to_nir  # noqa: E402
from tinyflow.models import FireNet, LIFEVFlowNet, LIFFireFlowNet, LIFFireNet  # noqa: E402
from tinyflow.models.body import LayerSpec, RecurrentBody  # noqa: E402
from tinyflow.models.heads import FlowHead  # noqa: E402
from tinyflow.models.network import RecurrentNetwork  # noqa: E402
from tinyflow.models.neurons import ConvLIF, ConvPLIF, SnnTorchConvLIF  # noqa: E402

SIZE = 12
LIVELY = {"thresh_init": [0.3, 0.1], "recurrent_init_gain": 0.5, "leak_init": [-1.0, 0.5]}


def windows(steps: int, channels: int = 2, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(1, channels, SIZE, SIZE, generator=generator) < 0.3).float()
        * torch.randint(1, 4, (1, channels, SIZE, SIZE), generator=generator)
        for _ in range(steps)
    ]


def round_trip(network: RecurrentNetwork, tmp_path: Path, steps: int = 15) -> tuple[float, dict[str, float]]:
    """Largest |flow difference| and per-layer spike agreement of the network and its NIR file run by snntorch
    over ``steps`` windows (state reset after the first half, as at a new recording)."""
    network.eval()
    graph, post = to_nir(network, (network.num_bins, SIZE, SIZE))
    nir.write(str(tmp_path / "m.nir"), graph)
    simulator = NirSimulator(nir.read(str(tmp_path / "m.nir")))
    state, largest, agree, rates = None, 0.0, {}, {}
    for t, x in enumerate(windows(steps)):
        if t == steps // 2:
            state = None
            simulator.reset()
        with torch.no_grad():
            out, state = network(x, state)
        output, spikes = simulator.step(x)
        largest = max(largest, float((post(output, x) - out["flow"]).abs().max()))
        for layer in network.layer_names:
            same = (spikes[layer].float() == out["activity"][layer]).float().mean()
            agree.setdefault(layer, []).append(float(same))
            rates.setdefault(layer, []).append(float(out["activity"][layer].mean()))
    for layer, values in rates.items():  # the comparison means something only where neurons fire, and not all
        assert 0.02 < sum(values) / len(values) < 0.98, f"{layer} fires at {sum(values) / len(values):.3f}"
    return largest, {layer: sum(v) / len(v) for layer, v in agree.items()}


def one_layer_network(layer_type: type, recurrent: bool, **kwargs) -> RecurrentNetwork:
    torch.manual_seed(0)

    def build(in_channels: int, out_channels: int, *, stride: int) -> torch.nn.Module:
        return layer_type(
            in_channels, out_channels, kernel_size=3, stride=stride, recurrent=recurrent, **kwargs
        )

    body = RecurrentBody(2, [LayerSpec("L", 6, build)])
    return RecurrentNetwork(
        body=body, head=FlowHead(6, flow_scaling=4.0, kernel_size=3, prediction_init_scale=0.3)
    )


@pytest.mark.parametrize(
    ("layer_type", "recurrent", "kwargs"),
    [
        (ConvLIF, False, {"thresh_init": (0.3, 0.1), "leak_init": (-1.0, 0.5)}),
        (ConvLIF, True, {"thresh_init": (0.3, 0.1), "leak_init": (-1.0, 0.5), "recurrent_init_gain": 0.5}),
        (ConvLIF, True, {"thresh_init": (0.3, 0.1), "shared_leak": True, "recurrent_init_gain": 0.5}),
        (
            SnnTorchConvLIF,
            True,
            {"thresh_init": (0.3, 0.1), "leak_init": (-1.0, 0.5), "recurrent_init_gain": 0.5},
        ),
    ],
    ids=["lif", "lif-recurrent", "lif-shared-leak", "snntorch-lif-recurrent"],
)
def test_each_layer_type_round_trips_through_nir(layer_type, recurrent, kwargs, tmp_path) -> None:
    """One converter per layer type, and the conv head: the simulator's spikes and flow are the network's."""
    largest, agreement = round_trip(one_layer_network(layer_type, recurrent, **kwargs), tmp_path)
    assert agreement == {"L": 1.0}
    assert largest <= 1e-5


@pytest.mark.parametrize(
    "network",
    [
        pytest.param(
            lambda: LIFFireNet(num_bins=2, base_num_channels=4, neuron_kwargs=LIVELY), id="lif_firenet"
        ),
        pytest.param(
            lambda: LIFFireNet(num_bins=2, base_num_channels=4, residual=True, neuron_kwargs=LIVELY),
            id="lif_firenet-residual",
        ),
        pytest.param(
            lambda: LIFFireFlowNet(num_bins=2, base_num_channels=4, neuron_kwargs=LIVELY),
            id="lif_fireflownet",
        ),
        pytest.param(  # the blur folded into the head conv, renormalised at the borders by the postprocess
            lambda: LIFFireNet(
                num_bins=2, base_num_channels=4, neuron_kwargs=LIVELY, prediction_smoothing_px=1.5
            ),
            id="lif_firenet-smoothed",
        ),
        pytest.param(
            lambda: LIFFireNet(
                num_bins=2,
                base_num_channels=4,
                neuron_kwargs=LIVELY,
                prediction_smoothing_px=1.0,
                prediction_bias=True,
                prediction_init_scale=0.3,
            ),
            id="lif_firenet-smoothed-bias",
        ),
    ],
)
def test_spiking_firenets_round_trip_through_nir(network, tmp_path) -> None:
    torch.manual_seed(0)
    largest, agreement = round_trip(network(), tmp_path)
    assert min(agreement.values()) == 1.0, agreement
    assert largest <= 1e-5


def test_the_graph_holds_lif_nodes_recurrent_edges_and_the_time_step(tmp_path) -> None:
    torch.manual_seed(0)
    network = LIFFireNet(num_bins=2, base_num_channels=4, neuron_kwargs=LIVELY)
    graph, post = to_nir(network, (2, SIZE, SIZE))
    assert graph.metadata["dt_s"] == NIR_DT_S and "tanh" in graph.metadata["postprocess"]
    lifs = {name for name, node in graph.nodes.items() if isinstance(node, nir.LIF)}
    assert lifs == {f"{layer}.lif" for layer in network.layer_names}
    assert {("G1.lif", "G1.rec"), ("G1.rec", "G1.lif"), ("G2.lif", "G2.rec"), ("G2.rec", "G2.lif")} <= set(
        graph.edges
    )
    g1 = graph.nodes["G1.lif"]
    leak = torch.sigmoid(network.layers["G1"].leak_logit).detach().reshape(-1).numpy()
    assert g1.tau.shape == (4, SIZE, SIZE)
    assert g1.tau[:, 0, 0] == pytest.approx(NIR_DT_S / (1 - leak), rel=1e-6)
    assert (g1.v_threshold == 1).all() and (g1.v_reset == 0).all() and (g1.v_leak == 0).all()
    assert post.flow_scaling == network.prediction.flow_scaling and post.tanh


def lif_network_with(layer_type: type, **kwargs) -> RecurrentNetwork:
    return one_layer_network(layer_type, True, **kwargs)


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (
            lambda: FireNet(num_bins=2, base_num_channels=4),
            r"FireNet: layer 'head' \(ConvReLU\) has no NIR primitive",
        ),
        (
            lambda: lif_network_with(ConvPLIF),
            r"layer 'L' \(ConvPLIF\) has no NIR primitive: export=nir takes spiking layers of type ConvLIF, SnnTorchConvLIF",
        ),
        (lambda: lif_network_with(ConvLIF, hard_reset=False), r"layer 'L' \(ConvLIF\) resets softly"),
        (
            lambda: LIFEVFlowNet(num_bins=2, base_num_channels=2, num_encoders=1, num_residual_blocks=0),
            r"LIFEVFlowNet: layer 'D1' upsamples its input: NIR has no upsampling primitive",
        ),
        (
            lambda: RecurrentNetwork(
                body=RecurrentBody(2, [LayerSpec("L", 4, partial(ConvLIF, kernel_size=3))]),
                head=FlowHead(4, flow_scaling=1.0, kernel_size=3, smoothing_px=1.0),
            ),
            r"FlowHead with smoothing_px=1.0 and a \(3, 3\) conv: export=nir folds the blur into a 1x1 head conv only",
        ),
    ],
    ids=["ann", "plif", "soft-reset", "upsampling", "smoothed-3x3-head"],
)
def test_a_layer_without_nir_primitive_is_named(network, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        to_nir(network(), (2, 16, 16))
