"""The pretrained run shipped in the package (``runid=pretrained``): small, declared as package data, and
reproducing the metrics recorded next to it without any training."""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import pytest
import tomllib
import torch
from conftest import compose_at

from tinyflow.app.export import export_run
from tinyflow.app.pretrained import (
    CONFIG_FILE,
    METRICS_FILE,
    PACKAGE_DIR,
    WEIGHTS_FILE,
    install_pretrained,
    recorded_metrics,
)
from tinyflow.app.validate import validate

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_run_is_small_and_declared_as_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["tinyflow.app"]
    for name in (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE):
        path = PACKAGE_DIR / name
        assert path.is_file(), path
        relative = str(path.relative_to(ROOT / "tinyflow" / "app"))
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), (relative, patterns)
    assert (PACKAGE_DIR / WEIGHTS_FILE).stat().st_size < 1_000_000
    state = torch.load(PACKAGE_DIR / WEIGHTS_FILE, weights_only=True)
    assert all(value.dtype == torch.float32 for value in state.values())


def test_pretrained_reproduces_its_recorded_metrics(tmp_path):
    recorded = recorded_metrics()
    output = tmp_path / "m.json"
    cfg = compose_at(
        tmp_path, "validate", ["runid=pretrained", f"output={output}", *recorded["check"]["overrides"]]
    )
    results = validate(cfg)
    for key in ("aee", "aee_zero", "outliers", "aae"):
        assert results["mean"][key] == pytest.approx(recorded["check"]["mean"][key], rel=1e-5, abs=1e-6), key
    assert json.loads(output.read_text())["mean"]["aee"] == results["mean"]["aee"]
    run_dir = tmp_path / "runs" / "pretrained"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and (run_dir / CONFIG_FILE).is_file()
    assert recorded["validation"]["aee"] < 0.5 * recorded["validation"]["aee_zero"]  # a trained network


def test_a_changed_package_is_reinstalled(tmp_path):
    package = tmp_path / "package"
    shutil.copytree(PACKAGE_DIR, package)
    runs = tmp_path / "runs"
    first = install_pretrained(runs, package)
    stamp = (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert install_pretrained(runs, package) == first
    assert (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp  # kept: the same weights
    state = torch.load(package / WEIGHTS_FILE, weights_only=True)
    key = next(iter(state))
    state[key] = state[key] + 1
    torch.save(state, package / WEIGHTS_FILE)
    again = install_pretrained(runs, package)
    loaded = torch.load(again / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    torch.testing.assert_close(loaded[key], state[key])
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]  # no staging folder left
    (package / WEIGHTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"network\.pt"):
        install_pretrained(tmp_path / "other_runs", package)


@pytest.mark.slow
def test_pretrained_exports(tmp_path):
    """``python export.py runid=pretrained`` on the check set: ONNX within 1e-4 px of PyTorch."""
    overrides = ["runid=pretrained", "export=onnx", *recorded_metrics()["check"]["overrides"]]
    export_run(compose_at(tmp_path, "export", overrides))
    parity = json.loads((tmp_path / "runs" / "pretrained" / "export" / "onnx" / "parity.json").read_text())
    assert parity["abs_diff"]["max"] < 1e-4 and parity["windows"] > 0
