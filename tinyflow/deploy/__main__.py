"""``python -m tinyflow.deploy <model.onnx> <recording.h5> [--output flow.h5]``: see :mod:`tinyflow.deploy.stream`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tinyflow.deploy.stream import DeployError, stream
from tinyflow.events.core import EventDataError

USER_ERROR_EXIT_CODE = 2


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tinyflow.deploy",
        description="Stream a recording through an exported ONNX model (export.py's model.onnx or "
        "model.int8.onnx, with its manifest.json beside it); print windows/s and the real-time factor.",
    )
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument(
        "recording", help="an event recording (HDF5: the canonical layout or any tinyflow reads)"
    )
    parser.add_argument("--output", help="write the predicted flow to this HDF5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--max-windows", type=int, help="stop after this many windows")
    parser.add_argument(
        "--duration-us", type=int, help="windows of this many microseconds (default: the manifest's)"
    )
    parser.add_argument(
        "--events-per-window", type=int, help="windows of this many events (default: the manifest's)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        stats = stream(
            args.model,
            args.recording,
            output=args.output,
            overwrite=args.overwrite,
            threads=args.threads,
            max_windows=args.max_windows,
            duration_us=args.duration_us,
            events_per_window=args.events_per_window,
        )
    except (DeployError, EventDataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT_CODE
    print("\n".join(stats.lines()))
    if args.output:
        print(f"flow: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
