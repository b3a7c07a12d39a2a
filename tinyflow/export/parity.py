"""Parity of an exported model with the PyTorch network on a sequence of validation windows.

Both models are fed the same windows one at a time, each carrying its own state from window to window and
zeroing it where a recording starts. The report holds the largest and the mean absolute difference of the
predictions (pixels per window for flow), the AEE of both against the ground truth (as validation computes
it: per window over pixels with events and valid GT, averaged per recording, then over recordings), the
agreement of every spiking layer's spikes where the exported model exposes them (NIR), and the latency of
one window in each runtime with the same number of CPU threads.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from rich.table import Table
from rich.text import Text
from torch import nn

from tinyflow.export.errors import ExportError
from tinyflow.metrics.flow import FlowErrorMetrics, event_pixel_mask
from tinyflow.models.spiking import spiking_layers


@dataclass(frozen=True)
class SequenceWindow:
    """One validation window: the network input [1, C, H, W], whether it starts a recording, and what the
    flow errors need (the window's events, GT flow and its validity; ``flow_gt`` None without GT)."""

    x: np.ndarray
    starts_recording: bool
    recording: str
    events: np.ndarray
    flow_gt: np.ndarray | None
    gt_valid: np.ndarray | None


class ValidationSequence:
    """The first ``num_windows`` windows of a :class:`~tinyflow.data.dataset.WindowDataset` (all of them when it
    has fewer), recording after recording, read from the dataset each time it is iterated.

    Args:
        dataset: the windows (``dataset[i]`` a window's arrays, ``recording_names``).
        num_windows: how many.
    """

    def __init__(self, dataset: Any, num_windows: int) -> None:
        self.dataset = dataset
        self.num_windows = min(num_windows, len(dataset))

    def __len__(self) -> int:
        return self.num_windows

    def __iter__(self) -> Iterator[SequenceWindow]:
        starts = True
        for index in range(self.num_windows):
            item = self.dataset[index]
            has_gt = bool(item.get("has_gt", False))
            yield SequenceWindow(
                x=np.asarray(item["input"], np.float32)[None],
                starts_recording=starts,
                recording=self.dataset.recording_names[int(item["recording"])],
                events=np.asarray(item["events"], np.float32),
                flow_gt=np.asarray(item["flow_gt"], np.float32) if has_gt else None,
                gt_valid=np.asarray(item["gt_valid"], bool) if has_gt else None,
            )
            starts = bool(item["end_of_recording"])

    def inputs(self) -> Iterator[tuple[np.ndarray, bool]]:
        """``(x, starts_recording)`` of each window (what INT8 calibration reads)."""
        for window in self:
            yield window.x, window.starts_recording


@dataclass
class StepResult:
    """One window's prediction [1, C_out, H, W] and, where the runtime exposes them, spikes by layer name."""

    prediction: np.ndarray
    spikes: dict[str, np.ndarray] | None = None


class StepRunner(Protocol):
    """A model stepped one window at a time: ``reset()`` zeroes its state, ``step(x)`` runs one window."""

    name: str

    def reset(self) -> None: ...

    def step(self, x: np.ndarray) -> StepResult: ...


class TorchRunner:
    """The PyTorch network with its state carried; spikes are the outputs of its spiking layers."""

    name = "pytorch"

    def __init__(self, network: nn.Module) -> None:
        self.network = network.eval()
        self.output_key: str = network.prediction.output_key
        names = [name.removeprefix("layers.") for name in spiking_layers(network)]
        self.spiking = [name for name in names if name in network.layer_names]
        self.state: Any = None

    def reset(self) -> None:
        self.state = None

    @torch.no_grad()
    def step(self, x: np.ndarray) -> StepResult:
        out, self.state = self.network(torch.from_numpy(x), self.state)
        spikes = {name: out["activity"][name].numpy() for name in self.spiking}
        return StepResult(out[self.output_key].numpy(), spikes)


class CallableRunner:
    """A runner of a function ``x -> StepResult`` with a reset (the ONNX Runtime step, the NIR simulator)."""

    def __init__(
        self, name: str, step: Callable[[np.ndarray], StepResult], reset: Callable[[], None]
    ) -> None:
        self.name = name
        self._step = step
        self._reset = reset

    def reset(self) -> None:
        self._reset()

    def step(self, x: np.ndarray) -> StepResult:
        return self._step(x)


@dataclass
class ParityReport:
    """What :meth:`ParityCheck.run` measured (see the module docstring); ``aee_px`` is NaN without GT."""

    reference: str
    candidate: str
    windows: int
    recordings: int
    threads: int
    max_abs_diff: float
    mean_abs_diff: float
    aee_px: dict[str, float]
    latency_ms: dict[str, dict[str, float]]
    spike_agreement: dict[str, float] = field(default_factory=dict)
    prediction: str = "flow"

    @property
    def aee_change_px(self) -> float:
        return self.aee_px[self.candidate] - self.aee_px[self.reference]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "prediction": self.prediction,
            "windows": self.windows,
            "recordings": self.recordings,
            "threads": self.threads,
            "abs_diff": {
                "max": self.max_abs_diff,
                "mean": self.mean_abs_diff,
                "unit": _unit(self.prediction),
            },
            "aee_px": {**self.aee_px, "change": self.aee_change_px},
            "spike_agreement": self.spike_agreement,
            "latency_ms_per_window": self.latency_ms,
        }

    def table(self, title: str) -> Table:
        """The report as a two-column console table."""
        table = Table(title=Text(title), show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        unit = _unit(self.prediction)
        rows = [
            ("windows (recordings)", f"{self.windows} ({self.recordings})"),
            (f"max |{self.prediction} diff| [{unit}]", f"{self.max_abs_diff:.3g}"),
            (f"mean |{self.prediction} diff| [{unit}]", f"{self.mean_abs_diff:.3g}"),
        ]
        if math.isfinite(self.aee_px[self.reference]):
            rows += [(f"AEE {name} [px]", f"{value:.4f}") for name, value in self.aee_px.items()]
            rows.append(("AEE change [px]", f"{self.aee_change_px:+.4f}"))
        rows += [
            (f"spike agreement {layer}", f"{value:.5f}") for layer, value in self.spike_agreement.items()
        ]
        rows += [
            (
                f"latency {name} [ms / window, {self.threads} thread(s)]",
                f"{t['median']:.2f} (mean {t['mean']:.2f})",
            )
            for name, t in self.latency_ms.items()
        ]
        for what, value in rows:
            table.add_row(Text(what), Text(value))
        return table


def _unit(prediction: str) -> str:
    return {"flow": "px per window", "depth": "m"}.get(prediction, "output units")


@dataclass(frozen=True)
class ParityCheck:
    """How the parity of an export is measured.

    Args:
        windows: validation windows fed in sequence (recordings in order, state carried within each).
        threads: CPU threads of both runtimes while timing (PyTorch's intra-op threads, ONNX Runtime's).
    """

    windows: int = 100
    threads: int = 1

    def __post_init__(self) -> None:
        for key in ("windows", "threads"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ExportError(f"parity.{key}={value!r}: expected an integer >= 1")

    def run(
        self, reference: StepRunner, candidate: StepRunner, windows: Iterable[SequenceWindow], prediction: str
    ) -> ParityReport:
        """Feed ``windows`` to both runners in turn; see the module docstring."""
        errors = {runner.name: FlowErrorMetrics() for runner in (reference, candidate)}
        diffs_max, diff_sum, diff_count = 0.0, 0.0, 0
        agree: dict[str, list[float]] = {}
        times: dict[str, list[float]] = {reference.name: [], candidate.name: []}
        count, recordings, layers = 0, set(), []
        with _torch_threads(self.threads):
            for window in windows:
                count += 1
                recordings.add(window.recording)
                results = {}
                for runner in (reference, candidate):
                    if window.starts_recording:
                        runner.reset()
                    start = time.perf_counter()
                    results[runner.name] = runner.step(window.x)
                    times[runner.name].append(time.perf_counter() - start)
                ref, cand = results[reference.name], results[candidate.name]
                layers = list(ref.spikes or {})
                diff = np.abs(ref.prediction.astype(np.float64) - cand.prediction.astype(np.float64))
                diffs_max = max(diffs_max, float(diff.max()))
                diff_sum, diff_count = diff_sum + float(diff.sum()), diff_count + diff.size
                if ref.spikes is not None and cand.spikes is not None:
                    for layer in ref.spikes.keys() & cand.spikes.keys():
                        same = np.asarray(
                            ref.spikes[layer] == cand.spikes[layer].astype(ref.spikes[layer].dtype)
                        )
                        agree.setdefault(layer, []).append(float(same.mean()))
                if prediction == "flow" and window.flow_gt is not None:
                    for name, result in results.items():
                        _update_errors(errors[name], result.prediction, window)
        if count == 0:
            raise ExportError("parity: no validation window to compare on")
        aee = {name: _mean_aee(metrics) for name, metrics in errors.items()}
        order = [layer for layer in layers if layer in agree]
        return ParityReport(
            reference=reference.name,
            candidate=candidate.name,
            windows=count,
            recordings=len(recordings),
            threads=self.threads,
            max_abs_diff=diffs_max,
            mean_abs_diff=diff_sum / diff_count,
            aee_px=aee,
            latency_ms={name: _latency(values) for name, values in times.items()},
            spike_agreement={layer: float(np.mean(agree[layer])) for layer in order},
            prediction=prediction,
        )


def _update_errors(metrics: FlowErrorMetrics, prediction: np.ndarray, window: SequenceWindow) -> None:
    """One window's flow errors: the prediction is over the window, which is the GT interval (GT windows)."""
    height, width = prediction.shape[-2:]
    events = torch.from_numpy(window.events)[None]
    mask = torch.ones(events.shape[:2], dtype=torch.bool)
    event_mask = event_pixel_mask(events, mask, (height, width))
    metrics.update(
        torch.from_numpy(prediction).double(),
        torch.from_numpy(window.flow_gt)[None].double(),
        event_mask,
        torch.from_numpy(window.gt_valid)[None],
        [window.recording],
    )


def _mean_aee(metrics: FlowErrorMetrics) -> float:
    values = [errors.aee_px for errors in metrics.compute().values()]
    return math.fsum(values) / len(values) if values else math.nan


def _latency(seconds: list[float]) -> dict[str, float]:
    """Median and mean in milliseconds, without the first window (warm-up: allocation, first-run planning)."""
    timed = seconds[1:] or seconds
    return {"median": 1e3 * float(np.median(timed)), "mean": 1e3 * float(np.mean(timed))}


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Within the block, PyTorch uses ``threads`` intra-op threads (restored after)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


__all__ = [
    "CallableRunner",
    "ParityCheck",
    "ParityReport",
    "SequenceWindow",
    "StepResult",
    "StepRunner",
    "TorchRunner",
    "ValidationSequence",
]
