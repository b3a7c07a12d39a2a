"""Benchmark the data layer: read + window + encode throughput, and the synthetic generator.

    python scripts/bench_data.py [--events 10000000] [--compression none gzip blosc] [--out bench.json]

Prints a JSON object: events/s of reading windows of 1k and 100k events from a canonical file
and encoding them as counts and as a voxel grid (one process, numpy on one core), per
compression, and the generator's events/s on its default config.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from tinyflow.events.core import Events
from tinyflow.events.encodings import event_counts, voxel_grid
from tinyflow.events.windows import windows_by_count
from tinyflow.io import open_recording, write_canonical
from tinyflow.synth.config import SynthConfig
from tinyflow.synth.generate import generate_recording

SENSOR = (480, 640)
WINDOW_SIZES = (1_000, 100_000)
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
    for window in windows:
        events = recording.events(window.start, window.stop)
        if encoding == "counts":
            event_counts(events, recording.sensor_size)
        else:
            voxel_grid(events, recording.sensor_size, 5, window.t_start_us, window.t_end_us)
        processed += len(events)
    elapsed = time.perf_counter() - start
    recording.close()
    return processed / elapsed


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
    parser.add_argument("--max-events-1k", type=int, default=1_000_000, help="events read with 1k windows")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    events = random_recording(args.events)
    results: dict[str, object] = {"num_events": args.events, "sensor_size": SENSOR, "read_window_encode": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for compression in args.compression:
            path = Path(tmp) / f"bench_{compression}.h5"
            write_canonical(path, events, SENSOR, compression=None if compression == "none" else compression)
            per_size = {}
            for size in WINDOW_SIZES:
                budget = args.max_events_1k if size < 10_000 else args.events
                per_size[f"{size}_events"] = {
                    enc: round(read_window_encode(path, size, enc, budget)) for enc in ("counts", "voxel")
                }
            results["read_window_encode"][compression] = {
                "events_per_s": per_size,
                "file_mb": round(path.stat().st_size / 2**20, 1),
            }
    results["generator"] = generator_rate()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
