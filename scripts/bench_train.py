"""Benchmark training and inference speed of the flow networks on the CPU.

    python scripts/bench_train.py [--models lif_firenet evflownet ...] [--size 128] [--batch 1 8]
                                  [--passes 10] [--events 1000] [--inference-only]

Every model config (``config/model/*.yaml``) by default, built as ``model=<name>`` with 2-bin (per-polarity
count) input.

One training step is the flow task's own step (:meth:`tinyflow.tasks.RecurrentTask.training_step`, run
by a Lightning ``Trainer``): ``--passes`` windows forward (the accumulation window), the CMax loss,
backward, clipping and an Adam step. Prints JSON: parameter counts, training windows/s and inference
windows/s (a window of one batch element counts once), per network and batch size.
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from pathlib import Path

import lightning as L
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
    args = parser.parse_args()
    register_resolvers()
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
