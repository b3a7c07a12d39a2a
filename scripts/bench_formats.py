"""Conversion speed of camera files to canonical HDF5 (events/s), and the decoders alone, as JSON.

    python scripts/bench_formats.py [FILE_OR_FOLDER ...] [--repeat 3] [--compression gzip]

Default input: the samples in ../shared/data/formats. For each file: ``decode`` (the reader's stream of
chunks, nothing written) and ``convert`` (:func:`tinyflow.io.stream.write_camera_file`, the work of
``scripts/convert.py files``), best of ``--repeat`` runs, in events per second; EVT 3.0 files also time
the evt3 package alone and faery's EVT 3.0 decoder (the alternative) and AEDAT4 files the ``aedat`` package when installed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tinyflow.io.camera_files import camera_file_class, find_event_files, open_camera_file
from tinyflow.io.stream import CameraStream, write_camera_file

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "formats"


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def alternatives(path: Path, file: object) -> dict[str, Callable[[], int]]:
    """Other decoders of the same file, for the choice of decoder (their event counts)."""
    found: dict[str, Callable[[], int]] = {}
    if getattr(file, "version", None) == "evt3":
        from faery.extension import evt

        height, width = file.info.sensor_size

        def faery_evt3() -> int:
            with evt.Decoder(path, (width, height), "evt3") as decoder:
                return sum(len(p["events"]) for p in decoder if "events" in p)

        found["faery_evt3"] = faery_evt3
        import evt3

        found["evt3_package"] = lambda: sum(len(b.t) for b in evt3.decode_file_batches(str(path)))
    if path.suffix == ".aedat4":
        try:
            import aedat
        except ImportError:
            return found
        found["aedat_package"] = lambda: sum(len(f["events"]) for f in aedat.Decoder(path) if "events" in f)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path, default=[SAMPLES])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compression", default="gzip", choices=["gzip", "lzf", "blosc", "zstd", "none"])
    args = parser.parse_args()
    compression = None if args.compression == "none" else args.compression
    files = [
        p
        for path in args.paths
        for p in (find_event_files(path) if path.is_dir() else [path])
        if camera_file_class(p)
    ]
    results = {}
    for path in files:
        file = open_camera_file(path)
        count = sum(len(c.events) for c in CameraStream(file).chunks())
        decode = best_seconds(lambda f=file: [len(c.events) for c in CameraStream(f).chunks()], args.repeat)

        def convert(f=file) -> None:
            with tempfile.TemporaryDirectory() as folder:
                write_camera_file(f, Path(folder) / "out.h5", compression)

        row = {
            "layout": file.layout,
            "encoding": file.info.encoding,
            "events": count,
            "decode_events_per_s": round(count / decode),
            "convert_events_per_s": round(count / best_seconds(convert, args.repeat)),
        }
        for name, run in alternatives(path, file).items():
            row[f"{name}_events_per_s"] = round(count / best_seconds(run, args.repeat))
        results[path.name] = row
    print(json.dumps({"compression": args.compression, "files": results}, indent=2))


if __name__ == "__main__":
    main()
