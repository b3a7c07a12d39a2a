"""What ``scripts/eval_transfer.py`` does: a flow run validated on its own validation data and on every
transfer set (``config/eval_transfer.yaml``: held-apart synthetic sets that each name the motion they test,
and real ECD slices), reported as one table of AEE, zero-flow AEE and their ratio."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from tinyflow.app.build import build_task
from tinyflow.app.checks import ConfigError
from tinyflow.app.loading import load_run
from tinyflow.app.quiet import quiet_console
from tinyflow.app.resolvers import register_resolvers
from tinyflow.app.validate import validation_trainer, write_json_atomic

OWN = "own"  # the row of the run's own validation data


@dataclass(frozen=True)
class TransferRow:
    """One set's result: means over its recordings (each the mean over its GT windows).

    Attributes:
        name, motion: the set and what it tests.
        aee_px, zero_flow_aee_px: AEE of the run and of a zero-flow prediction, px over the GT intervals.
        outlier_percent: pixels with an endpoint error > 3 px and > 5 % of |GT|.
        gt_windows: GT intervals evaluated (all recordings).
        wall_s: seconds to load and validate the set (generation of a missing synthetic set included).
    """

    name: str
    motion: str
    aee_px: float
    zero_flow_aee_px: float
    outlier_percent: float
    gt_windows: int
    wall_s: float

    @property
    def ratio(self) -> float:
        """AEE / zero-flow AEE: below 1 beats predicting no motion, 0 is exact."""
        return self.aee_px / self.zero_flow_aee_px if self.zero_flow_aee_px > 0 else math.nan


def model_window_us(cfg: DictConfig, trained: DictConfig) -> int | None:
    """The window length the transfer sets' GT intervals are split into: ``cfg.model_window_us``, or where
    that is null the run's training window (duration windowing), else None (each GT interval whole)."""
    if cfg.get("model_window_us") is not None:
        return int(cfg.model_window_us)
    train = trained.data.get("train_windowing") or {}
    return int(train.duration_us) if train.get("mode") == "duration" else None


def set_config(cfg: DictConfig, data: DictConfig | None) -> DictConfig:
    """``cfg`` (the eval_transfer config) as a validate config of one set: ``data`` None = the run's own."""
    one = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(one):
        one.data = data
    return one


def _split_gt_intervals(cfg: DictConfig):
    def adjust(run_cfg: DictConfig, trained: DictConfig) -> None:
        windowing = run_cfg.data.get("val_windowing")
        if windowing is not None and windowing.get("mode") == "gt":
            windowing.model_window_us = model_window_us(cfg, trained)

    return adjust


def validate_set(cfg: DictConfig, name: str, motion: str, data: DictConfig | None) -> TransferRow:
    """Validate the run on one set (its own data for ``data=None``) without printing its tables."""
    start = time.perf_counter()
    one = set_config(cfg, data)
    loaded = load_run(one, ("data",), adjust=None if data is None else _split_gt_intervals(cfg))
    task = build_task(loaded.config)
    trainer = validation_trainer(loaded.config, [], enable_progress_bar=False)
    trainer.validate(
        task, datamodule=loaded.datamodule, ckpt_path=str(loaded.checkpoint), weights_only=True, verbose=False
    )
    mean = task.validation_results["mean"]
    windows = sum(errors.num_windows for errors in task.flow_errors.compute().values())
    return TransferRow(
        name,
        motion,
        float(mean.get("aee", math.nan)),
        float(mean.get("aee_zero", math.nan)),
        float(mean.get("outliers", math.nan)),
        windows,
        time.perf_counter() - start,
    )


def missing_root(data: Mapping[str, Any]) -> str | None:
    """Why a real-dataset set cannot run here (its ``root`` folder is absent), or None."""
    if "dataset" in data and not Path(str(data["root"])).is_dir():
        return f"{data['dataset']} data not found at {data['root']} (set sets.<name>.root)"
    return None


def markdown_table(rows: list[TransferRow], skipped: Mapping[str, str], title: str) -> str:
    """The rows as a markdown table (and a line per skipped set)."""
    lines = [
        f"**{title}**",
        "",
        "| set | tests | AEE [px] | zero-flow AEE [px] | AEE / zero-flow | outliers [%] | GT windows |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.motion} | {row.aee_px:.3f} | {row.zero_flow_aee_px:.3f} | {row.ratio:.2f} | "
            f"{row.outlier_percent:.1f} | {row.gt_windows} |"
        )
    lines += [f"| {name} | skipped: {why} | | | | | |" for name, why in skipped.items()]
    return "\n".join(lines)


def transfer_table(cfg: DictConfig) -> dict[str, Any]:
    """Validate ``cfg.runid`` on its own validation data (``own: true``) and on every set of ``cfg.sets``
    (name -> data config, in order); print the markdown table; write ``cfg.output`` (JSON) if set.

    Each set's GT intervals are split into windows of the run's training length (:func:`model_window_us`)
    whose predictions are composed. A real-data set whose root folder is absent is skipped, and said so.

    Returns:
        ``{"run": id, "checkpoint": which, "sets": {name: row fields + "ratio"}, "skipped": {name: why}}``.
    """
    register_resolvers()
    quiet_console()
    motions = cfg.get("motions") or {}
    sets: list[tuple[str, DictConfig | None]] = [(OWN, None)] if cfg.get("own", True) else []
    sets += [(name, data) for name, data in (cfg.get("sets") or {}).items() if data is not None]
    if not sets:
        raise ConfigError("eval_transfer: no set to validate (own=false and no sets)")
    rows, skipped = [], {}
    for name, data in sets:
        why = None if data is None else missing_root(data)
        if why is not None:
            skipped[name] = why
            print(f"transfer set {name}: skipped, {why}", flush=True)
            continue
        row = validate_set(cfg, name, str(motions.get(name, "")), data)
        rows.append(row)
        print(
            f"transfer set {name}: AEE {row.aee_px:.3f} px, zero-flow {row.zero_flow_aee_px:.3f} px, "
            f"ratio {row.ratio:.2f} ({row.gt_windows} GT windows, {row.wall_s:.0f} s)",
            flush=True,
        )
    title = f"transfer of run {cfg.runid} ({cfg.checkpoint} checkpoint)"
    print("\n" + markdown_table(rows, skipped, title))
    results = {
        "run": str(cfg.runid),
        "checkpoint": str(cfg.checkpoint),
        "sets": {row.name: {**asdict(row), "ratio": row.ratio} for row in rows},
        "skipped": skipped,
    }
    if cfg.get("output"):
        write_json_atomic(Path(cfg.output), results)
    return results
