"""End to end: validating a run on the real ECD slices and on an MVSEC fixture (original layouts), with
networks whose flow is known: zero everywhere, or the fixture's constant GT flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_TRAIN, compose_at
from dataset_fixtures import write_mvsec
from omegaconf import OmegaConf

from tinyflow.app.train import train
from tinyflow.app.validate import validate

ROOT = Path(__file__).resolve().parents[1]
ECD_SLICES = ROOT.parent / "shared" / "data" / "ecd"
ROTATIONS = ["boxes_rotation", "dynamic_rotation", "poster_rotation", "shapes_rotation"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory) -> tuple[Path, str]:
    """A run trained for one step on 32x32 synthetic data (fully convolutional: any input size works).

    Its input is a 3-bin voxel grid, which the real-data configs (2-channel counts) must not replace; its
    prediction conv has a bias, so a checkpoint can make it predict one known flow everywhere.
    """
    root = tmp_path_factory.mktemp("tinyflow_root")
    overrides = [
        *TINY_TRAIN,
        "trainer.max_steps=1",
        "data.encoding=voxel",
        "data.num_bins=3",
        "model.prediction_bias=true",
    ]
    results = train(compose_at(root, "train", overrides))
    return root, results["run_id"]


def constant_flow_checkpoint(root: Path, run_id: str, flow_px: tuple[float, float], target: Path) -> Path:
    """The run's last checkpoint with every weight, threshold and leak zeroed (no neuron fires) and the
    prediction bias set so that the network predicts ``flow_px`` (x, y) pixels per window everywhere."""
    checkpoint = torch.load(root / "runs" / run_id / "checkpoints" / "last.ckpt", weights_only=True)
    state = checkpoint["state_dict"]
    for value in state.values():
        if value.is_floating_point():
            value.zero_()
    (bias,) = [key for key, value in state.items() if key.endswith("bias") and value.shape == (2,)]
    scaling = OmegaConf.load(root / "runs" / run_id / "config.yaml").model.flow_scaling
    state[bias] = torch.atanh(torch.tensor(flow_px) / scaling)
    torch.save(checkpoint, target)
    return target


@pytest.mark.skipif(not ECD_SLICES.is_dir(), reason=f"the real ECD slices are not at {ECD_SLICES}")
def test_validate_on_the_real_ecd_slices(synthetic_run, tmp_path):
    """``python validate.py runid=<id> data=ecd data.root=../shared/data/ecd output=m.json``, in process."""
    """A network that predicts zero flow: its AEE is the zero-flow AEE, and FWL and RSAT are exactly 1."""
    root, run_id = synthetic_run
    output = tmp_path / "m.json"
    zero = constant_flow_checkpoint(root, run_id, (0.0, 0.0), tmp_path / "zero.ckpt")
    overrides = [
        f"runid={run_id}",
        f"checkpoint={zero}",
        "data=ecd",
        f"data.root={ECD_SLICES}",
        f"output={output}",
    ]
    validate(compose_at(root, "validate", overrides))
    metrics = json.loads(output.read_text())
    assert sorted(metrics["recordings"]) == ROTATIONS
    for name, values in metrics["recordings"].items():
        assert {"aee", "aee_zero", "fwl", "rsat"} <= values.keys(), name
        assert values["aee_zero"] > 1.0, (name, values)
        assert values["aee"] == pytest.approx(values["aee_zero"], rel=1e-6), (name, values)
        assert values["fwl"] == pytest.approx(1.0, abs=1e-6) and values["rsat"] == pytest.approx(
            1.0, abs=1e-6
        )


def test_validate_on_an_mvsec_fixture_in_the_original_layout(synthetic_run, tmp_path):
    root, run_id = synthetic_run
    write_mvsec(tmp_path / "mvsec" / "indoor_flying", "indoor_flying1", np.random.default_rng(0))
    base = [
        f"runid={run_id}",
        "data=mvsec",
        f"data.root={tmp_path / 'mvsec'}",
        "data.val.indoor_flying1.gt_map_range=[1,7]",
    ]
    velocity_px_s = np.array([40.0, -15.0])  # the fixture's GT flow, constant over the frame
    for flow_name, frames in (("dt1", 1), ("dt4", 4)):
        gt_px = velocity_px_s * 0.032 * frames  # over one GT interval = one validation window
        for scale, expected_aee in ((1.0, 0.0), (2.0, float(np.hypot(*gt_px)))):  # exact; twice the GT
            flow = tuple(float(v) for v in scale * gt_px)
            checkpoint = constant_flow_checkpoint(root, run_id, flow, tmp_path / f"{flow_name}_{scale}.ckpt")
            overrides = [*base, f"data.val_windowing.flow_name={flow_name}", f"checkpoint={checkpoint}"]
            with pytest.warns(
                UserWarning, match=r"val recordings not found, skipped: \['outdoor_day1', 'indoor_flying2'"
            ):
                results = validate(compose_at(root, "validate", overrides))
            assert list(results["recordings"]) == ["indoor_flying1"]
            values = results["recordings"]["indoor_flying1"]
            assert {"aee", "aee_zero", "outliers", "aae", "fwl", "rsat"} == values.keys()
            assert values["aee_zero"] == pytest.approx(np.hypot(*gt_px), rel=1e-3)
            assert values["aee"] == pytest.approx(expected_aee, abs=1e-4 * np.hypot(*gt_px))
            assert values["outliers"] == (0.0 if scale == 1.0 else 100.0 * (np.hypot(*gt_px) > 3.0))
            if scale == 1.0:
                assert values["aae"] == pytest.approx(0.0, abs=0.05)
