"""Predicted flow against the GT at the pixels with events: how much of the error is scale, how much is not.

    python validate.py runid=<id> data=transfer_slow +callbacks=flow_output callbacks.flow_output.path=slow.h5
    python scripts/flow_vs_gt.py slow.h5 data/transfer/<dataset folder>/val [--flow-name dt1]

The flow file is validate.py's ``flow_output`` (one flow per window, pixels per window). Its windows are paired
with the GT intervals of the same span in ``<folder>/<recording>.h5``; windows that span no GT interval
exactly (several windows per interval) are counted and left out. Prints JSON, flows in pixels per GT
interval: ``mean_gt_px`` (the zero-flow AEE), ``mean_pred_px``, ``aee``, ``slope`` (the least-squares
scale of the prediction on the GT: 1 = the right scale) and ``residual_px`` (the mean of
``|pred - slope * GT|``: the error that no rescaling of the prediction removes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np

from tinyflow.io import open_recording


def decompose(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Scale and residual of predicted flow ``pred`` against ``gt`` (both [N, 2], pixels)."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    slope = float((pred * gt).sum() / (gt * gt).sum()) if np.any(gt) else float("nan")
    return {
        "pixels": len(gt),
        "mean_gt_px": float(np.linalg.norm(gt, axis=1).mean()),
        "mean_pred_px": float(np.linalg.norm(pred, axis=1).mean()),
        "aee": float(np.linalg.norm(pred - gt, axis=1).mean()),
        "slope": slope,
        "residual_px": float(np.linalg.norm(pred - slope * gt, axis=1).mean()),
    }


def paired_flows(
    flow_file: Path, recordings: Path, flow_name: str = "dt1"
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(pred [N, 2], gt [N, 2], windows left out)`` at the valid GT pixels with events of every window
    that spans one GT interval of ``flow_name`` exactly."""
    preds, gts, left_out = [], [], 0
    with h5py.File(flow_file, "r") as file:
        for name, group in file.items():
            with open_recording(recordings / f"{name}.h5") as recording:
                starts, ends = recording.flow_intervals(flow_name)
                interval = {(int(s), int(e)): k for k, (s, e) in enumerate(zip(starts, ends, strict=True))}
                for flow, start, end in zip(
                    group["flow"], group["t_start_us"], group["t_end_us"], strict=True
                ):
                    k = interval.get((int(start), int(end)))
                    if k is None:
                        left_out += 1
                        continue
                    gt, valid = recording.flow_map(flow_name, k)
                    first, last = recording.index_at_time(np.array([start, end]))
                    events = recording.events(int(first), int(last))
                    mask = np.zeros(gt.shape[1:], bool)
                    mask[events.y, events.x] = True
                    if valid is not None:
                        mask &= valid.astype(bool)
                    preds.append(flow[:, mask].T)
                    gts.append(gt[:, mask].T)
    if not gts:
        raise SystemExit(f"{flow_file}: no window spans a GT interval of '{flow_name}' in {recordings}")
    return np.concatenate(preds), np.concatenate(gts), left_out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("flow_file", type=Path, help="validate.py's flow_output file")
    parser.add_argument("recordings", type=Path, help="the folder of the set's <recording>.h5 files")
    parser.add_argument("--flow-name", default="dt1", help="the GT flow set (default: dt1)")
    args = parser.parse_args()
    pred, gt, left_out = paired_flows(args.flow_file, args.recordings, args.flow_name)
    result = {key: round(value, 4) for key, value in decompose(pred, gt).items()}
    print(json.dumps({**result, "windows_left_out": left_out}, indent=2))


if __name__ == "__main__":
    main()
