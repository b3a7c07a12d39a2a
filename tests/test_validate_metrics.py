"""``metrics=default|full``: which declared metrics the tables, the JSON of ``validate.py output=`` and the
returned results hold (issue 14, point 4: the low-power fork's metrics)."""

from __future__ import annotations

import json

import pytest

from tinyflow.app.checks import ConfigError
from tinyflow.app.train import train
from tinyflow.app.validate import validate
from tinyflow.metrics.flow import FLOW_METRICS

DEFAULT_KEYS = {"aee", "outliers", "aee_zero", "aae", "fwl", "rsat"}
FORK_KEYS = {"nee", "naae", "aae_weighted", "aae_filtered", "ae_mean"}


def test_metrics_full_adds_the_fork_metrics_to_table_json_and_results(
    compose_config, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the whole table on one line per row
    results = train(compose_config("train", ["metrics=full"]))
    assert set(results["mean"]) == DEFAULT_KEYS | FORK_KEYS
    assert "NAAE [deg/px]" in capsys.readouterr().out

    written, printed = {}, {}
    for selection in ("default", "full"):
        output = tmp_path / f"{selection}.json"
        overrides = [f"runid={results['run_id']}", f"output={output}", f"metrics={selection}"]
        validated = validate(compose_config("validate", overrides))
        written[selection] = json.loads(output.read_text())
        printed[selection] = capsys.readouterr().out
        assert written[selection] == json.loads(json.dumps(validated))

    default, full = written["default"], written["full"]
    assert set(default["mean"]) == DEFAULT_KEYS  # the JSON stays as it was
    assert all(set(values) <= DEFAULT_KEYS for values in default["recordings"].values())
    assert set(full["mean"]) == DEFAULT_KEYS | FORK_KEYS
    assert list(full["mean"]) == list(FLOW_METRICS.keys)  # declaration order
    assert full["recordings"].keys() == default["recordings"].keys()
    for key in DEFAULT_KEYS:  # the same validation: only the selection differs
        assert full["mean"][key] == pytest.approx(default["mean"][key], abs=1e-6), key
    for key in FORK_KEYS:
        assert full["mean"][key] == pytest.approx(results["mean"][key], abs=1e-5), key
    assert "NEE" not in printed["default"] and "AE of means [deg]" in printed["full"]


def test_an_unknown_selection_is_refused_before_anything_runs(compose_config) -> None:
    with pytest.raises(ConfigError, match="metrics=all: expected default or full"):
        validate(compose_config("validate", ["runid=nope", "metrics=all"]))
