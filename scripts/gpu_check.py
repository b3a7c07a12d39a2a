"""The GPU check in one go: native Triton kernels, CMax timings and a short GPU training, one JSON.

    python scripts/gpu_check.py [--output gpu_check.json] [--dry-run]

On a CUDA machine it runs, each part in its own process under its own time limit (together under
8 minutes):

1. ``tests``: the ``gpu``-marked tests (native Triton kernels against PyTorch at training size);
2. ``bench``: ``scripts/bench_cmax.py --device cuda`` (event_flow's formulation, PyTorch and Triton,
   linear and iterative, 10k / 100k / 1M events per pass: seconds and peak memory);
3. ``train``: ``train.py trainer=gpu trainer.max_steps=200`` and its steps per second (the fit's wall
   time from the run's summary, which includes the final validation).

It writes one JSON object: the device, and per part its command, limit, exit code, seconds and results
(pytest's counts, the benchmark's records, steps and steps/s). Without CUDA the parts are recorded as
skipped with the reason "no CUDA"; ``--dry-run`` records the commands and limits without running them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480  # the whole check, on one GPU
TAIL_CHARS = 2000


def commands(args: argparse.Namespace) -> dict[str, tuple[list[str], int]]:
    """Each part's command line and time limit in seconds."""
    python = sys.executable
    bench = [python, "scripts/bench_cmax.py", "--device", "cuda", "--sizes", *map(str, args.sizes)]
    train = [python, "train.py", "trainer=gpu", f"trainer.max_steps={args.steps}", *args.train_overrides]
    return {
        "tests": ([python, "-m", "pytest", "-m", "gpu", "-q", "tests"], args.tests_timeout),
        "bench": (bench, args.bench_timeout),
        "train": (train, args.train_timeout),
    }


def run_part(command: list[str], timeout_s: int) -> dict[str, Any]:
    """Run one part; its exit code, seconds and output tail (``timed_out`` if it ran past its limit)."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as expired:
        output = (
            (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        )
        return {"timed_out": True, "seconds": round(time.perf_counter() - start, 1), "stdout": output}
    return {
        "returncode": done.returncode,
        "seconds": round(time.perf_counter() - start, 1),
        "stdout": done.stdout,
        "stderr_tail": done.stderr[-TAIL_CHARS:],
    }


def parse_pytest(stdout: str) -> dict[str, int]:
    """pytest's final counts, e.g. ``{"passed": 1, "deselected": 300}``."""
    lines = [line for line in stdout.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    if not lines:
        return {}
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", lines[-1])}


def parse_bench(stdout: str) -> list[dict[str, Any]]:
    """The JSON records that ``bench_cmax.py`` prints, one a line."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def parse_train(stdout: str) -> dict[str, float]:
    """Steps, the fit's wall time and steps/s from the run summary that ``train.py`` prints."""
    steps = re.search(r"^\W*steps\W+(\d+)\W*$", stdout, flags=re.MULTILINE)
    wall = re.search(r"^\W*wall time\W+([\d.]+) s\W*$", stdout, flags=re.MULTILINE)
    if not (steps and wall):
        return {}
    result = {"steps": int(steps.group(1)), "wall_s": float(wall.group(1))}
    result["steps_per_s"] = round(result["steps"] / result["wall_s"], 2) if result["wall_s"] else 0.0
    return result


PARSERS = {"tests": parse_pytest, "bench": parse_bench, "train": parse_train}


def check(args: argparse.Namespace) -> dict[str, Any]:
    """The record of the whole check."""
    cuda = torch.cuda.is_available()
    record: dict[str, Any] = {
        "cuda": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "budget_s": BUDGET_S,
        "dry_run": args.dry_run,
        "parts": {},
    }
    if not cuda:
        record["no_cuda"] = "no CUDA device: the GPU parts did not run"
    for name, (command, timeout_s) in commands(args).items():
        part: dict[str, Any] = {"command": command, "timeout_s": timeout_s}
        if not cuda:
            part["skipped"] = "no CUDA"
        elif not args.dry_run:
            outcome = run_part(command, timeout_s)
            part.update(outcome)
            part["results"] = PARSERS[name](outcome.get("stdout", ""))
            part["stdout_tail"] = outcome.pop("stdout", "")[-TAIL_CHARS:]
            part.pop("stdout", None)
        record["parts"][name] = part
    return record


def write_json(record: dict[str, Any], path: Path) -> None:
    """Write ``record`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    os.replace(handle.name, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("gpu_check.json"), help="the JSON written")
    parser.add_argument("--dry-run", action="store_true", help="record the commands without running them")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=200, help="training steps")
    parser.add_argument("--tests-timeout", type=int, default=90, help="seconds")
    parser.add_argument("--bench-timeout", type=int, default=240, help="seconds")
    parser.add_argument("--train-timeout", type=int, default=140, help="seconds")
    parser.add_argument(
        "--train-overrides", nargs="*", default=[], help="extra Hydra overrides of the training run"
    )
    args = parser.parse_args(argv)
    limits = {"--tests-timeout": args.tests_timeout, "--bench-timeout": args.bench_timeout}
    limits["--train-timeout"] = args.train_timeout
    if bad := [f"{name} {value}" for name, value in limits.items() if value < 1]:
        parser.error(f"{', '.join(bad)}: expected at least 1 second")
    if sum(limits.values()) > BUDGET_S:
        parser.error(
            f"{' + '.join(limits)} = {sum(limits.values())} s: expected at most {BUDGET_S} s together "
            "(the check must finish in 8 minutes)"
        )
    if args.steps < 1 or min(args.sizes) < 1:
        parser.error(f"--steps {args.steps}, --sizes {args.sizes}: expected positive counts")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    record = check(args)
    write_json(record, args.output)
    summary = {
        name: {k: v for k, v in part.items() if k in ("skipped", "returncode", "timed_out", "seconds")}
        for name, part in record["parts"].items()
    }
    print(json.dumps({"output": str(args.output), "cuda": record["cuda"], "parts": summary}))


if __name__ == "__main__":
    main()
