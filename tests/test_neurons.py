"""Spiking layers against hand-computed recurrences, surrogate formulas and snntorch."""

from __future__ import annotations

import copy
import math

import pytest
import snntorch.surrogate
import torch

from tinyflow.models.neurons import (
    NEURON_TYPES,
    ConvALIF,
    ConvIF,
    ConvLIF,
    ConvPLIF,
    ConvXLIF,
    SnnTorchConvLIF,
    SpikeFunction,
    build_spiking_layer,
    resolve_neuron_kwargs,
)

INPUTS = [0.9, 0.4, 1.5, 0.0, 2.0, 0.7, -0.6, 1.1]


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def reference_run(
    xs: list[float],
    *,
    w_ff: float,
    leak: float,
    threshold,
    hard: bool,
    w_rec: float = 0.0,
    trace: str | None = None,
    trace_leak: float = 0.0,
    trace_weight: float = 0.0,
) -> list[tuple[float, float, float]]:
    """Scalar (v, z, a) per step of one neuron, written out from the documented equations."""
    v = z = a = 0.0
    steps = []
    for x in xs:
        current = w_ff * x + w_rec * z
        a_prev = a
        if trace == "spikes":
            a = trace_leak * a + (1 - trace_leak) * z
        elif trace == "presynaptic":
            a = trace_leak * a + (1 - trace_leak) * abs(x)
        current -= trace_weight * a
        if hard:
            v = leak * v * (1 - z) + (1 - leak) * current
        else:
            v = leak * v + (1 - leak) * current - z * threshold(a_prev)
        z = 1.0 if v > threshold(a) else 0.0
        steps.append((v, z, a))
    return steps


def run_layer(layer, xs: list[float]) -> list[tuple[float, ...]]:
    """Run a 1-in, 1-pixel layer over scalar inputs; per step the scalar state entries of channel 0."""
    state = None
    steps = []
    for x in xs:
        spikes, state = layer(torch.tensor(x, dtype=torch.float64).view(1, 1, 1, 1), state)
        assert torch.equal(spikes, state[1])
        steps.append(tuple(t[0, 0, 0, 0].item() for t in state))
    return steps


def assert_matches(steps, expected) -> None:
    spikes = [z for _, z, _ in expected]
    assert 0.0 in spikes and 1.0 in spikes, "reference must both spike and stay silent"
    for step, (got, want) in enumerate(zip(steps, expected, strict=True)):
        assert got[1] == want[1], f"spike at step {step}"
        assert got[0] == pytest.approx(want[0], abs=1e-12), f"membrane at step {step}"
        if len(got) == 3:
            assert got[2] == pytest.approx(want[2], abs=1e-12), f"trace at step {step}"


def one_by_one(cls, **kwargs):
    layer = cls(1, 1, kernel_size=1, padding=0, **kwargs).double()
    layer.synapses.ff.weight.data.fill_(1.3)
    layer.leak_logit.data.fill_(logit(0.6))
    return layer


@pytest.mark.parametrize("hard_reset", [True, False])
@pytest.mark.parametrize("w_rec", [None, -0.4])
def test_lif_matches_hand_recurrence(hard_reset: bool, w_rec: float | None) -> None:
    layer = one_by_one(ConvLIF, hard_reset=hard_reset, recurrent=w_rec is not None)
    layer.thresh.data.fill_(0.5)
    if w_rec is not None:
        layer.synapses.rec.weight.data.fill_(w_rec)
    expected = reference_run(
        INPUTS, w_ff=1.3, w_rec=w_rec or 0.0, leak=0.6, threshold=lambda a: 0.5, hard=hard_reset
    )
    assert_matches(run_layer(layer, INPUTS), expected)


@pytest.mark.parametrize("hard_reset", [True, False])
def test_integrate_and_fire_sums_currents_without_leak(hard_reset: bool) -> None:
    """SpikingJelly's IFNode: v_t = v_{t-1} (1 - z_{t-1}) + I_t (hard) or v_{t-1} + I_t - z_{t-1} thr (soft),
    threshold 1, no parameter but the conv's."""
    layer = ConvIF(1, 1, kernel_size=1, padding=0, hard_reset=hard_reset).double()
    layer.synapses.ff.weight.data.fill_(0.4)
    v = z = 0.0
    expected = []
    for x in INPUTS:
        v = (v * (1 - z) if hard_reset else v - z * 1.0) + 0.4 * x
        z = 1.0 if v > 1.0 else 0.0
        expected.append((v, z, None))
    assert_matches(run_layer(layer, INPUTS), expected)
    assert [name for name, _ in layer.named_parameters()] == ["synapses.ff.weight"]
    assert float(layer.thresh) == 1.0 and not hasattr(layer, "leak_logit")


def test_integrate_and_fire_settings_leave_out_the_leak() -> None:
    with pytest.raises(ValueError, match=r"neuron_kwargs.leak_init is not a setting of 'if' \(ConvIF\)"):
        resolve_neuron_kwargs("M", "if", {"leak_init": (0.0, 0.0)})
    settings = resolve_neuron_kwargs("M", "if", {"thresh_init": (0.5, 0.0), "learn_thresh": True})
    layer = build_spiking_layer("if", 2, 3, kernel_size=3, recurrent=False, **settings)
    assert layer.thresh.requires_grad and float(layer.thresh.detach().mean()) == 0.5


def test_lif_channels_have_their_own_leak_and_clamped_threshold() -> None:
    layer = ConvLIF(1, 2, kernel_size=1, padding=0).double()
    layer.synapses.ff.weight.data[:, 0, 0, 0] = torch.tensor([1.0, 0.01])
    layer.leak_logit.data[:, 0, 0] = torch.tensor([logit(0.3), -30.0])  # channel 1: leak ~ 0
    layer.thresh.data[:, 0, 0] = torch.tensor([0.5, -1.0])  # channel 1: clamped to 0.01
    xs = [0.5, 0.8, 2.0, 0.9, 0.3]  # channel 1 current 0.005 .. 0.02, around the clamped threshold
    state = None
    spikes = []
    for x in xs:
        z, state = layer(torch.tensor(x, dtype=torch.float64).view(1, 1, 1, 1), state)
        spikes.append(z[0, :, 0, 0].tolist())
    channel0 = reference_run(xs, w_ff=1.0, leak=0.3, threshold=lambda a: 0.5, hard=True)
    channel1 = reference_run(xs, w_ff=0.01, leak=0.0, threshold=lambda a: 0.01, hard=True)
    assert [s[0] for s in spikes] == [z for _, z, _ in channel0]
    assert [s[1] for s in spikes] == [z for _, z, _ in channel1] == [0.0, 0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize(("layer_class", "trace"), [(ConvALIF, "spikes"), (ConvXLIF, "presynaptic")])
def test_adaptive_threshold_neurons_match_hand_recurrence(layer_class, trace) -> None:
    """ALIF adapts its threshold to its own spikes, XLIF to presynaptic activity (default soft reset)."""
    layer = one_by_one(layer_class)
    layer.trace_leak_logit.data.fill_(logit(0.5))
    layer.base_thresh.fill_(0.3)
    layer.adapt_thresh.fill_(0.8)
    expected = reference_run(
        INPUTS,
        w_ff=1.3,
        leak=0.6,
        threshold=lambda a: 0.3 + 0.8 * a,
        hard=False,
        trace=trace,
        trace_leak=0.5,
    )
    assert_matches(run_layer(layer, INPUTS), expected)


def test_plif_matches_hand_recurrence() -> None:
    layer = one_by_one(ConvPLIF)  # default hard reset
    layer.thresh.data.fill_(0.5)
    layer.trace_leak_logit.data.fill_(logit(0.5))
    layer.trace_weight_logit.data.fill_(logit(0.25))
    expected = reference_run(
        INPUTS,
        w_ff=1.3,
        leak=0.6,
        threshold=lambda a: 0.5,
        hard=True,
        trace="presynaptic",
        trace_leak=0.5,
        trace_weight=0.25,
    )
    assert_matches(run_layer(layer, INPUTS), expected)


def test_presynaptic_trace_pools_mean_absolute_input_over_receptive_field() -> None:
    layer = ConvXLIF(2, 1, kernel_size=3).double()
    layer.trace_leak_logit.data.fill_(logit(0.5))
    x = torch.zeros(1, 2, 3, 3, dtype=torch.float64)
    x[0, 0, 0, 0] = 4.0
    x[0, 1, 0, 0] = -2.0
    _, (_, _, trace) = layer(x, None)
    # mean |x| over channels is 3 at (0, 0); a 3x3 zero-padded average counts 9 cells
    expected = torch.zeros(3, 3, dtype=torch.float64)
    expected[:2, :2] = 0.5 * 3.0 / 9
    assert torch.allclose(trace[0, 0], expected)


@pytest.mark.parametrize("surrogate", ["arctan", "sigmoid", "boxcar"])
@pytest.mark.parametrize("width", [0.5, 2.0])
def test_surrogate_gradient_equals_formula(surrogate: str, width: float) -> None:
    x = torch.tensor([-1.0, -0.2, 0.0, 0.1, 0.7], dtype=torch.float64, requires_grad=True)
    spikes = SpikeFunction(surrogate, width)(x)
    spikes.sum().backward()
    assert spikes.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    for xi, gi in zip(x.tolist(), x.grad.tolist(), strict=True):
        s = 1 / (1 + math.exp(-xi / width))
        expected = {
            "arctan": 1 / (1 + (math.pi * xi / width) ** 2),
            "sigmoid": 4 * s * (1 - s),
            "boxcar": 1.0 if abs(xi) < width / 2 else 0.0,
        }[surrogate]
        assert gi == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("width", [1.0, 0.4])
def test_arctan_surrogate_is_scaled_snntorch_atan(width: float) -> None:
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    SpikeFunction("arctan", width)(x).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    snntorch.surrogate.atan(alpha=2 / width)(x).sum().backward()
    assert torch.allclose(ours, width * x.grad)


def test_neuron_gradient_is_surrogate_at_membrane_minus_threshold() -> None:
    layer = one_by_one(ConvLIF, surrogate_width=0.7)
    layer.thresh.data.fill_(0.5)
    x = torch.tensor([0.2, 0.4, 0.6, 1.0], dtype=torch.float64).view(1, 1, 2, 2).requires_grad_()
    spikes, _ = layer(x, None)
    spikes.sum().backward()
    v = 0.4 * 1.3 * x.detach()  # (1 - leak) * w * x from zero state
    expected = 1 / (1 + (math.pi * (v - 0.5) / 0.7) ** 2) * 0.4 * 1.3
    assert torch.allclose(x.grad, expected)


@pytest.mark.parametrize("hard_reset", [True, False])
def test_reset_uses_detached_spike(hard_reset: bool) -> None:
    """x1 makes the neuron spike; with a detached reset d v2 / d x1 has no surrogate term."""
    grads = {}
    for detach in (True, False):
        layer = one_by_one(ConvLIF, hard_reset=hard_reset, detach_reset=detach)
        layer.thresh.data.fill_(0.5)
        x1 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        spikes1, state1 = layer(x1.view(1, 1, 1, 1), None)
        assert spikes1.item() == 1.0
        _, (v2, _) = layer(torch.tensor(0.3, dtype=torch.float64).view(1, 1, 1, 1), state1)
        v2.sum().backward()
        grads[detach] = x1.grad.item()
    leak, w, v1 = 0.6, 1.3, 0.4 * 1.3 * 1.0
    dv1_dx1 = (1 - leak) * w
    surrogate = 1 / (1 + (math.pi * (v1 - 0.5)) ** 2)
    if hard_reset:  # v2 = leak * v1 * (1 - z1) + ...
        detached = leak * (1 - 1.0) * dv1_dx1
        attached = detached - leak * v1 * surrogate * dv1_dx1
    else:  # v2 = leak * v1 - z1 * thresh + ...
        detached = leak * dv1_dx1
        attached = detached - 0.5 * surrogate * dv1_dx1
    assert grads[True] == pytest.approx(detached, abs=1e-12)
    assert grads[False] == pytest.approx(attached, rel=1e-12)
    assert grads[True] != pytest.approx(grads[False])


@pytest.mark.parametrize("hard_reset", [True, False])
@pytest.mark.parametrize("recurrent", [False, True])
def test_snntorch_lif_matches_native_lif(hard_reset: bool, recurrent: bool) -> None:
    """Same conv weights, beta = sigmoid(leak_logit), threshold >= 0.01: identical dynamics."""
    torch.manual_seed(0)
    native = ConvLIF(2, 3, hard_reset=hard_reset, recurrent=recurrent).double()
    adapter = SnnTorchConvLIF(2, 3, hard_reset=hard_reset, recurrent=recurrent).double()
    adapter.synapses.load_state_dict(native.synapses.state_dict())
    native.thresh.data[:, 0, 0] = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    with torch.no_grad():
        adapter.leaky.beta.copy_(torch.sigmoid(native.leak_logit))
        adapter.leaky.threshold.copy_(native.thresh)
    xs = [(2 * torch.rand(2, 2, 5, 5, dtype=torch.float64)).requires_grad_() for _ in range(6)]
    weights = [torch.rand(2, 3, 5, 5, dtype=torch.float64) for _ in range(6)]
    results = []
    for layer in (native, adapter):
        state, loss, spikes = None, 0.0, []
        for x, weight in zip(xs, weights, strict=True):
            z, state = layer(x, state)
            spikes.append(z)
            loss = loss + (weight * z).sum() + state[0].sum()
        grads = torch.autograd.grad(loss, xs)
        results.append((spikes, state, grads))
    (spikes_a, state_a, grads_a), (spikes_b, state_b, grads_b) = results
    assert 0 < sum(z.sum().item() for z in spikes_a) < sum(z.numel() for z in spikes_a)
    for za, zb in zip(spikes_a, spikes_b, strict=True):
        assert torch.equal(za, zb)
    assert torch.allclose(state_a[0], state_b[0])
    for ga, gb in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(ga, gb)


def test_snntorch_lif_parameters_are_per_channel_and_learnable() -> None:
    layer = SnnTorchConvLIF(2, 3)
    names = dict(layer.named_parameters())
    assert names["leaky.beta"].shape == (3, 1, 1)
    assert names["leaky.threshold"].shape == (3, 1, 1)


def test_shared_leak_is_one_value_per_layer() -> None:
    assert ConvLIF(2, 4, shared_leak=True).leak_logit.shape == (1, 1, 1)
    assert ConvLIF(2, 4).leak_logit.shape == (4, 1, 1)


@pytest.mark.parametrize("neuron", sorted(NEURON_TYPES))
def test_every_neuron_has_the_layer_interface(neuron: str) -> None:
    layer = build_spiking_layer(neuron, 2, 4, kernel_size=3, recurrent=True)
    x = 2 * torch.rand(3, 2, 6, 7)
    spikes, state = layer(x, None)
    assert spikes.shape == (3, 4, 6, 7)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert all(t.shape == (3, 4, 6, 7) for t in state)
    spikes2, state2 = layer(x, state)
    assert spikes2.shape == spikes.shape and len(state2) == len(state)


@pytest.mark.parametrize("neuron", sorted(NEURON_TYPES))
def test_recurrent_init_gain_scales_only_the_recurrent_weights(neuron: str) -> None:
    torch.manual_seed(0)
    layer = build_spiking_layer(neuron, 2, 16, kernel_size=3, recurrent=True, recurrent_init_gain=0.1)
    bound = math.sqrt(1 / 16)
    assert layer.synapses.rec.weight.abs().max() <= 0.1 * bound
    assert layer.synapses.rec.weight.abs().max() > 0.05 * bound
    assert layer.synapses.ff.weight.abs().max() > 0.5 * math.sqrt(1 / 2)


def test_strided_layer_downsamples() -> None:
    spikes, state = ConvPLIF(2, 4, kernel_size=3, stride=2)(torch.rand(1, 2, 8, 8), None)
    assert spikes.shape == state[2].shape == (1, 4, 4, 4)


def test_bad_configuration_and_state_raise() -> None:
    with pytest.raises(ValueError, match="neuron='lyf'"):
        build_spiking_layer("lyf", 2, 4, kernel_size=3, recurrent=False)
    with pytest.raises(ValueError, match="surrogate='tanh'"):
        SpikeFunction("tanh")
    with pytest.raises(ValueError, match="thresh init"):
        ConvLIF(2, 4, thresh_init=(0.8,))
    layer = ConvALIF(2, 4)
    with pytest.raises(ValueError, match=r"expected 3 \(v, z, trace\)"):
        layer(torch.rand(1, 2, 4, 4), (torch.zeros(1, 4, 4, 4), torch.zeros(1, 4, 4, 4)))


def test_snntorch_lif_keeps_no_graph_on_the_module() -> None:
    layer = SnnTorchConvLIF(2, 3)
    layer(torch.rand(1, 2, 4, 4), None)
    copy.deepcopy(layer)  # fails if snntorch's cached membrane (a non-leaf tensor) stays on the module


def test_neuron_kwargs_resolve_shared_settings_and_the_chosen_types_section() -> None:
    kwargs = {
        "surrogate_width": 2.0,
        "plif": {"trace_weight_init": (-1.0, 0.0)},
        "alif": {"adapt_thresh_init": (1.0, 0.0)},  # checked against ALIF, not applied to PLIF
    }
    assert resolve_neuron_kwargs("Net", "plif", kwargs) == {
        "surrogate_width": 2.0,
        "trace_weight_init": (-1.0, 0.0),
    }
    assert resolve_neuron_kwargs("Net", "lif", None) == {}
    with pytest.raises(
        ValueError, match=r"Net: neuron='lif': neuron_kwargs.trace_leak_init is not a setting of 'lif'"
    ):
        resolve_neuron_kwargs("Net", "lif", {"trace_leak_init": (-4.0, 0.1)})
    with pytest.raises(ValueError, match="Net: neuron='relu': expected one of"):
        resolve_neuron_kwargs("Net", "relu", {})
