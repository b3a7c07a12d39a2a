"""Benchmark the data layer: raw HDF5 reads against read + window + encode, and the synthetic generator.

    python scripts/bench_data.py [--events 10000000] [--compression none gzip blosc] [--out bench.json]

Prints a JSON object, per compression and window size (1k and 100k events): ``raw`` the events/s of plain
h5py reads of the four event columns (one slice read per column and window, file in the page cache),
``counts`` and ``voxel`` the events/s of the pipeline as a stream runs it (windows cut, events read and
encoded as 2-channel counts or a 5-bin voxel grid: :func:`tinyflow.io.encoded.encoded_windows`), each in
M events/s, ``ratio`` pipeline / raw, and ``scatter_bound`` the ratio if the encoding cost no more than its
``np.add.at`` scatter (see :func:`compare`), all measured in this run (one process, numpy on one core); and
the generator's events/s on its default config.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from tinyflow.events.core import Events
from tinyflow.events.windows import windows_by_count
from tinyflow.io import open_recording, write_canonical
from tinyflow.io.encoded import encoded_windows
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.generate import generate_recording

SENSOR = (480, 640)
WINDOW_SIZES = (1_000, 100_000)
VOXEL_BINS = 5
EVENT_RATE_HZ = 20e6  # a busy DAVIS346/Prophesee-like stream: 10M events span 0.5 s


def random_recording(num_events: int, seed: int = 0) -> Events:
    """Uniform random events on a 480x640 sensor at a constant rate (sorted timestamps, µs)."""
    rng = np.random.default_rng(seed)
    t_us = np.sort(rng.integers(0, int(num_events / EVENT_RATE_HZ * 1e6), num_events)).astype(np.int64)
    return Events(
        rng.integers(0, SENSOR[1], num_events).astype(np.uint16),
        rng.integers(0, SENSOR[0], num_events).astype(np.uint16),
        t_us,
        rng.integers(0, 2, num_events).astype(np.uint8),
    )


def read_window_encode(path: Path, events_per_window: int, encoding: str, max_events: int) -> float:
    """Events/s of windowing, reading and encoding up to ``max_events`` events of a file."""
    recording = open_recording(path)
    start = time.perf_counter()
    windows = windows_by_count(recording, events_per_window)[: max(1, max_events // events_per_window)]
    processed = 0
    for window, _ in encoded_windows(recording, windows, encoding, VOXEL_BINS):
        processed += window.num_events
    elapsed = time.perf_counter() - start
    recording.close()
    return processed / elapsed


def raw_read(path: Path, events_per_window: int, max_events: int) -> float:
    """Events/s of plain h5py slice reads of the four event columns, window after window."""
    with h5py.File(path, "r") as file:
        columns = [file[f"events/{key}"] for key in ("x", "y", "t", "p")]
        stop = min(columns[0].shape[0], max(events_per_window, max_events))
        start_time = time.perf_counter()
        processed = 0
        for start in range(0, stop - events_per_window + 1, events_per_window):
            for column in columns:
                column[start : start + events_per_window]
            processed += events_per_window
        return processed / (time.perf_counter() - start_time)


def scatter_rate(events_per_window: int, scatters_per_event: int, grid_size: int, windows: int = 20) -> float:
    """Events/s of the scatter alone that an encoding needs (``np.add.at`` of ``scatters_per_event`` random
    pixels per event into a float32 grid of ``grid_size``, indices and weights precomputed): the counts take
    one into 2 planes, the voxel grid two (lower and upper neighbour) into one plane at a time."""
    rng = np.random.default_rng(1)
    grid = np.zeros(grid_size, np.float32)
    indices = [rng.integers(0, grid_size, events_per_window) for _ in range(windows)]
    weight = np.float32(1)
    start = time.perf_counter()
    for index in indices:
        for _ in range(scatters_per_event):
            np.add.at(grid, index, weight)
    return events_per_window * windows / (time.perf_counter() - start)


def compare(path: Path, events_per_window: int, max_events: int, repeats: int) -> dict[str, object]:
    """Raw reads and the pipeline (counts, voxel) in M events/s, best of ``repeats`` interleaved runs, and
    ``scatter_bound``: the ratio a pipeline would reach whose only cost besides the raw read were the scatter
    of its encoding (:func:`scatter_rate`), the bound for an encoder built on ``np.add.at``."""
    plane = SENSOR[0] * SENSOR[1]
    scatters = {"counts": (1, 2 * plane), "voxel": (2, plane)}
    best = {"raw": 0.0, "counts": 0.0, "voxel": 0.0}
    scatter = {"counts": 0.0, "voxel": 0.0}
    for _ in range(repeats):
        best["raw"] = max(best["raw"], raw_read(path, events_per_window, max_events))
        for encoding in ("counts", "voxel"):
            rate = read_window_encode(path, events_per_window, encoding, max_events)
            best[encoding] = max(best[encoding], rate)
            scatter[encoding] = max(scatter[encoding], scatter_rate(events_per_window, *scatters[encoding]))
    return {
        "mev_per_s": {key: round(rate / 1e6, 2) for key, rate in best.items()},
        "ratio": {key: round(best[key] / best["raw"], 3) for key in ("counts", "voxel")},
        "scatter_bound": {key: round(rate / (rate + best["raw"]), 3) for key, rate in scatter.items()},
    }


def generator_rate() -> dict[str, float]:
    config = SynthConfig()
    start = time.perf_counter()
    recording = generate_recording(config)
    elapsed = time.perf_counter() - start
    return {
        "events": len(recording.events),
        "seconds": elapsed,
        "events_per_s": len(recording.events) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the benchmark file")
    parser.add_argument("--compression", nargs="+", default=["none", "gzip", "blosc"])
    parser.add_argument(
        "--max-events-1k", type=int, help="events read with 1k windows (default: the whole file)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per setting (best kept)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    events = random_recording(args.events)
    results: dict[str, object] = {
        "num_events": args.events,
        "sensor_size": SENSOR,
        "voxel_bins": VOXEL_BINS,
        "load_average": os.getloadavg(),
        "read_window_encode": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for compression in args.compression:
            path = Path(tmp) / f"bench_{compression}.h5"
            write_canonical(path, events, SENSOR, compression=None if compression == "none" else compression)
            entry: dict[str, object] = {"file_mb": round(path.stat().st_size / 2**20, 1)}
            for size in WINDOW_SIZES:
                budget = args.max_events_1k if size < 10_000 and args.max_events_1k else args.events
                entry[f"{size}_events"] = compare(path, size, budget, args.repeats)
            results["read_window_encode"][compression] = entry
    results["generator"] = generator_rate()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
