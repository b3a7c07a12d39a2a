"""The quant group in train.py / validate.py: QAT fine-tuned from a float run (validated, resumed exactly),
PTQ of a float run, and the refused combinations."""

from __future__ import annotations

import pytest
import torch

from tinyflow.app.checks import ConfigError, check_config
from tinyflow.app.runs import find_run
from tinyflow.app.train import train
from tinyflow.app.validate import validate

QAT = ["quant=qat_int8", "quant.calibration_batches=2"]
PTQ = ["quant=ptq_int8", "quant.calibration_batches=2"]


def checkpoint(tmp_path, run_id: str) -> dict:
    return torch.load(find_run(run_id, tmp_path / "runs").checkpoint("last"), weights_only=True)


@pytest.fixture
def float_run(compose_config) -> str:
    return train(compose_config("train", ["run_id=float"]))["run_id"]


def qat_from(float_run: str) -> list[str]:
    """QAT fine-tuning of ``float_run`` for 4 steps, a checkpoint every 2."""
    steps = ["trainer.max_steps=4", "callbacks.checkpoint_last.every_n_train_steps=2"]
    return [*QAT, f"init_from={float_run}", *steps]


def test_qat_from_a_float_run_trains_and_validates(compose_config, float_run, tmp_path) -> None:
    results = train(compose_config("train", [*qat_from(float_run), "run_id=qat"]))
    trained = checkpoint(tmp_path, "qat")["state_dict"]
    start = checkpoint(tmp_path, float_run)["state_dict"]
    key = "network.network.layers.head.synapses.ff.weight"
    assert not torch.equal(trained[key], start[key])  # fine-tuned from the float weights
    assert any(
        k.endswith("input_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value")
        for k in trained
    )

    validated = validate(compose_config("validate", ["runid=qat"]))
    for metric, value in results["mean"].items():
        assert validated["mean"][metric] == pytest.approx(value, abs=1e-5), metric


@pytest.mark.slow
def test_a_qat_run_resumes_exactly(compose_config, float_run, tmp_path) -> None:
    train(compose_config("train", [*qat_from(float_run), "run_id=qat"]))
    trained = checkpoint(tmp_path, "qat")["state_dict"]
    marker, steps = tmp_path / "crashed", tmp_path / "steps.txt"
    crash = [
        "+callbacks.crash._target_=test_train.CrashOnce",
        "+callbacks.crash.at_step=3",
        f"+callbacks.crash.marker={marker}",
        f"+callbacks.crash.steps_file={steps}",
    ]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_config("train", [*qat_from(float_run), *crash, "run_id=crashed"]))
    assert checkpoint(tmp_path, "crashed")["global_step"] == 2
    train(compose_config("train", ["resume=crashed"]))
    resumed = checkpoint(tmp_path, "crashed")["state_dict"]
    assert resumed.keys() == trained.keys()
    for name, value in trained.items():
        torch.testing.assert_close(resumed[name], value, atol=1e-6, rtol=0, msg=name)


def test_ptq_calibrates_a_float_run_without_training(compose_config, float_run, tmp_path) -> None:
    results = train(compose_config("train", [*PTQ, f"init_from={float_run}", "run_id=ptq"]))
    saved = checkpoint(tmp_path, "ptq")
    assert saved["global_step"] == 0
    start = checkpoint(tmp_path, float_run)["state_dict"]
    for name, value in start.items():  # the float weights, untrained; the scales added
        torch.testing.assert_close(saved["state_dict"][name], value, atol=0, rtol=0, msg=name)
    assert len(saved["state_dict"]) > len(start)
    validated = validate(compose_config("validate", ["runid=ptq"]))
    assert validated["mean"]["aee"] == pytest.approx(results["mean"]["aee"], abs=1e-5)
    with pytest.raises(ConfigError, match="no training to continue"):
        train(compose_config("train", ["resume=ptq"]))
    with pytest.raises(ConfigError, match="that run is quantised"):
        train(compose_config("train", [*QAT, "init_from=ptq"]))
    with pytest.raises(ConfigError, match=r"model.base_num_channels=8 \(run float: 4\)"):
        train(compose_config("train", [*QAT, f"init_from={float_run}", "model.base_num_channels=8"]))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()) == ["float", "ptq"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["quant=ptq_int8"], "give init_from=<float run id>"),
        (["quant=ptq_int8", "init_from=x", "trainer=ddp_cpu"], "runs in one process"),
        (["quant=qat_int8", "quant.weights=row"], "quant.weights='row': expected tensor or channel"),
        (["quant=qat_int8", "quant.calibration_batches=0"], "quant.calibration_batches=0"),
        (["quant=qat_int8", "quant.membrane_bits=1"], "quant.membrane_bits=1"),
        (
            ["quant=qat_int8", "quant.membrane_bits=8", "model=firenet"],
            "is an ANN without membrane potentials",
        ),
    ],
)
def test_bad_quant_combinations_are_refused_early(compose_config, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config("train", overrides))
