"""The stream runner: an exported ONNX model over a small synthetic recording, without Lightning or Hydra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.deploy.__main__ import main
from tinyflow.deploy.stream import DeployError, stream
from tinyflow.events.encodings import encode
from tinyflow.events.windows import windows_by_duration
from tinyflow.export.formats import OnnxFormat
from tinyflow.export.manifest import InputSpec, Source, windowing_spec
from tinyflow.export.parity import ParityCheck
from tinyflow.export.pipeline import export_network
from tinyflow.io import open_recording
from tinyflow.models import LIFFireNet
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.dataset import write_synthetic_dataset

WINDOW_US = 20_000


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    config = SynthConfig(height=32, width=32, duration_us=200_000)
    return write_synthetic_dataset(root, config, 1, "val", seed=3)[0]


@pytest.fixture(scope="module")
def deployed(recording: Path, tmp_path_factory) -> tuple[LIFFireNet, Path]:
    """A small voxel-grid LIF-FireNet exported with its manifest (20 ms windows)."""
    torch.manual_seed(0)
    network = LIFFireNet(num_bins=3, base_num_channels=4, neuron_kwargs={"thresh_init": [0.3, 0.1]})
    dataset = WindowDataset([recording], Windowing(mode="gt"), encoding="voxel", num_bins=3)
    spec = InputSpec(
        "voxel",
        3,
        dataset.sensor_size,
        windowing_spec(Windowing("duration", duration_us=WINDOW_US)),
        windowing_spec(dataset.windowing),
    )
    folder = tmp_path_factory.mktemp("export") / "onnx"
    result = export_network(
        network, OnnxFormat(), dataset, spec, Source(None, None, None), folder, ParityCheck(4)
    )
    return network.eval(), result.model


def test_stream_writes_the_flow_of_every_window(recording: Path, deployed, tmp_path) -> None:
    network, model = deployed
    output = tmp_path / "flow.h5"
    seen = []
    stats = stream(model, recording, output=output, on_flow=lambda flow, window: seen.append(window))
    source = open_recording(recording)
    windows = windows_by_duration(source, WINDOW_US)
    assert (
        stats.windows == len(windows) == len(seen) == 9
    )  # 200 ms in 20 ms windows, the last partial one dropped
    assert stats.events == sum(w.num_events for w in windows) > 0
    assert stats.span_s == pytest.approx(9 * WINDOW_US / 1e6)
    assert stats.windows_per_s > 0 and stats.real_time_factor == pytest.approx(stats.span_s / stats.wall_s)
    with h5py.File(output) as file:
        flow = file["flow/predicted/flow"][:]
        np.testing.assert_array_equal(file["flow/predicted/t_start_us"][:], [w.t_start_us for w in windows])
        assert file.attrs["model"] == str(model)
    state = None
    for k, window in enumerate(windows):  # the PyTorch network on the same windows, state carried
        x = encode(
            source.events(window.start, window.stop), (32, 32), "voxel", 3, window.t_start_us, window.t_end_us
        )
        with torch.no_grad():
            out, state = network(torch.from_numpy(x)[None], state)
        np.testing.assert_allclose(flow[k], out["flow"][0].numpy(), atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_stream_refuses_to_overwrite_and_other_sensor_sizes(recording: Path, deployed, tmp_path) -> None:
    _, model = deployed
    output = tmp_path / "flow.h5"
    output.write_text("keep")
    with pytest.raises(DeployError, match=r"flow.h5: exists; pass --overwrite"):
        stream(model, recording, output=output)
    assert output.read_text() == "keep"
    stream(model, recording, output=output, overwrite=True, max_windows=2)
    with h5py.File(output) as file:
        assert file["flow/predicted/flow"].shape == (2, 2, 32, 32)
    other = write_synthetic_dataset(
        tmp_path, SynthConfig(height=24, width=32, duration_us=80_000), 1, "x", seed=0
    )[0]
    with pytest.raises(DeployError, match=r"sensor 24x32 \(height x width\); model.onnx takes 32x32"):
        stream(model, other)


def test_stream_refuses_a_model_that_does_not_predict_flow(recording: Path, deployed, tmp_path) -> None:
    _, model = deployed
    depth = tmp_path / "depth"
    depth.mkdir()
    (depth / model.name).write_bytes(model.read_bytes())
    manifest = json.loads((model.parent / "manifest.json").read_text())
    (depth / "manifest.json").write_text(json.dumps({**manifest, "prediction": "depth"}))
    with pytest.raises(DeployError, match=r"a 'depth' model: the stream runner runs flow models"):
        stream(depth / model.name, recording)


def test_windows_of_another_length_on_request(recording: Path, deployed) -> None:
    _, model = deployed
    assert stream(model, recording, duration_us=50_000).windows == 3
    assert stream(model, recording, events_per_window=500, max_windows=4).windows == 4
    with pytest.raises(DeployError, match=r"--duration-us and --events-per-window: give one"):
        stream(model, recording, duration_us=50_000, events_per_window=500)


def test_cli_prints_rate_and_real_time_factor_and_user_errors_in_one_line(
    recording, deployed, capsys, tmp_path
) -> None:
    _, model = deployed
    assert main([str(model), str(recording), "--max-windows", "3"]) == 0
    out = capsys.readouterr().out
    assert "windows: 3 (" in out and "windows/s: " in out and "real-time factor: " in out
    assert main([str(model), str(tmp_path / "missing.h5")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(model.read_bytes())
    assert main([str(lone), str(recording)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {lone}: no manifest.json beside it (export.py writes one with every model)"
    )
    manifest = json.loads((model.parent / "manifest.json").read_text())
    assert manifest["window"]["windowing"] == {"mode": "duration", "duration_us": WINDOW_US}


def test_the_runner_loads_without_torch_lightning_or_hydra(recording, deployed) -> None:
    _, model = deployed
    code = (
        "import sys; from tinyflow.deploy.__main__ import main; code = main(sys.argv[1:]); "
        "heavy = [m for m in ('torch', 'lightning', 'hydra') if m in sys.modules]; "
        "assert not heavy, heavy; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(model), str(recording), "--max-windows", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "real-time factor" in done.stdout
