"""Compare the flow networks on the synthetic data at an equal wall-clock training budget.

    python scripts/compare_models.py [--budget-s 120] [--models lif_firenet evflownet ...] [--root DIR]

Each model trains with its own config (``model=<name>``, everything else the default run's) for as many
optimiser steps as fit in ``--budget-s`` seconds: a probe times a few steps first, and the cosine
schedule then spans exactly those steps. Prints a table and JSON: parameters, steps, validation AEE /
zero-flow AEE, FWL, and inference windows/s at the validation size (batch 1). Models that learn slowly
per second on a CPU (the 14-33 M-parameter EV-FlowNets) get few steps: that is the point of the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from bench_train import StepTimer  # scripts/ is on the path of a script run from it
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinyflow.app.build import build_task
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.train import train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
MODELS = [
    "lif_firenet",
    "lif_firenet_short",
    "lif_fireflownet",
    "firenet",
    "fireflownet",
    "convgru",
    "evflownet",
    "rec_evflownet",
    "lif_evflownet",
]
PROBE_STEPS = 4


def config(root: Path, model: str, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "train", [f"paths.root_dir={root}", f"model={model}", "callbacks.progress=null", *overrides]
        )


def seconds_per_step(root: Path, model: str) -> float:
    """Median wall time of a training step of the default run's batches (after a warm-up step)."""
    cfg = config(root, model, [f"trainer.max_steps={PROBE_STEPS + 1}", "scheduler=constant"])
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=PROBE_STEPS + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    trainer.fit(build_task(cfg), datamodule=instantiate(cfg.data))
    return sorted(timer.seconds)[len(timer.seconds) // 2]


def inference_windows_per_s(root: Path, model: str, height: int, width: int, repeats: int = 20) -> float:
    cfg = config(root, model, [])
    network = build_task(cfg).network
    x = torch.rand(1, cfg.data.num_bins, height, width)
    with torch.inference_mode():
        network(x)
        start = time.perf_counter()
        for _ in range(repeats):
            network(x)
    return repeats / (time.perf_counter() - start)


def compare(root: Path, model: str, budget_s: float) -> dict[str, float | int | str]:
    step_s = seconds_per_step(root, model)
    steps = max(1, int(budget_s / step_s))
    cfg = config(root, model, [f"trainer.max_steps={steps}", f"run_id=cmp_{model}"])
    results = train(cfg, overrides=[])
    mean = results["mean"]
    height, width = cfg.data.synth.height, cfg.data.synth.width
    network = build_task(cfg).network.network
    return {
        "model": model,
        "parameters": sum(p.numel() for p in network.parameters()),
        "steps": steps,
        "s_per_step": round(step_s, 3),
        "aee_px": round(mean["aee"], 3),
        "aee_zero_px": round(mean["aee_zero"], 3),
        "aee_ratio": round(mean["aee"] / mean["aee_zero"], 3),
        "fwl": round(mean["fwl"], 3),
        f"inference_windows_per_s_{height}x{width}": round(
            inference_windows_per_s(root, model, height, width), 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget-s", type=float, default=120.0, help="training wall time per model")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--root", type=Path, default=Path("runs/compare"), help="runs and data go here")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse generated data (paths.data_dir)")
    args = parser.parse_args()
    register_resolvers()
    rows = []
    for model in args.models:
        root = args.root
        if args.data_dir is not None:
            root.mkdir(parents=True, exist_ok=True)
            link = root / "data"
            if not link.exists():
                link.symlink_to(args.data_dir.resolve(), target_is_directory=True)
        rows.append(compare(root, model, args.budget_s))
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(
        json.dumps({"budget_s": args.budget_s, "threads": torch.get_num_threads(), "models": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
