"""task=depth on the recurrent trainer: training and validation on stereo and monocular recordings, the
constant-depth baseline from the training maps, validate.py reproducing a run, windows without depth."""

from __future__ import annotations

import json
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from dataset_fixtures import MVSEC_SIZE, write_mvsec_calibration, write_mvsec_stereo
from hydra.utils import instantiate

from tinyflow.app.build import build_task, build_trainer
from tinyflow.app.checks import ConfigError, check_config
from tinyflow.app.export import export_run
from tinyflow.app.train import train
from tinyflow.app.validate import validate
from tinyflow.events.core import Events
from tinyflow.events.groundtruth import DepthGT
from tinyflow.export.runtime import OnnxStep
from tinyflow.io import write_canonical
from tinyflow.metrics.depth import DEPTH_METRICS
from tinyflow.models import StereoSpike
from tinyflow.tasks import DepthSIGradLoss, DepthTask, TaskNetworkError

SENSOR = (32, 32)
DURATION_US = 200_000


def depth_recording(path: Path, seed: int, depth_t_us: list[int]) -> np.ndarray:
    """Random events over 0.2 s and one depth map per time in ``depth_t_us`` (a constant per map plus a
    gradient, the top-left pixel invalid); returns the maps [K, H, W]."""
    rng = np.random.default_rng(seed)
    n = 20_000
    t_us = np.sort(rng.integers(0, DURATION_US, n))
    t_us[-1] = DURATION_US - 1  # the last window ends at 0.2 s
    events = Events(
        rng.integers(0, SENSOR[1], n).astype(np.uint16),
        rng.integers(0, SENSOR[0], n).astype(np.uint16),
        t_us,
        rng.integers(0, 2, n).astype(np.uint8),
    )
    columns = np.linspace(0.0, 1.0, SENSOR[1], dtype=np.float32)
    maps = np.stack(
        [np.broadcast_to(2.0 + k + seed + columns, SENSOR).copy() for k in range(len(depth_t_us))]
    )
    maps[:, 0, 0] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    write_canonical(path, events, SENSOR, depth=DepthGT(maps, np.asarray(depth_t_us, np.int64)))
    return maps


def mono_overrides(root: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "task=depth",
        "model=stereospike_mono",
        "data=h5dir",
        f"data.root={root}",
        "data.targets=[depth]",
        "data.encoding=voxel",
        "data.num_bins=2",
        "data.train_windowing.mode=duration",
        "++data.train_windowing.duration_us=40000",
        "data.val_windowing.mode=depth",
        "++data.val_windowing.duration_us=40000",
        "data.augmentation.p_flip_x=0",
        "data.seq_len=2",
        "model.base_num_channels=4",
        "data.batch_size=2",
        "trainer.max_steps=2",
        "trainer.check_val_every_n_epoch=100",
        "trainer.enable_model_summary=false",
        "callbacks.progress=null",
        *extra,
    ]


def test_stereo_training_reports_depth_metrics_and_validate_reproduces_them(compose_config, tmp_path) -> None:
    results = train(
        compose_config(
            "train", ["task=depth", "data=synthetic_stereo", "run_id=stereo", "trainer.max_steps=3"]
        )
    )
    assert results["task"] == "depth"
    reported = {metric.key for metric in DEPTH_METRICS.reported()}
    assert set(results["mean"]) == reported and all(math.isfinite(v) for v in results["mean"].values())
    assert results["mean"]["mde_const"] > 0

    output = tmp_path / "m.json"
    again = validate(compose_config("validate", ["runid=stereo", f"output={output}"]))
    written = json.loads(output.read_text())
    for key, value in results["mean"].items():
        assert again["mean"][key] == pytest.approx(value, abs=1e-5) == written["mean"][key]

    # ONNX export: the stateless network has no state tensors; the manifest's readout gives metres
    exported = export_run(compose_config("export", ["runid=stereo", "export=onnx", "parity.windows=4"]), [])
    manifest = exported.manifest
    assert manifest["prediction"] == "depth" and manifest["state"]["tensors"] == []
    assert exported.report.max_abs_diff < 1e-4
    task = build_task(compose_config("train", ["task=depth", "data=synthetic_stereo"]))
    task.load_state_dict(
        torch.load(tmp_path / "runs" / "stereo" / "checkpoints" / "last.ckpt", weights_only=True)[
            "state_dict"
        ]
    )
    mean = float(task.constant_depth_m)
    assert manifest["readout"] == f"depth_m = (output + {mean:.6g})"
    x = torch.rand(1, 10, 32, 32)  # the validation windows of the tiny test data
    with torch.no_grad():
        expected = task.to_metres(task.network.network(x, None)[0])
    onnx_out = OnnxStep(exported.model)(x.numpy())
    assert np.allclose(onnx_out[:, 0] + mean, expected.numpy(), atol=1e-4)

    # the same run on MVSEC's layout (both DAVIS cameras, 346 x 260: padded by the network), its own split
    folder = tmp_path / "mvsec" / "indoor_flying"
    rng = np.random.default_rng(0)
    for name in ("indoor_flying1", "indoor_flying2", "indoor_flying3"):
        write_mvsec_stereo(
            folder, name, rng, 12, {k: np.full(MVSEC_SIZE, 2.0 + k, np.float32) for k in range(12)}
        )
    write_mvsec_calibration(folder, "indoor_flying")
    ranges = [f"data.train.indoor_flying{i}.depth_map_range=[1,12]" for i in (2, 3)]
    mvsec = [
        f"data.root={tmp_path / 'mvsec'}",
        "data.val.indoor_flying1.depth_map_range=[4,12]",
        "data.val.indoor_flying1.depth_labels=null",
        *ranges,
    ]
    on_mvsec = validate(compose_config("validate", ["runid=stereo", "data=mvsec_depth", *mvsec]))
    (name,) = on_mvsec["recordings"]
    constant = float(
        torch.load(tmp_path / "runs" / "stereo" / "checkpoints" / "last.ckpt", weights_only=True)[
            "state_dict"
        ]["constant_depth_m"]
    )
    by_hand = 100 * np.mean([abs(2.0 + k - constant) for k in range(4, 12)])  # the training constant, kept
    assert on_mvsec["mean"]["mde_const"] == pytest.approx(by_hand, rel=1e-5) and math.isfinite(
        on_mvsec["mean"]["mde"]
    )


def test_monocular_training_on_recordings_with_depth_and_the_constant_baseline(
    compose_config, tmp_path
) -> None:
    depth_t_us = [40_000, 80_000, 120_000, 160_000, 200_000]
    train_maps = [depth_recording(tmp_path / "data" / "train" / f"t{i}.h5", i, depth_t_us) for i in range(2)]
    val_maps = depth_recording(tmp_path / "data" / "val" / "v0.h5", 5, depth_t_us)
    cfg = compose_config("train", mono_overrides(tmp_path / "data", ("run_id=mono",)), tiny=False)
    results = train(cfg)
    # the training windows (40 ms, ending at each map's time) carry every training map once
    constant = float(np.nanmean(np.concatenate(train_maps)))
    checkpoint = torch.load(tmp_path / "runs" / "mono" / "checkpoints" / "last.ckpt", weights_only=True)
    assert float(checkpoint["state_dict"]["constant_depth_m"]) == pytest.approx(constant, rel=1e-6)
    valid = np.isfinite(val_maps)
    by_hand = 100 * np.mean([np.abs(m[v] - constant).mean() for m, v in zip(val_maps, valid, strict=True)])
    assert results["mean"]["mde_const"] == pytest.approx(by_hand, rel=1e-5)


def test_windows_without_depth_take_no_optimiser_step(compose_config, tmp_path) -> None:
    for i in range(2):  # one map per recording, at its end: 1 of 10 windows of 20 ms is supervised
        depth_recording(tmp_path / "data" / "train" / f"t{i}.h5", i, [DURATION_US])
    depth_recording(tmp_path / "data" / "val" / "v0.h5", 3, [DURATION_US])
    overrides = ("++data.train_windowing.duration_us=20000", "data.seq_len=1")
    cfg = compose_config("train", mono_overrides(tmp_path / "data", overrides), tiny=False)
    cfg.data.targets = {"depth": {"max_offset_us": 0}}
    task, trainer = build_task(cfg), build_trainer(cfg)
    trainer.fit(task, datamodule=instantiate(cfg.data))
    assert trainer.global_step == cfg.trainer.max_steps
    assert trainer.fit_loop.total_batch_idx + 1 > cfg.trainer.max_steps, "unsupervised batches took no step"
    task.begin_sequence({})
    assert task.sequence_loss() is None


def test_the_task_refuses_a_flow_network_and_the_config_checks_the_data(compose_config) -> None:
    cfg = compose_config("train", ["task=depth", "data=synthetic_stereo", "model=lif_firenet"])
    with pytest.raises(TaskNetworkError, match=r"DepthTask learns 'depth', but the network \(LIFFireNet\)"):
        build_task(cfg)
    with pytest.raises(ConfigError, match=r"the task \(DepthTask\) learns from \['depth'\]"):
        check_config(compose_config("train", ["task=depth", "model=stereospike_mono"]))
    with pytest.raises(ConfigError, match=r"model\.num_cameras=1, but data\.cameras=\['left', 'right'\]"):
        check_config(
            compose_config("train", ["task=depth", "data=synthetic_stereo", "model=stereospike_mono"])
        )
    check_config(
        compose_config(
            "train", ["task=depth", "data=synthetic_stereo", "model=stereospike_mono", "data.cameras=[left]"]
        )
    )
    assert isinstance(build_task(compose_config("train", ["task=depth", "data=synthetic_stereo"])), DepthTask)


@pytest.mark.parametrize("learned_metric", ["metric", "log"])
def test_the_readout_is_relative_to_the_training_mean(learned_metric: str) -> None:
    network = StereoSpike(num_cameras=1, base_num_channels=4)
    loss = DepthSIGradLoss(learned_metric=learned_metric)
    task = DepthTask(network, loss, partial(torch.optim.Adam))
    out, _ = network(torch.rand(2, 2, 16, 16))
    with pytest.raises(ValueError, match="relative to the training set's mean depth, which is unknown"):
        task.predictions(out)
    task.constant_depth_m.fill_(3.0)
    offset = float(loss.representation.from_metres(torch.tensor(3.0)))
    for scale, raw in zip(task.predictions(out), out["depth_scales"], strict=True):
        assert torch.allclose(scale, raw[:, 0] + offset)
    assert torch.allclose(task.to_metres(out), loss.representation.to_metres(out["depth"][:, 0] + offset))
    absolute = DepthTask(network, loss, partial(torch.optim.Adam), relative_to_mean=False)
    assert torch.equal(absolute.predictions(out)[-1], out["depth"][:, 0])
