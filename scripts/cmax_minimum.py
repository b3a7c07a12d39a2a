"""Where the CMax loss's minimum sits along the ground truth: the loss of ``alpha * GT flow`` for a grid of
alpha, on a data config's validation windows (GT flow in pixels per window, dt1), whole frames or random
crops as training sees them.

    python scripts/cmax_minimum.py [--crop 32] [--alphas 0.6 1.2 0.025] [--passes 1] [overrides ...]

``overrides`` are the train config's (``loss=cmax_iterative``, ``loss.smoothness_weight=0``,
``loss.border_compensation=true``, ``data=...``). A loss whose minimum sits at alpha < 1 pulls a network
trained on it towards underestimating the flow by that factor. ``--passes`` consecutive windows form one
accumulation window (one pass each). The subpixel jitter is drawn from a fixed seed per alpha, so the
curve compares like with like. Prints JSON: the argmin alpha and the loss curve relative to its value at
alpha = 1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tinyflow.app.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
Sample = tuple[
    list[np.ndarray], list[np.ndarray]
]  # per pass: events [N, 4] (x, y, t_norm, p), flow [2, h, w]


def crop_window(
    events: np.ndarray, flow: np.ndarray, corner_yx: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The events inside the ``size`` x ``size`` crop at ``corner_yx`` (shifted to it) and its flow."""
    y0, x0 = corner_yx
    inside = (
        (events[:, 0] >= x0) & (events[:, 0] < x0 + size) & (events[:, 1] >= y0) & (events[:, 1] < y0 + size)
    )
    cropped = events[inside].copy()
    cropped[:, 0] -= x0
    cropped[:, 1] -= y0
    return cropped, flow[:, y0 : y0 + size, x0 : x0 + size]


def samples(dataset, passes: int, crop: int | None, crops_per_window: int, seed: int) -> list[Sample]:
    """Accumulation windows of ``passes`` consecutive GT windows of one recording, cropped alike."""
    rng = np.random.default_rng(seed)
    height, width = dataset.sensor_size
    items = [dataset[i] for i in range(len(dataset))]
    out: list[Sample] = []
    for start in range(0, len(items) - passes + 1, passes):
        group = items[start : start + passes]
        if len({int(item["recording"]) for item in group}) > 1:
            continue
        events = [np.asarray(item["events"], np.float32) for item in group]
        flows = [np.nan_to_num(np.asarray(item["flow_gt"], np.float32)) for item in group]
        if crop is None:
            out.append((events, flows))
            continue
        for _ in range(crops_per_window):
            corner = (int(rng.integers(0, height - crop + 1)), int(rng.integers(0, width - crop + 1)))
            pairs = [crop_window(e, f, corner, crop) for e, f in zip(events, flows, strict=True)]
            out.append(([p[0] for p in pairs], [p[1] for p in pairs]))
    return [s for s in out if min(len(e) for e in s[0]) >= 20]


def loss_curve(loss_factory, windows: list[Sample], alphas: np.ndarray, seed: int) -> np.ndarray:
    """The summed loss of every window at each ``alpha * GT``."""
    curve = np.zeros(len(alphas))
    for events, flows in windows:
        loss = loss_factory(sensor_size=flows[0].shape[1:])
        for k, alpha in enumerate(alphas):
            torch.manual_seed(seed)
            loss.reset()
            for e, f in zip(events, flows, strict=True):
                event_list = torch.from_numpy(e)[None]
                mask = torch.ones(event_list.shape[:2], dtype=torch.bool)
                loss.accumulate(event_list, mask, float(alpha) * torch.from_numpy(f)[None])
            with torch.no_grad():
                curve[k] += float(loss.compute())
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crop", type=int, default=None, help="random crops of this size (default: frames)")
    parser.add_argument("--crops-per-window", type=int, default=2)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument(
        "--alphas", type=float, nargs=3, default=(0.6, 1.2, 0.025), metavar=("FROM", "TO", "STEP")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="train config overrides")
    args = parser.parse_args()
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "config"), version_base="1.3"):
        cfg = compose("train", [f"paths.root_dir={ROOT}", *args.overrides])
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("validate")
    start, stop, step = args.alphas
    alphas = np.round(np.arange(start, stop + step / 2, step), 6)
    if not np.any(np.isclose(alphas, 1.0)):
        raise SystemExit(f"--alphas {start} {stop} {step}: the grid must contain 1")
    windows = samples(datamodule.val_set, args.passes, args.crop, args.crops_per_window, args.seed)
    curve = loss_curve(instantiate(cfg.loss), windows, alphas, args.seed)
    at_gt = curve[int(np.argmin(np.abs(alphas - 1.0)))]
    result = {
        "overrides": args.overrides,
        "crop": args.crop,
        "passes": args.passes,
        "windows": len(windows),
        "argmin_alpha": float(alphas[int(np.argmin(curve))]),
        "curve_relative_to_gt": {
            f"{a:g}": round(float(c / at_gt), 5) for a, c in zip(alphas, curve, strict=True)
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
