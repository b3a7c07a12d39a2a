"""Spike statistics (issue 15): operation counts against hand counts, firing rates, energy, the
firing-rate regulariser, and where they show (validate.py tables and JSON, training logs)."""

from __future__ import annotations

import csv
import itertools
import json
import math
from functools import partial

import pytest
import torch
from torch import nn

from tinyflow.app.checks import ConfigError
from tinyflow.app.train import train
from tinyflow.app.validate import validate
from tinyflow.metrics.hardware import EnergyConstant, EnergyModel, HardwareProfile
from tinyflow.metrics.spikes import (
    COUNT_FIELDS,
    OperationCounts,
    SpikeActivityPenalty,
    SpikeProbe,
    conv_operations,
    energy_pj,
    layer_statistics,
    statistics,
    synaptic_ops,
)
from tinyflow.models import LIFFireNet
from tinyflow.models.blocks import ConvLayer
from tinyflow.models.body import LayerSpec, RecurrentBody
from tinyflow.models.neurons import build_spiking_layer


class BodyOnly(nn.Module):
    """A network that is just a body (the probe needs ``layers``)."""

    def __init__(self, body: RecurrentBody) -> None:
        super().__init__()
        self.layers = body

    def forward(self, x, state=None):
        features, activity, state = self.layers(x, state)
        return {"features": features, "activity": activity}, state


def two_layer_snn() -> BodyOnly:
    """A: 1 -> 2 channels, 3x3, stride 2, padding 1 (4x4 -> 2x2); B: 2 -> 1 channel, 3x3, stride 1, padding 1.
    Leak ~0 so v = I in the first window; threshold 0.5. A's channel 0 has weights +1 (fires where any
    input is in its field), channel 1 weights -1 (never fires); B's weights are +1."""
    lif = partial(build_spiking_layer, "lif", kernel_size=3, recurrent=False, leak_init=(-30.0, 0.0))
    body = RecurrentBody(
        1,
        [
            LayerSpec("A", 2, partial(lif, thresh_init=(0.5, 0.0)), stride=2),
            LayerSpec("B", 1, partial(lif, thresh_init=(0.5, 0.0))),
        ],
    )
    with torch.no_grad():
        body["A"].synapses.ff.weight[0] = 1.0
        body["A"].synapses.ff.weight[1] = -1.0
        body["B"].synapses.ff.weight[:] = 1.0
    return BodyOnly(body)


def counted(network: nn.Module, x: torch.Tensor) -> dict[str, dict[str, float]]:
    with SpikeProbe(network) as probe:
        network(x)
        counts = OperationCounts()
        counts.add(probe.take())
    return counts.units


def test_hand_counted_operations_on_a_binary_input() -> None:
    """One spike at (y=1, x=1). A's four outputs have receptive fields (rows x cols inside the 4x4 input)
    2x2, 2x3, 3x2, 3x3 = 25 taps, times 2 output channels: 50 dense MACs. The spike lies in all four
    fields: 4 taps x 2 channels = 8 ACs. A's channel 0 fires at its 4 neurons (4 / 8 = 50 %). B's 4
    outputs each see the whole 2x2x2 input: 4 x 8 = 32 dense MACs; each of A's 4 spikes reaches all 4
    outputs: 16 ACs; B fires everywhere (4 / 4)."""
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    units = counted(two_layer_snn(), x)
    assert units["A"]["dense_macs"] == 50 and units["A"]["spike_ops"] == 8
    assert units["A"]["real_spiking_ops"] == 0 and units["A"]["real_ops"] == 0
    assert units["A"]["spikes"] == 4 and units["A"]["neuron_updates"] == 8
    assert units["B"]["dense_macs"] == 32 and units["B"]["spike_ops"] == 16
    assert units["B"]["spikes"] == 4 and units["B"]["neuron_updates"] == 4
    counts = OperationCounts(windows=1, units=units)
    layers = layer_statistics(counts, None)
    assert layers["A"]["firing_rate"] == 50.0 and layers["B"]["firing_rate"] == 100.0
    assert statistics(counts, None)["firing_rate"] == pytest.approx(100 * 8 / 12)


def test_hand_counted_operations_on_a_real_input() -> None:
    """Values 0.75 at (1, 1) and 2.0 at (3, 3): (1, 1) lies in all four of A's fields (4 taps), (3, 3) only
    in the last output's (1 tap): 5 taps x 2 channels = 10 MACs (real input), no ACs in A."""
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1], x[0, 0, 3, 3] = 0.75, 2.0
    units = counted(two_layer_snn(), x)
    assert units["A"]["real_spiking_ops"] == 10 and units["A"]["spike_ops"] == 0
    assert units["A"]["dense_macs"] == 50
    # A fires where its current (the sum of the inputs in the field) reaches 0.5: all four outputs
    assert units["A"]["spikes"] == 4 and units["B"]["spike_ops"] == 16


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "mode"),
    [(1, 1, 1, 1, "zeros"), (2, 0, 1, 2, "zeros"), (2, 2, 2, 1, "zeros"), (1, 1, 1, 1, "reflect")],
)
def test_conv_counts_equal_a_brute_force_count(stride, padding, dilation, groups, mode) -> None:
    """Effective ops = sum over output positions and taps inside the (padded) input of [x != 0] * C_out / g;
    dense = the same with every input present."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride, padding, dilation, groups, padding_mode=mode)
    x = (torch.rand(2, 4, 7, 6) < 0.3).float() * torch.randn(2, 4, 7, 6)
    dense, synaptic, binary = conv_operations(conv, x)

    def brute(values: torch.Tensor) -> float:
        pad = (padding,) * 4
        padded = nn.functional.pad(values, pad, mode="reflect" if mode == "reflect" else "constant")
        inside = (
            nn.functional.pad(torch.ones_like(values), pad) if mode == "zeros" else torch.ones_like(padded)
        )
        cin = 4 // groups
        out_h = (padded.shape[-2] - dilation * 2 - 1) // stride + 1
        out_w = (padded.shape[-1] - dilation * 2 - 1) // stride + 1
        total = 0
        for g, oy, ox, c, i, j in itertools.product(
            range(groups), range(out_h), range(out_w), range(cin), range(3), range(3)
        ):
            y, x_ = oy * stride + i * dilation, ox * stride + j * dilation
            channel = g * cin + c
            total += int(inside[channel, y, x_] > 0 and padded[channel, y, x_] != 0)
        return total * (6 // groups)

    for b in range(2):
        assert synaptic[b] == brute(x[b])
        assert dense[b] == brute(torch.ones_like(x[b]))
    assert not binary.any()


def test_a_dense_network_has_effective_macs_equal_to_its_dense_macs() -> None:
    """tanh layers on a random input: no input is zero, so every dense MAC is an operation."""
    tanh = partial(ConvLayer, kernel_size=3, activation="tanh")
    network = BodyOnly(RecurrentBody(3, [LayerSpec("L1", 8, tanh, stride=2), LayerSpec("L2", 4, tanh)]))
    units = counted(network, torch.randn(2, 3, 16, 16))
    for fields in units.values():
        assert fields["real_ops"] == fields["dense_macs"] > 0
        assert fields["spike_ops"] == 0 and fields["neuron_updates"] == 0


def test_the_heads_blur_counts_its_taps_inside_the_image_and_one_multiply_per_value() -> None:
    """sigma 1 px: radius 3; on a 5-pixel axis the in-image taps of a 7-tap pass are 4+5+5+5+4 = 23 per row.
    Folded into the head conv (a 7x7 conv on the binary features, as export=nir writes it), the blur costs the
    ACs of that conv instead: what a profile without multiplier (Loihi) prices."""
    torch.manual_seed(0)
    plain = LIFFireNet(num_bins=2, base_num_channels=4)
    torch.manual_seed(0)  # the same weights: the same spikes into the head conv
    smoothed = LIFFireNet(num_bins=2, base_num_channels=4, prediction_smoothing_px=1.0)
    x = torch.rand(2, 2, 5, 5)
    features = []
    smoothed.prediction.register_forward_hook(lambda module, inputs, output: features.append(inputs[0]))
    blur = counted(smoothed, x)["prediction"]
    assert smoothed.prediction.smoothing.macs(2, 5, 5) == 2 * (23 * 5 + 23 * 5 + 25)
    extra = {field: blur[field] - counted(plain, x)["prediction"][field] for field in blur}
    assert extra["dense_macs"] == extra["real_ops"] == extra["blur_macs"] == 2 * 2 * (23 * 5 + 23 * 5 + 25)
    assert extra["spike_ops"] == 0
    folded = nn.Conv2d(4, 2, 7, padding=3)
    _, folded_acs, binary = conv_operations(folded, features[0])
    assert bool(binary.all()) and blur["spike_ops"] + blur["blur_folded_acs"] == float(folded_acs.sum()) > 0
    loihi_like = HardwareProfile(
        name="no-multiplier",
        description="test",
        precision="int8",
        export_format="nir",
        energy=EnergyModel(
            ac=EnergyConstant(1.0, "test"),
            neuron_update=EnergyConstant(1.0, "test"),
            ann_mac=EnergyConstant(1.0, "test"),
        ),
    )
    assert synaptic_ops(blur, loihi_like) == (float(folded_acs.sum()), 0.0)


def test_a_silent_network_has_zero_acs() -> None:
    """Thresholds far above any current: no spike, so every layer after the first gets zeros (no AC); the
    first layer's real-valued voxel input still costs MACs, and every neuron is still updated."""
    network = LIFFireNet(num_bins=2, base_num_channels=4, neuron_kwargs={"lif": {"thresh_init": [1e6, 0.0]}})
    with SpikeProbe(network) as probe:
        state = None
        for _ in range(3):
            _, state = network(torch.rand(1, 2, 16, 16), state)
        counts = OperationCounts()
        counts.add(probe.take())
    summary = statistics(counts, None)
    assert summary["ac_m"] == 0 and summary["firing_rate"] == 0
    assert summary["mac_m"] > 0 and summary["neuron_updates_k"] == pytest.approx(7 * 4 * 256 * 3 / 1e3)


PROFILE = HardwareProfile(
    "test",
    "hand-made constants",
    "fp32",
    "onnx",
    EnergyModel(
        ac=EnergyConstant(1.0, "test"),
        neuron_update=EnergyConstant(10.0, "test"),
        ann_mac=EnergyConstant(5.0, "test"),
        mac=EnergyConstant(4.0, "test"),
        spike=EnergyConstant(0.5, "test"),
    ),
)


def test_energy_prices_each_count() -> None:
    counts = dict.fromkeys(COUNT_FIELDS, 0.0) | {
        "spike_ops": 100,
        "real_ops": 10,
        "real_spiking_ops": 20,
        "neuron_updates": 3,
        "spikes": 4,
        "dense_macs": 1000,
    }
    assert energy_pj(counts, PROFILE) == 100 * 1 + 30 * 4 + 3 * 10 + 4 * 0.5
    graded = HardwareProfile(
        "graded",
        "ACs only for spiking layers",
        "fp32",
        "nir",
        PROFILE.energy.__class__(**{**PROFILE.energy.__dict__, "real_inputs_of_spiking_layers": "ac"}),
    )
    assert energy_pj(counts, graded) == 120 * 1 + 10 * 4 + 3 * 10 + 4 * 0.5
    no_multiplier = HardwareProfile(
        "nomac",
        "no multiplier",
        "int8",
        "nir",
        EnergyModel(
            ac=EnergyConstant(1.0, "t"),
            neuron_update=EnergyConstant(1.0, "t"),
            ann_mac=EnergyConstant(1.0, "t"),
        ),
    )
    assert math.isnan(energy_pj(counts, no_multiplier))
    summary = statistics(OperationCounts(2, 40_000.0, {"L": counts}), PROFILE)
    assert summary["energy_uj"] == pytest.approx(252 / 2 * 1e-6)
    assert summary["ann_energy_uj"] == pytest.approx(5000 / 2 * 1e-6)
    assert summary["power_uw"] == pytest.approx(252e-6 / 0.04)  # µJ over 40 ms of events


def test_profiles_refuse_a_constant_without_source_or_a_negative_energy() -> None:
    with pytest.raises(ValueError, match="needs its source"):
        EnergyConstant(0.9, " ")
    with pytest.raises(ValueError, match="picojoules >= 0"):
        EnergyConstant(-1.0, "Horowitz")
    with pytest.raises(ValueError, match="precision='fp16'"):
        HardwareProfile("x", "x", "fp16", "onnx", PROFILE.energy)


def test_the_penalty_is_half_the_mean_squared_activity_per_layer_summed() -> None:
    activity = {
        "A": torch.tensor([[1.0, 0.0, 1.0, 1.0]]),
        "B": torch.tensor([[0.0, 1.0]]),
        "ann": torch.ones(1, 3),
    }
    penalty = SpikeActivityPenalty(weight=0.2)(activity, ["A", "B"])
    assert float(penalty) == pytest.approx(0.2 * (3 / 4 / 2 + 1 / 2 / 2))
    with pytest.raises(ValueError, match="no spiking layers"):
        SpikeActivityPenalty()({"ann": torch.ones(1)}, [])


def test_the_penalty_reaches_the_network_through_the_surrogate() -> None:
    network = LIFFireNet(num_bins=2, base_num_channels=4)
    out, _ = network(torch.rand(1, 2, 8, 8), None)
    SpikeActivityPenalty(1.0)(out["activity"], list(out["activity"])).backward()
    assert network.layers["head"].synapses.ff.weight.grad.abs().sum() > 0


def test_validate_reports_spikes_and_training_logs_firing_rates(
    compose_config, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "400")
    overrides = [
        "regularizer=firing_rate",
        "callbacks.spikes.train_every_n_steps=1",
        "trainer.log_every_n_steps=1",
    ]
    results = train(compose_config("train", overrides))
    run_dir = tmp_path / "runs" / results["run_id"]
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    logged = {key for row in rows for key, value in row.items() if value}
    assert {"train/firing_rate/G1", "train/firing_rate/R2b", "train/spike_penalty", "val/energy_uj"} <= logged
    capsys.readouterr()

    output = tmp_path / "m.json"
    validate(compose_config("validate", [f"runid={results['run_id']}", "hardware=loihi", f"output={output}"]))
    printed = capsys.readouterr().out
    spikes = json.loads(output.read_text())["spikes"]
    assert spikes["hardware"] == "loihi" and "spike statistics per window on loihi" in printed
    assert {"firing_rate", "ac_m", "mac_m", "energy_uj", "ann_energy_uj", "power_uw"} <= set(spikes["mean"])
    assert spikes["mean"]["mac_m"] == 0  # Loihi: the voxel input arrives as graded spikes (ACs)
    assert list(spikes["layers"]) == ["head", "G1", "R1a", "R1b", "G2", "R2a", "R2b", "prediction"]
    recording = next(iter(spikes["recordings"].values()))
    assert 0 < recording["firing_rate"] < 100 and recording["energy_uj"] > 0


def test_training_firing_rates_are_counted_only_for_the_steps_that_log_them(compose_config, tmp_path):
    """The probe is attached for every second step here; those steps log rates of their own windows."""
    overrides = [
        "callbacks.spikes.train_every_n_steps=2",
        "trainer.max_steps=5",
        "trainer.log_every_n_steps=1",
    ]
    results = train(compose_config("train", overrides))
    rows = list(csv.DictReader((tmp_path / "runs" / results["run_id"] / "csv" / "metrics.csv").open()))
    logged = [int(row["step"]) for row in rows if row.get("train/firing_rate/G1")]
    losses = [int(row["step"]) for row in rows if row.get("train/loss")]
    assert losses == [0, 1, 2, 3, 4]  # the logger's step counts from 0: optimiser steps 2 and 4 log
    assert logged == [1, 3]
    assert all(
        0 <= float(row["train/firing_rate/G1"]) <= 1 for row in rows if row.get("train/firing_rate/G1")
    )


def test_a_broken_profile_is_refused_before_validation(compose_config) -> None:
    with pytest.raises(ConfigError, match="hardware=loihi: energy constant: pj=-1"):
        validate(compose_config("validate", ["runid=nope", "hardware=loihi", "hardware.energy.ac.pj=-1"]))
