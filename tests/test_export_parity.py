"""The parity check: windows in sequence with the state reset per recording, differences, AEE, spike agreement."""

from __future__ import annotations

import copy

import pytest
import torch

from tinyflow.data.dataset import WindowDataset, Windowing
from tinyflow.export.errors import ExportError
from tinyflow.export.parity import CallableRunner, ParityCheck, StepResult, TorchRunner, ValidationSequence
from tinyflow.models import LIFFireNet
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.dataset import write_synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> WindowDataset:
    root = tmp_path_factory.mktemp("synth")
    paths = write_synthetic_dataset(
        root, SynthConfig(height=16, width=16, duration_us=100_000), 2, "val", seed=1
    )
    return WindowDataset(paths, Windowing(mode="gt"), encoding="counts")


@pytest.fixture(scope="module")
def network() -> LIFFireNet:
    torch.manual_seed(0)
    return LIFFireNet(num_bins=2, base_num_channels=4, neuron_kwargs={"thresh_init": [0.3, 0.1]})


def test_the_sequence_starts_each_recording_and_stops_at_its_length(dataset) -> None:
    windows = list(ValidationSequence(dataset, 100))
    assert len(windows) == len(dataset) == 10  # two recordings of 5 GT windows
    assert [w.starts_recording for w in windows] == [True, False, False, False, False] * 2
    assert [w.recording for w in windows] == ["val_000"] * 5 + ["val_001"] * 5
    assert windows[0].x.shape == (1, 2, 16, 16) and windows[0].flow_gt.shape == (2, 16, 16)
    assert (
        len(ValidationSequence(dataset, 3)) == 3 and len(list(ValidationSequence(dataset, 3).inputs())) == 3
    )


def test_a_model_against_itself_and_against_a_changed_copy(dataset, network) -> None:
    same = ParityCheck(windows=10).run(
        TorchRunner(network), TorchRunner(copy.deepcopy(network)), ValidationSequence(dataset, 10), "flow"
    )
    assert same.max_abs_diff == 0 and same.aee_change_px == 0 and same.windows == 10 and same.recordings == 2
    assert (
        same.spike_agreement.keys() == set(network.layer_names) and min(same.spike_agreement.values()) == 1.0
    )
    assert same.aee_px["pytorch"] > 0
    changed = copy.deepcopy(network)
    with torch.no_grad():
        changed.layers["G1"].thresh.mul_(0.5)
    other = TorchRunner(changed)
    other.name = "changed"
    report = ParityCheck(windows=10).run(TorchRunner(network), other, ValidationSequence(dataset, 10), "flow")
    assert (
        report.max_abs_diff > 0
        and report.spike_agreement["G1"] < 1.0
        and report.spike_agreement["head"] == 1.0
    )
    assert report.aee_px.keys() == {"pytorch", "changed"} and report.aee_change_px != 0
    assert set(report.to_dict()["latency_ms_per_window"]) == {"pytorch", "changed"}


def test_the_state_is_reset_where_a_recording_starts(dataset, network) -> None:
    """A runner that keeps its state into the next recording differs from the first window of that one."""
    leaking = TorchRunner(copy.deepcopy(network))
    never_reset = CallableRunner("leaking", leaking.step, lambda: None)
    report = ParityCheck(windows=10).run(
        TorchRunner(network), never_reset, ValidationSequence(dataset, 10), "flow"
    )
    assert report.max_abs_diff > 0 and report.spike_agreement["head"] < 1.0


def test_parity_settings_are_checked(dataset) -> None:
    with pytest.raises(ExportError, match=r"parity.windows=0: expected an integer >= 1"):
        ParityCheck(windows=0)
    empty = CallableRunner("x", lambda x: StepResult(x), lambda: None)
    with pytest.raises(ExportError, match=r"no validation window"):
        ParityCheck().run(empty, empty, [], "flow")
