"""Generate (or complete) a synthetic event-camera dataset of canonical HDF5 recordings.

Example: ``python scripts/make_synthetic.py --root data --train 10 --val 2``; a stereo pair (a right camera
0.1 m away, 41.8 px focal length): ``... --baseline-m 0.1 --focal-px 41.8``.
"""

from __future__ import annotations

import argparse
import logging
import time

from tinyflow.io.canonical import CanonicalRecording
from tinyflow.synth import StereoConfig, SynthConfig, ensure_synthetic_dataset
from tinyflow.synth.config import CAMERA_MODES


def parse_args() -> argparse.Namespace:
    defaults = SynthConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", default="data", help="dataset root; files go to ROOT/synthetic_<hash>/<split>/"
    )
    parser.add_argument("--train", type=int, default=10, help="number of training recordings")
    parser.add_argument("--val", type=int, default=2, help="number of validation recordings")
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--duration-s", type=float, default=defaults.duration_us / 1e6)
    parser.add_argument("--gt-interval-ms", type=float, default=defaults.gt_interval_us / 1e3)
    parser.add_argument("--camera-mode", choices=CAMERA_MODES, default=defaults.camera_mode)
    parser.add_argument(
        "--layers", type=int, default=defaults.num_foreground_layers, help="foreground layers"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-m", type=float, help="also render a right camera this far away (stereo)")
    parser.add_argument("--focal-px", type=float, default=StereoConfig().focal_px, help="stereo focal length")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = SynthConfig(
        height=args.height,
        width=args.width,
        duration_us=round(args.duration_s * 1e6),
        gt_interval_us=round(args.gt_interval_ms * 1e3),
        camera_mode=args.camera_mode,
        num_foreground_layers=args.layers,
    )
    stereo = None if args.baseline_m is None else StereoConfig(args.baseline_m, args.focal_px)
    start = time.perf_counter()
    splits = ensure_synthetic_dataset(
        args.root, config, {"train": args.train, "val": args.val}, args.seed, stereo
    )
    elapsed = time.perf_counter() - start
    for split, paths in splits.items():
        counts = [CanonicalRecording(path).num_events for path in paths]
        folder = paths[0].parent if paths else "-"
        print(f"{split}: {len(paths)} recordings, {sum(counts)} events in {folder}")
    print(f"done in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
