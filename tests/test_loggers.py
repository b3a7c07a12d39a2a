"""W&B (offline) and MLflow (local store): config, metrics, images, checkpoints; validate.py finds the runs."""

from __future__ import annotations

import shutil

import pytest
from mlflow import MlflowClient

from tinyflow.app.train import train
from tinyflow.app.validate import validate

MEDIA = ["callbacks.media.train_every_n_steps=1"]


@pytest.fixture(autouse=True)
def own_mlflow_store(monkeypatch) -> None:
    """Each test's runs go to its own store: Lightning's MLFlowLogger exports MLFLOW_TRACKING_URI (through
    mlflow.set_tracking_uri), which paths.mlflow_uri would otherwise pick up in the next test."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def wandb_offline_env(tmp_path, monkeypatch) -> None:
    """No W&B credentials, and every W&B folder (staging, cache, settings) inside the test's tmp dir."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def assert_same_metrics(found: dict, trained: dict) -> None:
    assert found["recordings"].keys() == trained["recordings"].keys()
    for key, value in trained["mean"].items():
        assert found["mean"][key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.usefixtures("wandb_offline_env")
def test_wandb_offline_run_is_found_and_validated_by_its_id(compose_config, tmp_path) -> None:
    overrides = ["logger=wandb", "run_id=wbrun", "logger.wandb.id=wandb0id", *MEDIA]
    trained = train(compose_config("train", overrides))
    offline = list((tmp_path / "runs" / "wbrun" / "wandb").glob("offline-run-*-wandb0id"))
    assert len(offline) == 1
    images = {
        p.parent.name + "/" + p.name.split("_")[0] for p in (offline[0] / "files" / "media").rglob("*.png")
    }
    assert {"train/iwe", "train/flow", "val/flow", "val/events"} <= images
    staged = {p.read_bytes() for p in (tmp_path / "wandb-home" / "wandb_data_dir").rglob("staging/*")}
    checkpoint = tmp_path / "runs" / "wbrun" / "checkpoints" / "last.ckpt"
    assert checkpoint.read_bytes() in staged, "the checkpoint artifact waits in W&B's staging folder"

    found = validate(compose_config("validate", ["runid=wandb0id", "callbacks=none"]))
    assert_same_metrics(found, trained)


def test_mlflow_run_is_found_by_id_and_by_name_even_without_its_folder(compose_config, tmp_path) -> None:
    overrides = ["logger=mlflow", "run_id=mlrun", "logger.mlflow.run_name=my-experiment", *MEDIA]
    trained = train(compose_config("train", overrides))
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.params["model/base_num_channels"] == "4" and "val/aee" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "run")}
    assert artifacts == {"run/config.yaml", "run/checkpoints"}
    assert any(a.path.startswith("images/val_flow") for a in client.list_artifacts(run.info.run_id, "images"))

    by_id = validate(compose_config("validate", [f"runid={run.info.run_id}", "callbacks=none"]))
    assert_same_metrics(by_id, trained)
    shutil.rmtree(tmp_path / "runs" / "mlrun")  # the run's folder is gone: its artifacts are downloaded
    by_name = validate(compose_config("validate", ["runid=my-experiment", "callbacks=none"]))
    assert_same_metrics(by_name, trained)
    assert (tmp_path / "runs" / "downloads" / f"mlflow-{run.info.run_id}" / "run" / "config.yaml").is_file()


def test_a_resumed_run_logs_into_its_own_mlflow_run(compose_config, tmp_path) -> None:
    overrides = ["logger=mlflow", "run_id=mlresume", "scheduler=constant", "trainer.log_every_n_steps=1"]
    train(compose_config("train", overrides))
    longer = ["resume=mlresume", "trainer.max_steps=4"]
    train(compose_config("train", longer), longer)
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    steps = sorted({m.step for m in client.get_metric_history(run.info.run_id, "train/loss")})
    assert steps == [0, 1, 2, 3], "one MLflow run holds the steps before and after the resume"


def test_a_depth_run_logs_depth_images_and_validates_by_its_mlflow_id(compose_config, tmp_path) -> None:
    overrides = ["task=depth", "data=synthetic_stereo", "logger=mlflow", "run_id=mldepth", *MEDIA]
    trained = train(compose_config("train", overrides))
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert "val/mde" in run.data.metrics and "val/mde_const" in run.data.metrics
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images")]
    for key in (
        "train_depth",
        "train_input_right",
        "val_depth",
        "val_depth_gt",
        "val_depth_error",
        "val_events",
    ):
        assert any(path.startswith(f"images/{key}+step") for path in images), (key, images)
    found = validate(compose_config("validate", [f"runid={run.info.run_id}", "callbacks=none"]))
    assert_same_metrics(found, trained)
