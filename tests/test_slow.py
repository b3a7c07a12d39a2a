"""The long tests (``pytest -m slow``): every experiment config trains, and a short run learns flow."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIG_DIR

from tinyflow.app.train import train

pytestmark = pytest.mark.slow

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
# Small enough for 2 cores: the experiment's own settings, on a few small recordings, for a few steps.
EXPERIMENT_SMOKE = [
    "data.synth.height=64",
    "data.synth.width=64",
    "data.synth.duration_us=1000000",
    "data.num_train=8",
    "data.num_val=1",
    "trainer.max_steps=4",
    "trainer.check_val_every_n_epoch=100",
]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_trains_a_few_steps(compose_config, experiment: str) -> None:
    cfg = compose_config("train", [f"experiment={experiment}", *EXPERIMENT_SMOKE], tiny=False)
    results = train(cfg)
    assert results["mean"]["aee_zero"] > 0
    assert Path(cfg.paths.runs_dir, results["run_id"], "checkpoints", "last.ckpt").is_file()


# About 3 minutes on 2 cores: the default recipe (LIF-FireNet, CMax, cosine decay) at 16 channels on
# 32 recordings of 32x32 pixels (whole frames: the default run's crop size) for 600 steps.
LEARNING_RUN = [
    "data.synth.height=32",
    "data.synth.width=32",
    "data.num_train=32",
    "data.num_val=2",
    "data.batch_size=16",
    "model.base_num_channels=16",
    "trainer.max_steps=600",
    "trainer.check_val_every_n_epoch=1000",
    "callbacks.progress=null",
]


def test_a_three_minute_run_beats_zero_flow(compose_config) -> None:
    results = train(compose_config("train", LEARNING_RUN, tiny=False))
    mean = results["mean"]
    assert mean["aee"] < 0.8 * mean["aee_zero"], mean
    assert mean["fwl"] > 1.05, mean
