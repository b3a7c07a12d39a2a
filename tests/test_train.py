"""End to end: train.py's workflow on tiny synthetic data, validate.py, resume, other data layouts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import h5py
import lightning as L
import numpy as np
import pytest
import torch
from conftest import TINY_TRAIN
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tinyflow.app.build import build_task, build_trainer
from tinyflow.app.runs import find_run
from tinyflow.app.train import train
from tinyflow.app.validate import validate
from tinyflow.events.groundtruth import FlowGT
from tinyflow.io import open_recording, write_canonical
from tinyflow.models.neurons import NEURON_TYPES
from tinyflow.models.stateful import map_state

ROOT = Path(__file__).resolve().parents[1]


class CrashOnce(L.Callback):
    """Raises once at a given step (marker file), and records every trained step to a file."""

    def __init__(self, at_step: int, marker: str, steps_file: str) -> None:
        self.at_step, self.marker, self.steps_file = at_step, Path(marker), Path(steps_file)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with self.steps_file.open("a") as file:
            file.write(f"{trainer.global_step}\n")
        if trainer.global_step == self.at_step and not self.marker.exists():
            self.marker.touch()
            raise RuntimeError("simulated crash")


class StateChecks(L.Callback):
    """After every optimiser step: the state carries no graph, and streams that ended were reset."""

    def __init__(self) -> None:
        self.checked = 0
        self.resets = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        state = pl_module.network.state
        map_state(lambda t: _assert_detached(t), state)
        ended = batch["end_of_recording"][-1]
        if ended.any():
            self.resets += 1
            map_state(lambda t: _assert_zero_rows(t, ended), state)
        self.checked += 1


def _assert_detached(tensor: torch.Tensor) -> torch.Tensor:
    assert tensor.grad_fn is None and not tensor.requires_grad
    return tensor


def _assert_zero_rows(tensor: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    assert torch.count_nonzero(tensor[rows]) == 0
    return tensor


def test_train_then_validate_reproduces_the_numbers(compose_config, tmp_path) -> None:
    results = train(compose_config("train"))
    run = find_run(results["run_id"], tmp_path / "runs")
    assert run.checkpoint("last").is_file() and run.config().run_id == results["run_id"]
    assert (run.run_dir / "csv" / "metrics.csv").is_file()
    mean = results["mean"]
    assert {"aee", "aee_zero", "outliers", "aae", "fwl", "rsat"} <= mean.keys()
    assert mean["aee_zero"] > 0

    output = tmp_path / "m.json"
    validated = validate(compose_config("validate", [f"runid={results['run_id']}", f"output={output}"]))
    written = json.loads(output.read_text())
    assert written == json.loads(json.dumps(validated))
    assert set(written) == {"recordings", "mean", "spikes"}
    for key, value in mean.items():
        assert written["mean"][key] == pytest.approx(value, abs=1e-5), key
    assert written["recordings"].keys() == results["recordings"].keys()


def write_event_flow_copy(source: Path, target: Path) -> None:
    """The same recording in event_flow's layout: absolute seconds, flow_dt1 maps on the frame clock."""
    recording = open_recording(source)
    events = recording.events(0, recording.num_events)
    gt = recording.flow("dt1")
    clock_us = np.append(gt.t_start_us[:1], gt.t_end_us)
    t0_s = 1000.0
    with h5py.File(target, "w") as file:
        file["events/xs"] = events.x.astype(np.int16)
        file["events/ys"] = events.y.astype(np.int16)
        file["events/ts"] = t0_s + events.t_us * 1e-6
        file["events/ps"] = events.p.astype(bool)
        file.attrs.update(sensor_resolution=np.array(recording.sensor_size), t0=t0_s, num_events=len(events))
        for j, t_us in enumerate(clock_us):
            file[f"images/image{j:09d}"] = np.zeros(recording.sensor_size, np.uint8)
            file[f"images/image{j:09d}"].attrs["timestamp"] = t0_s + t_us * 1e-6
            if j > 0:
                file[f"flow_dt1/flow{j:09d}"] = gt.flow[j - 1]
                file[f"flow_dt1/flow{j:09d}"].attrs["timestamp"] = t0_s + t_us * 1e-6


def test_validate_on_event_flow_layout_matches_canonical(compose_config, tmp_path) -> None:
    results = train(compose_config("train"))
    val_files = sorted((tmp_path / "data" / "synthetic").glob("synthetic_*/val/*.h5"))
    assert val_files
    # event_flow's layout has no validity mask: compare with canonical copies without one.
    folders = {name: tmp_path / name for name in ("canonical", "event_flow")}
    for folder in folders.values():
        folder.mkdir()
    for path in val_files:
        write_event_flow_copy(path, folders["event_flow"] / path.name)
        recording = open_recording(path)
        gt = recording.flow("dt1")
        events = recording.events(0, recording.num_events)
        flows = {"dt1": FlowGT(gt.flow, gt.t_start_us, gt.t_end_us)}
        write_canonical(folders["canonical"] / path.name, events, recording.sensor_size, flows=flows)
    per_layout = {}
    for name, root in folders.items():
        overrides = [f"runid={results['run_id']}", "data=h5dir", f"data.root={root}"]
        per_layout[name] = validate(compose_config("validate", overrides))
    assert per_layout["canonical"]["mean"]["aee"] > 0
    for key, value in per_layout["canonical"]["mean"].items():
        assert per_layout["event_flow"]["mean"][key] == pytest.approx(value, abs=1e-6), key


def test_state_is_detached_after_each_step_and_reset_at_recording_end(compose_config) -> None:
    cfg = compose_config("train", ["trainer.max_steps=8", "+callbacks.state._target_=test_train.StateChecks"])
    datamodule = instantiate(cfg.data)
    module = build_task(cfg)
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=datamodule)
    checks = next(c for c in trainer.callbacks if isinstance(c, StateChecks))
    assert checks.checked == 8 and checks.resets >= 1


def test_resume_continues_the_step_count(compose_config, tmp_path) -> None:
    marker, steps = tmp_path / "crashed", tmp_path / "steps.txt"
    overrides = [
        "trainer.max_steps=4",
        "callbacks.checkpoint_last.every_n_train_steps=2",
        "+callbacks.crash._target_=test_train.CrashOnce",
        "+callbacks.crash.at_step=3",
        f"+callbacks.crash.marker={marker}",
        f"+callbacks.crash.steps_file={steps}",
        "run_id=crashrun",
    ]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_config("train", overrides))
    assert steps.read_text().split() == ["1", "2", "3"]
    run = find_run("crashrun", tmp_path / "runs")
    crashed = torch.load(run.checkpoint("last"), weights_only=True)
    lr = compose_config("train").optimizer.lr
    assert crashed["global_step"] == 2
    # the default cosine schedule over trainer.max_steps = 4: half the learning rate after 2 steps
    assert crashed["lr_schedulers"][0]["last_epoch"] == 2
    assert crashed["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(lr / 2)

    results = train(compose_config("train", ["resume=crashrun"]))
    assert results["run_id"] == "crashrun"
    assert steps.read_text().split() == ["1", "2", "3", "3", "4"]
    finished = torch.load(run.checkpoint("last"), weights_only=True)
    assert finished["global_step"] == 4
    assert finished["lr_schedulers"][0]["last_epoch"] == 4
    assert finished["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0, abs=1e-12)


def test_unknown_run_names_the_known_runs(compose_config, tmp_path) -> None:
    (tmp_path / "runs" / "abc").mkdir(parents=True)
    (tmp_path / "runs" / "abc" / "config.yaml").write_text("run_id: abc\n")
    with pytest.raises(FileNotFoundError, match=r"no run 'nope'.*known runs: \['abc'\]"):
        validate(compose_config("validate", ["runid=nope"]))


class InitialWeights(L.Callback):
    """Keeps a copy of the task's weights at the start of training (``InitialWeights.state``)."""

    state: ClassVar[dict[str, torch.Tensor]] = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        InitialWeights.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def config_neuron(model: str) -> str | None:
    """The ``neuron`` of ``config/model/<model>.yaml`` as composed (None for the ANNs)."""
    with initialize_config_dir(config_dir=str(ROOT / "config"), version_base="1.3"):
        return compose(config_name=None, overrides=[f"+model={model}", "+data.num_bins=2"]).model.get(
            "neuron"
        )


MODELS = sorted(p.stem for p in (ROOT / "config" / "model").glob("*.yaml"))
NEURON_OF = {m: config_neuron(m) for m in MODELS}
SPIKING_MODELS = [m for m in MODELS if NEURON_OF[m] is not None]  # the ANNs take no neuron
ANN_MODELS = [m for m in MODELS if m not in SPIKING_MODELS]
# a spiking config with another neuron than LIF is a LIF config with model.neuron set (plif_evflownet)
ALL_PAIRS = [
    (m, n) for m in SPIKING_MODELS for n in (NEURON_TYPES if NEURON_OF[m] == "lif" else [NEURON_OF[m]])
] + [(m, None) for m in ANN_MODELS]
# The default run covers every model (with its config's neuron) and every neuron once; -m slow runs every pair.
QUICK_PAIRS = [(m, NEURON_OF[m]) for m in SPIKING_MODELS] + [
    ("lif_firenet", n) for n in NEURON_TYPES if n != "lif"
]
QUICK_PAIRS += [(m, None) for m in ANN_MODELS]


# The depth networks train the depth task on stereo data (StereoSpike-mono on its left camera).
DEPTH_MODELS = {
    "stereospike": ["task=depth", "data=synthetic_stereo"],
    "stereospike_mono": ["task=depth", "data=synthetic_stereo", "data.cameras=[left]"],
}


def train_fast_dev_run(compose_config, tmp_path: Path, model: str, neuron: str | None) -> None:
    """``python train.py task=flow model=<model> model.neuron=<neuron> debug=fdr`` (``task=depth`` for the
    depth networks): one step changes the weights, and the validation reports the task's metrics."""
    overrides = [
        *DEPTH_MODELS.get(model, ["task=flow"]),
        f"model={model}",
        "debug=fdr",
        "+callbacks.initial._target_=test_train.InitialWeights",
    ]
    results = train(compose_config("train", overrides + ([f"model.neuron={neuron}"] if neuron else [])))
    trained = torch.load(
        tmp_path / "runs" / results["run_id"] / "checkpoints" / "last.ckpt", weights_only=True
    )
    changed = [k for k, v in trained["state_dict"].items() if not torch.equal(v, InitialWeights.state[k])]
    assert changed, "a training step left every weight unchanged"
    if model in DEPTH_MODELS:
        assert {"mde", "mde_const", "abs_rel", "rmse", "delta1"} <= set(results["mean"])
        assert results["mean"]["mde_const"] > 0
        return
    assert set(results["mean"]) == {"aee", "outliers", "aee_zero", "aae", "fwl", "rsat"}
    assert results["mean"]["aee_zero"] > 0


@pytest.mark.parametrize(("model", "neuron"), QUICK_PAIRS)
def test_every_model_and_neuron_trains_a_fast_dev_run(compose_config, tmp_path, model, neuron) -> None:
    train_fast_dev_run(compose_config, tmp_path, model, neuron)


@pytest.mark.slow
@pytest.mark.parametrize(("model", "neuron"), [p for p in ALL_PAIRS if p not in QUICK_PAIRS])
def test_every_supported_pair_trains_a_fast_dev_run(compose_config, tmp_path, model, neuron) -> None:
    train_fast_dev_run(compose_config, tmp_path, model, neuron)


@pytest.mark.parametrize("model", ANN_MODELS)
def test_a_neuron_for_an_ann_is_refused_naming_both(compose_config, model: str) -> None:
    with pytest.raises(Exception, match=r"(?s)(?=.*lif)(?=.*ANN)") as raised:
        train(compose_config("train", [f"model={model}", "model.neuron=lif", "debug=fdr"]))
    assert model.replace("_", "").lower() in str(raised.value).replace("_", "").lower()


def test_wandb_logger_runs_offline_without_credentials(compose_config, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    results = train(compose_config("train", ["logger=wandb"]))
    offline_runs = list((tmp_path / "runs" / results["run_id"] / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1 and results["run_id"] in offline_runs[0].name


def test_multirun_sweep_gives_one_validatable_run_per_value(tmp_path) -> None:
    tiny = [o for o in TINY_TRAIN if not o.startswith(("model.base_num_channels", "trainer.max_steps"))]
    command = [sys.executable, "train.py", "-m", "model.base_num_channels=2,4", "trainer.max_steps=2", *tiny]
    env = {**os.environ, "TINYFLOW_ROOT": str(tmp_path)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run_ids = re.findall(r"run id: (\w+)", done.stdout)
    assert len(set(run_ids)) == 2
    channels = sorted(find_run(r, tmp_path / "runs").config().model.base_num_channels for r in run_ids)
    assert channels == [2, 4]
    for run_id in run_ids:
        validated = subprocess.run(
            [sys.executable, "validate.py", f"runid={run_id}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert validated.returncode == 0 and "mean" in validated.stdout, validated.stderr[-3000:]
