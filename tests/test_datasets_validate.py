"""End to end: validating a tiny synthetic run on the real ECD slices and on an MVSEC fixture (original layouts)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIG_DIR, TINY_TRAIN
from dataset_fixtures import write_mvsec
from hydra import compose, initialize_config_dir

from tinyflow.config import register_resolvers
from tinyflow.workflows import train, validate

ROOT = Path(__file__).resolve().parents[1]
ECD_SLICES = ROOT.parent / "shared" / "data" / "ecd"
ROTATIONS = ["boxes_rotation", "dynamic_rotation", "poster_rotation", "shapes_rotation"]


def _compose(root: Path, name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=[f"paths.root_dir={root}", *overrides])


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> tuple[Path, str]:
    """A run trained for one step on 32x32 synthetic data (fully convolutional: any input size works).

    Its input is a 3-bin voxel grid, which the real-data configs (2-channel counts) must not replace.
    """
    root = tmp_path_factory.mktemp("tinyflow_root")
    overrides = [*TINY_TRAIN, "trainer.max_steps=1", "data.encoding=voxel", "data.num_bins=3"]
    results = train(_compose(root, "train", overrides))
    return root, results["run_id"]


@pytest.mark.skipif(not ECD_SLICES.is_dir(), reason=f"the real ECD slices are not at {ECD_SLICES}")
def test_validate_on_the_real_ecd_slices(synthetic_run, tmp_path):
    """``python validate.py runid=<id> data=ecd data.root=../shared/data/ecd output=m.json``, in process."""
    root, run_id = synthetic_run
    output = tmp_path / "m.json"
    validate(
        _compose(
            root, "validate", [f"runid={run_id}", "data=ecd", f"data.root={ECD_SLICES}", f"output={output}"]
        )
    )
    metrics = json.loads(output.read_text())
    assert sorted(metrics["recordings"]) == ROTATIONS
    for name, values in metrics["recordings"].items():
        assert {"aee", "aee_zero", "fwl", "rsat"} <= values.keys(), name
        assert all(math.isfinite(v) for v in values.values()), (name, values)
        assert values["aee_zero"] > 1.0, (name, values)


def test_validate_on_an_mvsec_fixture_in_the_original_layout(synthetic_run, tmp_path):
    root, run_id = synthetic_run
    write_mvsec(tmp_path / "mvsec" / "indoor_flying", "indoor_flying1", np.random.default_rng(0))
    base = [
        f"runid={run_id}",
        "data=mvsec",
        f"data.root={tmp_path / 'mvsec'}",
        "data.val.indoor_flying1.gt_map_range=[1,7]",
    ]
    for flow_name, frames in (("dt1", 1), ("dt4", 4)):
        with pytest.warns(
            UserWarning, match=r"val recordings not found, skipped: \['outdoor_day1', 'indoor_flying2'"
        ):
            results = validate(
                _compose(root, "validate", [*base, f"data.val_windowing.flow_name={flow_name}"])
            )
        assert list(results["recordings"]) == ["indoor_flying1"]
        values = results["recordings"]["indoor_flying1"]
        assert {"aee", "aee_zero", "outliers", "aae", "fwl", "rsat"} == values.keys()
        speed = np.hypot(40.0, -15.0)
        assert values["aee_zero"] == pytest.approx(speed * 0.032 * frames, rel=1e-3)
