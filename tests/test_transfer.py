"""scripts/eval_transfer.py: a run's transfer table (its own validation data and the transfer sets), in
process, on a run trained for one step; each row is what validate.py reports for that data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_TRAIN, compose_at

from tinyflow.app.train import train
from tinyflow.app.transfer import transfer_table
from tinyflow.app.validate import validate

SMALL_SET = ["num_val=1", "synth.duration_us=100000", "synth.height=32", "synth.width=32"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("transfer_root")
    results = train(compose_at(root, "train", [*TINY_TRAIN, "trainer.max_steps=1"]))
    return root, results["run_id"]


def test_transfer_table_rows_are_the_validation_of_each_set(run, tmp_path, capsys):
    root, run_id = run
    dropped = [
        f"~sets.{name}" for name in ("roll", "fast", "slow", "natural", "low_rate", "high_rate", "noise")
    ]
    small = [f"sets.{name}.{option}" for name in ("world", "zoom") for option in SMALL_SET]
    output = tmp_path / "transfer.json"
    overrides = [
        f"runid={run_id}",
        f"output={output}",
        f"sets.ecd.root={tmp_path / 'no_ecd'}",
        *dropped,
        *small,
    ]
    results = transfer_table(compose_at(root, "eval_transfer", overrides))
    assert list(results["sets"]) == ["own", "world", "zoom"] and list(results["skipped"]) == ["ecd"]
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    table = capsys.readouterr().out
    assert (
        "| zoom | forward/backward motion 2-4 x nearest depth / s, depth parallax |" in table
        and "| ecd | skipped:" in table
    )
    own = validate(compose_at(root, "validate", [f"runid={run_id}"]))["mean"]
    zoom = validate(
        compose_at(
            root, "validate", [f"runid={run_id}", "data=transfer_zoom", *[f"data.{o}" for o in SMALL_SET]]
        )
    )["mean"]
    for name, expected in (("own", own), ("zoom", zoom)):
        row = results["sets"][name]
        assert row["aee_px"] == pytest.approx(expected["aee"], rel=1e-6)
        assert row["zero_flow_aee_px"] == pytest.approx(expected["aee_zero"], rel=1e-6)
        assert row["ratio"] == pytest.approx(expected["aee"] / expected["aee_zero"], rel=1e-6)
        assert row["gt_windows"] > 0
    assert results["sets"]["zoom"]["zero_flow_aee_px"] != pytest.approx(
        results["sets"]["world"]["zero_flow_aee_px"]
    )  # the sets are different data
