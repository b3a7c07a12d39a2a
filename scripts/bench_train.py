"""Benchmark training and inference speed of the flow networks on the CPU.

    python scripts/bench_train.py [--size 128] [--batch 1 8] [--passes 10] [--events 1000]

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

import lightning as L
import torch
from torch.utils.data import DataLoader

from tinyflow.cmax import CMaxLinearLoss
from tinyflow.models import FireNet, LIFFireNet
from tinyflow.tasks import FlowTask

NETWORKS = {"lif_firenet": LIFFireNet, "firenet": FireNet}


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


def bench(name: str, batch: int, size: int, passes: int, num_events: int, steps: int) -> dict[str, float]:
    generator = torch.Generator().manual_seed(0)
    network = NETWORKS[name](num_bins=2, base_num_channels=32, mask_output=True, flow_scaling=16.0)
    task = FlowTask(
        network, loss=partial(CMaxLinearLoss), optimizer=partial(torch.optim.Adam, lr=1e-4), scheduler=None
    )
    windows = [random_window(batch, size, num_events, generator) for _ in range(passes)]
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

    task.network.reset_state()
    with torch.inference_mode():
        task.network(windows[0]["input"])
        start = time.perf_counter()
        for _ in range(steps):
            for window in windows:
                task.network(window["input"])
        infer_s = (time.perf_counter() - start) / (steps * passes)
    return {
        "train_windows_per_s": round(batch * passes / train_s, 2),
        "train_step_s": round(train_s, 3),
        "inference_windows_per_s": round(batch / infer_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128, help="height = width of the input")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--passes", type=int, default=10, help="windows per training step")
    parser.add_argument("--events", type=int, default=1000, help="events per window")
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per setting")
    args = parser.parse_args()
    results: dict[str, object] = {
        "size": args.size,
        "passes": args.passes,
        "events_per_window": args.events,
        "threads": torch.get_num_threads(),
        "networks": {},
    }
    for name, cls in NETWORKS.items():
        entry: dict[str, object] = {"parameters": sum(p.numel() for p in cls().parameters())}
        for batch in args.batch:
            entry[f"batch_{batch}"] = bench(name, batch, args.size, args.passes, args.events, args.steps)
        results["networks"][name] = entry
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
