"""Shared fixtures: the real Hydra config tree composed with tiny overrides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tinyflow.app.resolvers import register_resolvers

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

# A synthetic dataset and training budget small enough for a test on 2 CPU cores.
TINY_TRAIN = [
    "data.synth.height=32",
    "data.synth.width=32",
    "data.synth.duration_us=200000",
    "data.num_train=2",
    "data.num_val=1",
    "data.batch_size=2",
    "data.seq_len=3",
    "data.num_workers=0",
    "model.base_num_channels=4",
    "trainer.max_steps=2",
    "trainer.check_val_every_n_epoch=100",
    "trainer.enable_model_summary=false",
    "callbacks.progress=null",
]


@pytest.fixture(autouse=True)
def file_check_cache(tmp_path_factory, monkeypatch) -> None:
    """Verdicts of the full-file checks go to a folder of the test session, not the user's cache."""
    monkeypatch.setenv("TINYFLOW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def compose_at(root: Path, name: str, overrides: list[str]) -> DictConfig:
    """Compose ``config/<name>.yaml`` with every path under ``root``, then ``overrides``."""
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=[f"paths.root_dir={root}", *overrides])


@pytest.fixture
def compose_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose ``config/<name>.yaml`` with overrides, with every path under the test's tmp dir."""

    def _compose(name: str = "train", overrides: list[str] | None = None, tiny: bool = True) -> DictConfig:
        base = TINY_TRAIN if tiny and name == "train" else []
        return compose_at(tmp_path, name, [*base, *(overrides or [])])

    return _compose
