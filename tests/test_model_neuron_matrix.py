"""Every model config with every neuron type it accepts builds and steps; the other pairs fail clearly.

The model configs are composed from ``config/model/*.yaml`` alone (``+model=<name>``, ``num_bins`` set),
as ``python train.py model=<name> model.neuron=<type>`` composes them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinyflow.models.neurons import NEURON_TYPES, build_spiking_layer, neuron_settings, resolve_neuron_kwargs
from tinyflow.models.spiking import spiking_layers

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
MODELS = sorted(path.stem for path in (CONFIG_DIR / "model").glob("*.yaml"))
NUM_BINS = 5
PREDICTION_CHANNELS = {"flow": 2, "depth": 1}  # by the head's output key


def model_config(model: str, overrides: tuple[str, ...] = ()) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name=None, overrides=[f"+model={model}", f"+data.num_bins={NUM_BINS}", *overrides]
        )
    return cfg.model


NEURON_OF = {model: model_config(model).get("neuron") for model in MODELS}  # the config's own neuron
SPIKING = [model for model in MODELS if NEURON_OF[model] is not None]
ANN = [model for model in MODELS if model not in SPIKING]
# A spiking config whose neuron is not LIF names a neuron of a LIF config (plif_evflownet is
# lif_evflownet with model.neuron=plif): it is stepped with its own neuron only.
SUPPORTED = [
    (model, neuron)
    for model in SPIKING
    for neuron in (NEURON_TYPES if NEURON_OF[model] == "lif" else [NEURON_OF[model]])
] + [(model, None) for model in ANN]
# the layers that hold state across windows, where not every layer does (spiking layers keep their
# membranes; EV-FlowNet's prediction layers P1..P3 are stateless convs in every variant)
STATEFUL = {
    "firenet": ["G1", "G2"],
    "fireflownet": [],
    "evflownet": [],
    "rec_evflownet": ["G1", "G2", "G3", "G4"],
    "convgru": ["memory"],
}


def test_the_matrix_covers_spiking_and_ann_models() -> None:
    assert {"lif_firenet", "lif_firenet_short", "lif_fireflownet", "stereospike", "stereospike_mono"} <= set(
        SPIKING
    )
    assert {f"{n}_evflownet" for n in ("lif", "plif", "alif", "xlif")} <= set(SPIKING)
    assert {"firenet", "fireflownet", "evflownet", "rec_evflownet", "convgru"} <= set(ANN)
    assert {NEURON_OF[f"{n}_evflownet"] for n in ("lif", "plif", "alif", "xlif")} == {
        "lif",
        "plif",
        "alif",
        "xlif",
    }


def _first(state: Any) -> torch.Tensor:
    while not isinstance(state, torch.Tensor):
        state = state[0]
    return state


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize(("model", "neuron"), SUPPORTED)
def test_model_builds_and_steps_with_every_neuron_it_accepts(
    model: str, neuron: str | None, size: int
) -> None:
    torch.manual_seed(0)
    network = instantiate(model_config(model, () if neuron is None else (f"model.neuron={neuron}",)))
    spiking = [name.removeprefix("layers.") for name in spiking_layers(network)]
    if neuron is not None:
        assert all(isinstance(layer, NEURON_TYPES[neuron]) for layer in spiking_layers(network).values())
        assert spiking == [name for name in network.layer_names if not name.startswith("P")]
    else:
        assert spiking == []
    generator = torch.Generator().manual_seed(0)
    x1, x2 = (2 * torch.rand(2, network.num_bins, size, size, generator=generator) for _ in range(2))
    out1, state1 = network(x1, None)
    out2, state2 = network(x2, state1)
    key = network.prediction.output_key
    channels = PREDICTION_CHANNELS[key]
    for out in (out1, out2):
        assert out[key].shape == (2, channels, size, size)
        assert torch.isfinite(out[key]).all()
        assert list(out["activity"]) == network.layer_names
        for prediction in out.get(f"{key}_scales", []):
            assert prediction.shape == (2, channels, size, size) and torch.isfinite(prediction).all()
    if getattr(network, "stateless", False):  # StereoSpike: every window from rest, no state returned
        assert state1 is None and state2 is None
        return
    assert len(state1) == len(state2) == len(network.layer_names)
    stateful = [name for name, s in zip(network.layer_names, state1, strict=True) if s is not None]
    assert stateful == STATEFUL.get(model, spiking)
    for name, before, after in zip(network.layer_names, state1, state2, strict=True):
        if before is not None:
            assert not torch.equal(_first(before), _first(after)), (
                f"{model}/{neuron}: state of {name} did not change"
            )


@pytest.mark.parametrize(("model", "neuron"), [(model, neuron) for model in ANN for neuron in NEURON_TYPES])
def test_ann_models_reject_every_neuron_naming_both(model: str, neuron: str) -> None:
    cfg = model_config(model, (f"model.neuron={neuron}",))
    with pytest.raises(InstantiationException) as error:
        instantiate(cfg)
    model_class = cfg._target_.rsplit(".", 1)[-1]
    assert f"{model_class}: neuron={neuron!r}" in str(error.value)


@pytest.mark.parametrize("model", SPIKING)
def test_unknown_neuron_names_model_and_neuron(model: str) -> None:
    cfg = model_config(model, ("model.neuron=lyf",))
    with pytest.raises(InstantiationException, match=r"(LIF|StereoSpike)\w*: neuron='lyf': expected one of"):
        instantiate(cfg)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (  # a LIF setting shared while the neuron is ALIF: the crash this rule replaces, now one clear error
            ("model.neuron=alif", "+model.neuron_kwargs.thresh_init=[0.5,0.1]"),
            r"LIFFireNet: neuron='alif': neuron_kwargs.thresh_init is not a setting of 'alif' \(ConvALIF\); "
            r"it accepts \['adapt_thresh_init', 'base_thresh_init',",
        ),
        (  # a typo in another type's section is caught while running LIF
            ("+model.neuron_kwargs.alif.thresh=0.5",),
            r"LIFFireNet: neuron='alif': neuron_kwargs.alif.thresh is not a setting of 'alif'",
        ),
        (
            ("+model.neuron_kwargs.thresh_init=[0.6,0.0]",),
            r"neuron='lif': neuron_kwargs.thresh_init and neuron_kwargs.lif.thresh_init: set each setting in one",
        ),
        (
            ("model.neuron=lif", "+model.neuron_kwargs.stride=2"),
            r"neuron_kwargs.stride is not a setting of 'lif'",
        ),
        (
            ("model.neuron_kwargs.plif=0.5",),
            r"neuron_kwargs.plif=0.5: expected a mapping of settings of 'plif'",
        ),
    ],
)
def test_bad_neuron_settings_raise_one_clear_error(overrides: tuple[str, ...], message: str) -> None:
    with pytest.raises(InstantiationException, match=message):
        instantiate(model_config("lif_firenet", overrides))


def test_the_shipped_neuron_settings_fit_their_neurons() -> None:
    kwargs = model_config("lif_firenet").neuron_kwargs
    shared = [key for key in kwargs if key not in NEURON_TYPES]
    assert all(set(shared) <= neuron_settings(neuron) for neuron in NEURON_TYPES)
    assert set(NEURON_TYPES) <= set(kwargs)  # every type has its section
    assert resolve_neuron_kwargs("m", "alif", kwargs) == {
        "recurrent_init_gain": 0.1,
        "surrogate_width": 3.0,
        "base_thresh_init": [0.01, 0.0],
        "adapt_thresh_init": [1.8, 0.0],
    }


def default_of(neuron: str, setting: str):
    for klass in NEURON_TYPES[neuron].__mro__:
        if "__init__" in vars(klass):
            parameter = inspect.signature(klass.__init__).parameters.get(setting)
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                return parameter.default
    raise AssertionError(f"{neuron}: no default for {setting}")


@pytest.mark.parametrize("neuron", sorted(NEURON_TYPES))
def test_every_declared_setting_is_a_constructor_argument(neuron: str) -> None:
    settings = neuron_settings(neuron)
    assert {"surrogate_width", "recurrent_init_gain", "hard_reset"} <= settings
    assert ("leak_init" in settings) == (neuron != "if")  # integrate-and-fire has no leak
    assert not settings & {
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "recurrent",
        "trace",
    }
    assert ("trace_leak_init" in settings) == (neuron in ("plif", "alif", "xlif"))
    for setting in settings:
        build_spiking_layer(
            neuron, 2, 3, kernel_size=3, recurrent=True, **{setting: default_of(neuron, setting)}
        )
