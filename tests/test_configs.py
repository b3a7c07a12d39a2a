"""Every option of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import hydra.utils
import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from tinyflow.app.build import build_task, build_trainer
from tinyflow.app.checks import ConfigError, check_config, hardware_profile
from tinyflow.data import EventDataModule
from tinyflow.metrics.hardware import HardwareProfile
from tinyflow.tasks import RecurrentTask

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


GROUPS = (
    "task",
    "data",
    "model",
    "loss",
    "optimizer",
    "scheduler",
    "quant",
    "regularizer",
    "hardware",
    "trainer",
    "logger",
    "callbacks",
    "export",
    "parity",
    "paths",
    "debug",
    "experiment",
    "hparams_search",
)


def group_options() -> list[tuple[str, str]]:
    return [(group, option) for group in GROUPS for option in options(group)]


def test_every_group_has_options() -> None:
    assert {group for group, _ in group_options()} == set(GROUPS)


# the depth options are composed into a depth run on stereo data (with the flow defaults they are refused)
DEPTH_RUNS = {
    ("task", "depth"): ["data=synthetic_stereo"],
    ("model", "stereospike"): ["task=depth", "data=synthetic_stereo"],
    ("model", "stereospike_mono"): ["task=depth", "data=synthetic_stereo", "data.cameras=[left]"],
    ("loss", "depth_si_grad"): ["task=depth", "data=synthetic_stereo"],
    ("data", "mvsec_depth"): ["task=depth"],
}


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda v: str(v))
def test_every_option_instantiates_what_it_names(
    compose_config, group: str, option: str, monkeypatch, tmp_path
) -> None:
    """Each option composes into a run whose task, data and trainer are built; the option's own object is
    checked for what it must be."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    extra = {
        ("data", "h5dir"): [f"data.root={tmp_path}"],
        ("data", "files"): [f"data.root={tmp_path}"],
        ("quant", "ptq_int8"): ["init_from=a_float_run"],
    }
    extra = extra.get((group, option), []) + DEPTH_RUNS.get((group, option), [])
    cfg = compose_config("train", [f"{group}={option}", *extra], tiny=False)
    if group == "hparams_search":  # a sweeper config: its sweeper plugin is importable, its params are keys
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            full = compose("train", [f"{group}={option}"], return_hydra_config=True)
        assert isinstance(hydra.utils.get_class(full.hydra.sweeper._target_), type)
        for key in full.hydra.sweeper.params:
            assert OmegaConf.select(cfg, key, throw_on_missing=False) is not None, key
    check_config(cfg)
    task = build_task(cfg)
    assert isinstance(task, RecurrentTask)
    if group == "quant":  # INT8 options quantise every conv, none keeps the float network
        quantised = [
            type(m).__name__ == "QuantConv2d" for m in task.network.modules() if isinstance(m, nn.Conv2d)
        ]
        assert quantised and all(quantised) == (option != "none") and any(quantised) == all(quantised)
    optimizers = task.configure_optimizers()
    if isinstance(optimizers, dict):  # with a learning-rate scheduler
        assert optimizers["lr_scheduler"]["scheduler"].optimizer is optimizers["optimizer"]
        optimizers = optimizers["optimizer"]
    assert isinstance(optimizers, torch.optim.Optimizer)
    assert isinstance(instantiate(cfg.data), EventDataModule)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        assert cfg.trainer.devices >= 1  # composes; instantiating needs a GPU
        return
    trainer = build_trainer(cfg)
    assert isinstance(trainer, L.Trainer)
    kinds = {"logger": trainer.loggers, "callbacks": trainer.callbacks}
    if cfg.trainer.get("fast_dev_run"):
        del kinds["logger"]  # Lightning swaps the loggers for a DummyLogger in a fast dev run
    for kind, built in kinds.items():
        for name, entry in (cfg.get(kind) or {}).items():
            if entry is not None:
                cls = hydra.utils.get_class(entry._target_)
                assert any(isinstance(obj, cls) for obj in built), f"{kind}.{name}: no {cls.__name__}"
    if group == "paths":
        assert Path(cfg.paths.run_dir).parent == Path(cfg.paths.runs_dir)
    if group == "hardware":  # every constant of every profile carries its source
        profile = hardware_profile(cfg)
        assert isinstance(profile, HardwareProfile) and profile.name == option
        constants = profile.energy.constants()
        assert {"ac", "neuron_update", "ann_mac"} <= set(constants)
        assert all(len(constant.source) > 20 for constant in constants.values()), constants
    if group == "regularizer" and option != "none":
        assert task.spike_penalty is not None


@pytest.mark.parametrize("model", options("model"))
def test_models(compose_config, model: str) -> None:
    cfg = compose_config("train", [f"model={model}"])
    network = instantiate(cfg.model)
    assert isinstance(network, nn.Module)
    cameras = cfg.model.get("num_cameras", 1)
    out, _ = network(torch.zeros(1, cameras * cfg.data.num_bins, 16, 16), None)
    key = network.prediction.output_key
    assert out[key].shape == (1, {"flow": 2, "depth": 1}[key], 16, 16)


def test_validate_and_show_configs_compose(compose_config) -> None:
    assert compose_config("validate", ["runid=abc"]).checkpoint == "last"
    assert compose_config("show").data == compose_config("train", tiny=False).data


def test_the_depth_task_picks_its_loss_and_model_and_keeps_overrides(compose_config) -> None:
    cfg = compose_config("train", ["task=depth", "data=synthetic_stereo"])
    assert (
        cfg.task._target_ == "tinyflow.tasks.DepthTask"
        and cfg.loss._target_ == "tinyflow.tasks.DepthSIGradLoss"
    )
    assert cfg.model._target_ == "tinyflow.models.StereoSpike" and cfg.model.num_cameras == 2
    mono = compose_config("train", ["task=depth", "model=stereospike_mono", "loss.invariance=1.0"])
    assert mono.model.num_cameras == 1 and mono.loss.invariance == 1.0
    assert compose_config("train").task._target_ == "tinyflow.tasks.FlowTask"


def test_cosine_schedule_needs_a_step_budget(compose_config) -> None:
    cfg = compose_config("train", ["trainer.max_steps=-1", "trainer.max_epochs=3"])
    with pytest.raises(
        ConfigError, match=r"scheduler.T_max=-1 .*set trainer.max_steps, or scheduler=constant"
    ):
        check_config(cfg)
    check_config(
        compose_config("train", ["trainer.max_steps=-1", "trainer.max_epochs=3", "scheduler=constant"])
    )
