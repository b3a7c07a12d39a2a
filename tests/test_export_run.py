"""``python export.py runid=<id> export=...`` and ``python train.py export=onnx`` on a tiny trained run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

pytest.importorskip("onnxruntime")
pytest.importorskip("nir")
pytest.importorskip("nirtorch")

from conftest import CONFIG_DIR, TINY_TRAIN

from tinyflow.app.checks import ConfigError
from tinyflow.app.errors import user_errors_as_messages
from tinyflow.app.export import chosen_format, export_run
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.train import train
from tinyflow.export.errors import ExportError
from tinyflow.export.files import sha256_file
from tinyflow.export.formats import NirFormat, OnnxFormat, OnnxInt8Format
from tinyflow.export.parity import ParityCheck

PARITY = ["parity.windows=12"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export_root")


@pytest.fixture(scope="module")
def composer(root: Path) -> Callable[..., DictConfig]:
    register_resolvers()

    def _compose(name: str, overrides: list[str]) -> DictConfig:
        base = [f"paths.root_dir={root}"] + (TINY_TRAIN if name == "train" else [])
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name=name, overrides=base + overrides)

    return _compose


@pytest.fixture(scope="module")
def trained(composer, root: Path) -> str:
    """A tiny run trained with ``export=onnx``: the callback exports its last weights."""
    return train(composer("train", ["export=onnx", *PARITY]))["run_id"]


def run_export(composer, root: Path, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="export", overrides=[f"paths.root_dir={root}", *PARITY, *overrides])
        return export_run(cfg, overrides)


def test_train_with_export_onnx_writes_model_manifest_and_parity(trained: str, root: Path) -> None:
    folder = root / "runs" / trained / "export" / "onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx", "parity.json"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "onnx" and manifest["precision"] == "fp32" and manifest["opset"] == 20
    assert manifest["source"] == {
        "run_id": trained,
        "checkpoint": None,
        "checkpoint_sha256": None,
        "global_step": 2,
    }
    assert manifest["inputs"][0]["name"] == "x" and manifest["inputs"][0]["shape"] == [
        1,
        5,
        32,
        32,
    ]
    assert manifest["outputs"][0]["name"] == "flow"
    tensors = manifest["state"]["tensors"]
    assert len(tensors) == 14 and all(t["initial"] == "zeros" for t in tensors)
    assert tensors[0] == {
        "input": "state.head.0",
        "output": "new_state.head.0",
        "layer": "head",
        "layer_type": "ConvLIF",
        "index": 0,
        "shape": [1, 4, 32, 32],
        "dtype": "float32",
        "initial": "zeros",
    }
    assert (
        manifest["window"]["encoding"] == "voxel"
        and manifest["window"]["num_bins"] == 5
        and manifest["window"]["sensor_size"] == [32, 32]
    )
    assert manifest["window"]["windowing"]["mode"] == "duration"
    parity = json.loads((folder / "parity.json").read_text())
    assert parity["windows"] == 10  # the tiny validation recording has 10 GT windows
    assert parity["abs_diff"]["max"] <= 1e-4
    assert parity["aee_px"]["change"] == pytest.approx(0, abs=1e-4)


def test_export_py_writes_int8_and_nir_with_the_checkpoint_hash(trained: str, composer, root: Path) -> None:
    checkpoint = root / "runs" / trained / "checkpoints" / "last.ckpt"
    int8 = run_export(composer, root, [f"runid={trained}", "export=onnx_int8"])
    manifest = json.loads((int8.folder / "manifest.json").read_text())
    assert int8.model.name == "model.int8.onnx" and manifest["precision"] == "int8"
    assert manifest["source"]["checkpoint_sha256"] == sha256_file(checkpoint)
    assert manifest["quantisation"]["calibration_windows"] == 10
    assert int8.report.aee_px.keys() == {"pytorch", "onnx_int8"}

    spiking = run_export(composer, root, [f"runid={trained}", "export=nir"])
    assert spiking.model.name == "model.nir" and spiking.model.is_file()
    assert spiking.report.spike_agreement.keys() == {"head", "G1", "R1a", "R1b", "G2", "R2a", "R2b"}
    assert min(spiking.report.spike_agreement.values()) > 0.999


def test_an_existing_export_is_refused_and_replaced_with_overwrite(
    trained: str, composer, root: Path
) -> None:
    folder = root / "runs" / trained / "export" / "onnx"
    before = (folder / "manifest.json").read_text()
    with pytest.raises(ExportError, match=r"export/onnx: an export is already there; pass overwrite=true"):
        run_export(composer, root, [f"runid={trained}"])
    assert (folder / "manifest.json").read_text() == before
    result = run_export(composer, root, [f"runid={trained}", "overwrite=true"])
    assert json.loads((result.folder / "manifest.json").read_text())["source"]["checkpoint"].endswith(
        "last.ckpt"
    )
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_the_callback_refuses_before_training_when_its_export_exists(trained: str, composer) -> None:
    cfg = composer("train", ["export=onnx", f"run_id={trained}x", *PARITY])
    callback = instantiate(cfg.callbacks.export)
    callback.target.mkdir(parents=True)
    with pytest.raises(ExportError, match=r"an export is already there, and export=onnx would write one"):
        train(cfg)


def test_hardware_profile_picks_the_format_unless_export_is_given(composer) -> None:
    """The profiles of config/hardware: cmos45_int8 (int8, onnx_int8), loihi (nir at int8: NIR keeps float
    weights), cmos45_fp32 (onnx); ``export=`` on the command line wins."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for profile, target in (
            ("cmos45_int8", "OnnxInt8Format"),
            ("loihi", "NirFormat"),
            ("cmos45_fp32", "OnnxFormat"),
        ):
            overrides = ["runid=x", f"hardware={profile}"]
            cfg = compose(config_name="export", overrides=overrides)
            assert chosen_format(cfg, overrides)._target_.endswith(target), profile
        explicit = ["runid=x", "hardware=cmos45_int8", "export=nir"]
        assert chosen_format(compose(config_name="export", overrides=explicit), explicit)._target_.endswith(
            "NirFormat"
        )
        overrides = ["runid=x", "hardware=cmos45_fp32", "hardware.precision=int8"]
        cfg = compose(config_name="export", overrides=overrides)
        assert chosen_format(cfg, overrides)._target_.endswith("OnnxInt8Format")
        overrides = ["runid=x", "hardware=cmos45_fp32", "hardware.export_format=tflite"]
        with pytest.raises(
            ConfigError, match=r"hardware=cmos45_fp32: hardware cmos45_fp32: export_format='tflite'"
        ):
            chosen_format(compose(config_name="export", overrides=overrides), overrides)


def test_export_none_is_one_message(composer, root: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info, user_errors_as_messages():
        run_export(composer, root, ["runid=nothing", "export=none"])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: export=none: nothing to export; expected export=onnx|onnx_int8|nir"
    )


@pytest.mark.parametrize(
    ("option", "cls"),
    [("onnx", OnnxFormat), ("onnx_int8", OnnxInt8Format), ("nir", NirFormat), ("none", type(None))],
)
def test_every_export_option_instantiates_its_format(composer, option: str, cls: type) -> None:
    cfg = composer("export", ["runid=x", f"export={option}"])
    export_format = instantiate(cfg.export) if cfg.export is not None else None
    assert isinstance(export_format, cls)
    if isinstance(export_format, OnnxInt8Format):
        assert export_format.calibration_windows == cfg.parity.windows  # interpolated, not copied
    assert isinstance(instantiate(cfg.parity), ParityCheck)
    train_cfg = composer("train", [f"export={option}"])
    callback = instantiate(train_cfg.callbacks.export)
    assert isinstance(callback.export, cls) and callback.folder.name == "export"
