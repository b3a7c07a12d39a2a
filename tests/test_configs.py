"""Every option of every config group composes and instantiates."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from tinyflow.data import EventDataModule
from tinyflow.workflows import build_module, build_trainer

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def test_every_group_has_options() -> None:
    for group in (
        "data",
        "model",
        "loss",
        "optimizer",
        "scheduler",
        "trainer",
        "logger",
        "callbacks",
        "paths",
        "debug",
        "experiment",
    ):
        assert options(group), group


@pytest.mark.parametrize("model", options("model"))
def test_models(compose_config, model: str) -> None:
    cfg = compose_config("train", [f"model={model}"])
    network = instantiate(cfg.model)
    assert isinstance(network, nn.Module)
    out, _ = network(torch.zeros(1, cfg.data.num_bins, 16, 16), None)
    assert out["flow"].shape == (1, 2, 16, 16)


@pytest.mark.parametrize("data", options("data"))
def test_data(compose_config, data: str, tmp_path) -> None:
    cfg = compose_config(
        "train", [f"data={data}"] + ([f"data.root={tmp_path}"] if data == "h5dir" else []), tiny=False
    )
    assert isinstance(instantiate(cfg.data), EventDataModule)


@pytest.mark.parametrize(
    "group", ["loss", "optimizer", "scheduler", "logger", "callbacks", "trainer", "debug", "experiment"]
)
def test_other_groups(compose_config, group: str, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for option in options(group):
        cfg = compose_config("train", [f"{group}={option}"], tiny=False)
        if group == "trainer" and cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
            assert cfg.trainer.devices >= 1  # composes; instantiating needs a GPU
            continue
        module = build_module(cfg)
        assert isinstance(build_trainer(cfg), L.Trainer)
        assert callable(module.loss_for((8, 8)).compute) and isinstance(module.network, nn.Module)
        optimizers = module.configure_optimizers()
        if isinstance(optimizers, dict):  # with a learning-rate scheduler
            scheduler = optimizers["lr_scheduler"]["scheduler"]
            assert scheduler.optimizer is optimizers["optimizer"]
            optimizers = optimizers["optimizer"]
        assert isinstance(optimizers, torch.optim.Optimizer)


def test_validate_and_show_configs_compose(compose_config) -> None:
    assert compose_config("validate", ["runid=abc"]).checkpoint == "last"
    assert compose_config("show").data == compose_config("train", tiny=False).data


def test_cosine_schedule_needs_a_step_budget(compose_config) -> None:
    cfg = compose_config("train", ["trainer.max_steps=-1", "trainer.max_epochs=3"])
    with pytest.raises(ValueError, match=r"scheduler.T_max: .* got -1 .*scheduler=constant"):
        build_module(cfg)
    assert build_module(compose_config("train", ["trainer.max_steps=-1", "scheduler=constant"]))
