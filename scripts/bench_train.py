"""Benchmark training and inference speed of the flow networks on the CPU.

    python scripts/bench_train.py [--models lif_firenet evflownet ...] [--size 128] [--batch 1 8]
                                  [--passes 10] [--events 1000] [--inference-only]
    python scripts/bench_train.py --realtime [--models lif_firenet] [--sizes 128 256] [--threads 2]
                                  [--variants eager channels_last compile] [--event-rate 1e6]

Every model config (``config/model/*.yaml``) by default, built as ``model=<name>`` with 2-bin (per-polarity
count) input.

One training step is the flow task's own step (:meth:`tinyflow.tasks.RecurrentTask.training_step`, run
by a Lightning ``Trainer``): ``--passes`` windows forward (the accumulation window), the CMax loss,
backward, clipping and an Adam step. Prints JSON: parameter counts, training windows/s and inference
windows/s (a window of one batch element counts once), per network and batch size.

``--realtime`` (default model: LIF-FireNet) times streaming inference instead: batch 1, the recurrent state
carried from window to window, at each of ``--sizes`` (128: UZH-FPV, 256: an MVSEC crop) with ``--threads``
intra-op threads, for each variant: ``eager`` (the network as trained), ``channels_last`` (input and weights
in NHWC memory format) and ``compile`` (``torch.compile``, inductor). Prints windows/s, ms per window, the
real-time factor for a stream of ``--event-rate`` events/s cut in windows of ``--events`` events (windows/s
over the windows/s the stream produces: above 1 keeps up), the multiply-accumulates per window, and each
variant's speed-up over eager with the largest flow difference from eager's over the same windows (px).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader

from tinyflow.app.resolvers import register_resolvers
from tinyflow.cmax import CMaxLinearLoss
from tinyflow.tasks import FlowTask

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
MODELS = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))


def build_network(model: str) -> nn.Module:
    """``model=<name>`` of the config tree, with 2 input channels."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", [f"model={model}", "data.num_bins=2", "data.encoding=counts"])
    return instantiate(cfg.model)


def random_window(
    batch: int, size: int, num_events: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """One window of B streams as the datasets give it: counts input [B, 2, H, W] and the event list
    [B, N, 4] (x, y, t_norm, p_sign) of the same events, with the per-stream flags."""
    x = torch.randint(0, size, (batch, num_events), generator=generator)
    y = torch.randint(0, size, (batch, num_events), generator=generator)
    p = torch.randint(0, 2, (batch, num_events), generator=generator)
    t = torch.rand(batch, num_events, generator=generator).sort(dim=1).values
    counts = torch.zeros(batch, 2 * size * size)
    counts.scatter_add_(1, (1 - p) * size * size + y * size + x, torch.ones(batch, num_events))
    return {
        "input": counts.view(batch, 2, size, size),
        "events": torch.stack((x.float(), y.float(), t, p.float() * 2 - 1), dim=-1),
        "event_mask": torch.ones(batch, num_events, dtype=torch.bool),
        "end_of_recording": torch.zeros(batch, dtype=torch.bool),
    }


class StepTimer(L.Callback):
    """Wall time of each training step after the first (the warm-up)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step > 1:
            self.seconds.append(time.perf_counter() - self._start)


def bench(
    name: str, batch: int, size: int, passes: int, num_events: int, steps: int, train: bool = True
) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    network = build_network(name)
    task = FlowTask(
        network, loss=partial(CMaxLinearLoss), optimizer=partial(torch.optim.Adam, lr=1e-4), scheduler=None
    )
    windows = [random_window(batch, size, num_events, generator) for _ in range(passes)]
    results: dict[str, float] = {}
    if train:
        results.update(train_speed(task, windows, batch, passes, steps))
    task.network.reset_state()
    with torch.inference_mode():
        task.network(windows[0]["input"])
        start = time.perf_counter()
        for _ in range(steps):
            for window in windows:
                task.network(window["input"])
        infer_s = (time.perf_counter() - start) / (steps * passes)
    results["inference_windows_per_s"] = round(batch / infer_s, 2)
    results["inference_ms_per_window"] = round(1e3 * infer_s / batch, 2)
    return results


def train_speed(
    task: FlowTask, windows: list[dict[str, torch.Tensor]], batch: int, passes: int, steps: int
) -> dict[str, float]:
    """Training windows/s of the task's own step, run by a Lightning Trainer."""
    sequence = {key: torch.stack([w[key] for w in windows]) for key in windows[0]}  # [T, B, ...]
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(task, train_dataloaders=DataLoader([sequence] * (steps + 1), batch_size=None))
    train_s = sum(timer.seconds) / len(timer.seconds)
    return {"train_windows_per_s": round(batch * passes / train_s, 2), "train_step_s": round(train_s, 3)}


VARIANTS = ("eager", "channels_last", "compile", "onnx")


def conv_macs(network: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the network's convolutions for one window ``x`` (from a forward hook)."""
    macs = 0

    def count(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        macs += output.numel() * per_output

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        state = network(x)[1]
        macs = 0
        network(x, state)  # with state: the recurrent convs run too
    for hook in hooks:
        hook.remove()
    return macs


def variant_step(
    network: nn.Module, variant: str, sample: torch.Tensor
) -> tuple[Callable, Callable[[torch.Tensor], object]]:
    """The pure step ``(x, state) -> (out, state)`` of ``variant`` for inputs shaped like ``sample``, and how
    it wants its input."""
    if variant == "eager":
        return network, lambda x: x
    if variant == "channels_last":
        network = network.to(memory_format=torch.channels_last)
        return network, lambda x: x.contiguous(memory_format=torch.channels_last)
    if variant == "compile":
        return torch.compile(network), lambda x: x
    if variant == "onnx":
        return onnx_step(network, sample), lambda x: x.numpy()
    raise ValueError(f"unknown variant {variant!r}; expected one of {list(VARIANTS)}")


def onnx_step(network: nn.Module, sample: torch.Tensor) -> Callable:
    """The network exported as export=onnx writes it (tinyflow.export), run by ONNX Runtime as the stream
    runner runs it (:class:`~tinyflow.export.runtime.OnnxStep`, ``--threads`` intra-op threads)."""
    from tinyflow.export.formats import OnnxFormat  # the export extra (onnx, onnxruntime): this variant only
    from tinyflow.export.runtime import OnnxStep

    folder = Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    OnnxFormat().write_graph(network, torch.zeros_like(sample), folder / "model.onnx")
    runner = OnnxStep(folder / "model.onnx", torch.get_num_threads())

    def step(x: np.ndarray, state: None) -> tuple[dict[str, torch.Tensor], None]:
        return {"flow": torch.from_numpy(runner(x))}, None

    return step


def stream_flows(
    step: Callable, prepare: Callable[[torch.Tensor], torch.Tensor], inputs: list[torch.Tensor], warmup: int
) -> tuple[float, list[torch.Tensor]]:
    """Seconds per window over ``inputs`` after ``warmup`` untimed windows, state carried; and the flows."""
    flows, state = [], None
    with torch.inference_mode():
        for k, x in enumerate(inputs):
            if k == warmup:
                start = time.perf_counter()
            out, state = step(prepare(x), state)
            flows.append(out["flow"])
        seconds = (time.perf_counter() - start) / (len(inputs) - warmup)
    return seconds, [flow.contiguous() for flow in flows]


def realtime(
    name: str, size: int, variants: list[str], windows: int, events: int, event_rate: float
) -> dict[str, object]:
    """Streaming inference speed of each variant at ``size`` x ``size``, batch 1 (see the module doc)."""
    generator = torch.Generator().manual_seed(0)
    warmup = 3
    inputs = [random_window(1, size, events, generator)["input"] for _ in range(warmup + windows)]
    needed = event_rate / events  # windows/s the stream produces
    network = build_network(name).eval()
    entry: dict[str, object] = {"conv_macs_per_window": conv_macs(network, inputs[0])}
    reference: list[torch.Tensor] = []
    eager_s = 0.0
    for variant in variants:
        step, prepare = variant_step(copy.deepcopy(network), variant, inputs[0])
        seconds, flows = stream_flows(step, prepare, inputs, warmup)
        if variant == "eager":
            reference, eager_s = flows, seconds
        result = {
            "windows_per_s": round(1 / seconds, 2),
            "ms_per_window": round(1e3 * seconds, 2),
            "real_time_factor": round(1 / seconds / needed, 4),
        }
        if reference and variant != "eager":
            result["speedup_vs_eager"] = round(eager_s / seconds, 3)
            result["max_flow_diff_px"] = max(
                float((a - b).abs().max()) for a, b in zip(flows, reference, strict=True)
            )
        entry[variant] = result
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128, help="height = width of the input")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--passes", type=int, default=10, help="windows per training step")
    parser.add_argument("--events", type=int, default=1000, help="events per window")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per setting")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--inference-only", action="store_true", help="skip the training timing")
    parser.add_argument("--realtime", action="store_true", help="time streaming inference (see above)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="--realtime input sizes")
    parser.add_argument("--threads", type=int, default=2, help="--realtime intra-op threads")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--windows", type=int, default=20, help="--realtime timed windows per setting")
    parser.add_argument("--event-rate", type=float, default=1e6, help="--realtime stream, events/s")
    args = parser.parse_args()
    register_resolvers()
    if args.realtime:
        torch.set_num_threads(args.threads)
        models = args.models if args.models != MODELS else ["lif_firenet"]
        report: dict[str, object] = {
            "threads": torch.get_num_threads(),
            "events_per_window": args.events,
            "event_rate_per_s": args.event_rate,
            "windows_per_s_needed": args.event_rate / args.events,
            "load_average": os.getloadavg(),
            "networks": {
                name: {
                    f"{size}x{size}": realtime(
                        name, size, args.variants, args.windows, args.events, args.event_rate
                    )
                    for size in args.sizes
                }
                for name in models
            },
        }
        print(json.dumps(report, indent=2))
        return
    results: dict[str, object] = {
        "size": args.size,
        "passes": args.passes,
        "events_per_window": args.events,
        "threads": torch.get_num_threads(),
        "networks": {},
    }
    for name in args.models:
        entry: dict[str, object] = {"parameters": sum(p.numel() for p in build_network(name).parameters())}
        for batch in args.batch:
            entry[f"batch_{batch}"] = bench(
                name, batch, args.size, args.passes, args.events, args.steps, not args.inference_only
            )
        results["networks"][name] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
