"""Benchmark the whole-file check at open (tinyflow.io.checks): first open, plain read, cached open.

    python scripts/bench_file_check.py [--events 10000000] [--compression gzip]
        [--synthetic data/synthetic/synthetic_<hash>] [--out bench.json]

Prints a JSON object:

- ``large_file``: a canonical file of ``--events`` random events (480x640, written with
  CanonicalWriter into a temporary folder): seconds of a plain chunked read of its four event
  columns, of the first open (metadata + the whole-file check), and of the second open (the
  cached verdict), each the best of ``--repeat``.
- ``synthetic`` (with ``--synthetic``): the training recordings of a synthetic dataset folder (as
  ``python train.py`` generates them): seconds of opening them all the first time (with the check)
  and the second time (cached), against one epoch's reading: every training window once, read,
  windowed and encoded as ``config/data/synthetic.yaml`` sets it (WindowDataset with its
  augmentation, crop, hot-pixel filter and flow target), on freshly opened files (``epoch_s``: every
  HDF5 chunk decompressed, as in the first epoch) and again on the same handles (``warm_epoch_s``:
  chunks cached, as in later epochs of a persistent worker). Measurements are interleaved and the
  best of ``--repeat`` is kept, in wall-clock and in process CPU seconds (the CPU figures hold
  better on a machine shared with other jobs). The folder is only read.

Files are read once before timing, so the page cache is warm and the numbers are CPU costs. The
check caches go to a temporary ``TINYFLOW_CACHE_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from omegaconf import OmegaConf

from tinyflow.data.dataset import HotPixelFilter, WindowDataset, Windowing
from tinyflow.data.targets import build_targets
from tinyflow.events.core import Events
from tinyflow.events.transforms import FlowAugmentation
from tinyflow.io import CanonicalRecording, CanonicalWriter, checks, open_recording

SENSOR = (480, 640)
EVENT_RATE_HZ = 20e6  # 10M events span 0.5 s
APPEND = 1_000_000
DATA_CONFIG = Path(__file__).resolve().parents[1] / "config" / "data" / "synthetic.yaml"


def write_random_file(path: Path, num_events: int, compression: str | None, seed: int = 0) -> Path:
    """A canonical file of uniform random events at a constant rate, appended 1M events at a time."""
    rng = np.random.default_rng(seed)
    t_us = np.sort(rng.integers(0, int(num_events / EVENT_RATE_HZ * 1e6), num_events)).astype(np.int64)
    with CanonicalWriter(path, SENSOR, source="bench", compression=compression) as writer:
        for start in range(0, num_events, APPEND):
            n = min(APPEND, num_events - start)
            writer.append(
                Events(
                    rng.integers(0, SENSOR[1], n).astype(np.uint16),
                    rng.integers(0, SENSOR[0], n).astype(np.uint16),
                    t_us[start : start + n],
                    rng.integers(0, 2, n).astype(np.uint8),
                )
            )
    return path


def wait_until_settled(paths: list[Path]) -> None:
    """Verdicts of files modified in the last ``RACY_NS`` are not cached: wait that out."""
    newest = max(p.stat().st_mtime_ns for p in paths)
    time.sleep(max(0.0, (newest + checks.RACY_NS - time.time_ns()) / 1e9 + 0.1))


def warm(paths: list[Path]) -> None:
    for path in paths:
        path.read_bytes()


def best_of(
    repeat: int, run: Callable[[], None], before: Callable[[], None] | None = None
) -> dict[str, float]:
    """Fewest wall-clock and process CPU seconds of ``run`` over ``repeat`` tries (``before`` runs untimed)."""
    wall, cpu = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": min(wall), "cpu": min(cpu)}


def plain_read(path: Path, chunk: int = checks.CHECK_CHUNK) -> None:
    """Read the four event columns chunk by chunk, as the check does, without checking them."""
    with h5py.File(path, "r") as file:
        columns = [file[f"events/{key}"] for key in "xytp"]
        n = columns[0].shape[0]
        for start in range(0, n, chunk):
            for column in columns:
                column[start : min(start + chunk, n)]


def open_all(paths: list[Path]) -> None:
    for path in paths:
        open_recording(path).close()


def clear_cache() -> None:
    shutil.rmtree(checks.cache_dir(), ignore_errors=True)


def bench_large_file(
    num_events: int, compression: str | None, repeat: int, folder: Path
) -> dict[str, object]:
    path = write_random_file(folder / "bench_check.h5", num_events, compression)
    wait_until_settled([path])
    warm([path])
    read = best_of(repeat, lambda: plain_read(path))
    first = best_of(repeat, lambda: CanonicalRecording(path).close(), before=clear_cache)
    second = best_of(repeat, lambda: CanonicalRecording(path).close())
    result: dict[str, object] = {
        "num_events": num_events,
        "compression": compression or "none",
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    for clock in ("wall", "cpu"):
        check_s = first[clock] - second[clock]
        result[clock] = {
            "plain_read_s": round(read[clock], 4),
            "first_open_s": round(first[clock], 4),
            "second_open_s": round(second[clock], 4),
            "check_over_plain_read": round(check_s / read[clock], 3),
            "check_events_per_s": round(num_events / check_s),
        }
    return result


def synthetic_dataset(paths: list[Path]) -> WindowDataset:
    """The training WindowDataset of ``config/data/synthetic.yaml`` over ``paths`` (already cached verdicts)."""
    wrapped = OmegaConf.create({"data": OmegaConf.load(DATA_CONFIG), "seed": 0, "paths": {"data_dir": "."}})
    data = OmegaConf.to_container(wrapped, resolve=True)["data"]
    return WindowDataset(
        paths,
        Windowing(**data["train_windowing"]),
        data["encoding"],
        data["num_bins"],
        FlowAugmentation(**data["augmentation"]) if data.get("augmentation") else None,
        tuple(data["crop_size"]) if data.get("crop_size") else None,
        HotPixelFilter(**data["hot_pixels"]) if data.get("hot_pixels") else None,
        data["seed"],
        build_targets(data.get("targets")),
    )


def bench_synthetic(folder: Path, repeat: int) -> dict[str, object]:
    """First and second open of the training files, and epochs over them, interleaved (load spikes hit all)."""
    paths = sorted((folder / "train").glob("*.h5"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no train/*.h5 (a synthetic dataset folder of train.py)")
    warm(paths)
    names = ("first", "second", "build", "cold_epoch", "warm_epoch")
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}

    def timed(name: str, run: Callable[[], object]) -> object:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        wall[name].append(time.perf_counter() - start)
        cpu[name].append(time.process_time() - start_cpu)
        return result

    def epoch(dataset: WindowDataset) -> None:
        for index in range(len(dataset)):
            dataset[index]

    for _ in range(repeat):
        clear_cache()
        timed("first", lambda: open_all(paths))
        timed("second", lambda: open_all(paths))
        timed("build", lambda: synthetic_dataset(paths))  # opens (cached verdicts) + hot-pixel masks
        dataset = synthetic_dataset(paths)  # fresh handles: the epoch decompresses every chunk
        timed("cold_epoch", lambda d=dataset: epoch(d))
        timed("warm_epoch", lambda d=dataset: epoch(d))  # chunks now in the handles' caches
    result: dict[str, object] = {
        "folder": str(folder),
        "recordings": len(paths),
        "num_events": sum(r.num_events for r in dataset.recordings),
        "windows": len(dataset),
    }
    for clock, times in (("wall", wall), ("cpu", cpu)):
        best = {name: min(values) for name, values in times.items()}
        check_s = best["first"] - best["second"]
        result[clock] = {
            "first_open_s": round(best["first"], 4),
            "second_open_s": round(best["second"], 4),
            "check_s": round(check_s, 4),
            "dataset_build_s": round(best["build"], 4),
            "epoch_s": round(best["cold_epoch"], 4),
            "warm_epoch_s": round(best["warm_epoch"], 4),
            "check_over_epoch": round(check_s / best["cold_epoch"], 4),
            "check_over_warm_epoch": round(check_s / best["warm_epoch"], 4),
            "second_open_over_epoch": round(best["second"] / best["cold_epoch"], 4),
            "per_try_check_over_epoch": [
                round((f - s) / e, 4)
                for f, s, e in zip(times["first"], times["second"], times["cold_epoch"], strict=True)
            ],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the large file")
    parser.add_argument(
        "--compression", default="gzip", help="of the large file: gzip, lzf, blosc, zstd, none"
    )
    parser.add_argument("--synthetic", type=Path, help="a synthetic dataset folder (holding train/*.h5)")
    parser.add_argument("--repeat", type=int, default=3, help="tries per measurement (the best is kept)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core, as a DataLoader worker reads
    cache_dir = Path(tempfile.mkdtemp(prefix="tinyflow_check_cache_"))
    os.environ[checks.CACHE_ENV] = str(cache_dir)
    results: dict[str, object] = {"check_chunk": checks.CHECK_CHUNK}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            compression = None if args.compression == "none" else args.compression
            if args.events > 0:
                results["large_file"] = bench_large_file(args.events, compression, args.repeat, Path(tmp))
        if args.synthetic is not None:
            results["synthetic"] = bench_synthetic(args.synthetic, args.repeat)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
