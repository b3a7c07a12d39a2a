"""Convert a dataset from its original layout, or camera files, to canonical HDF5 files.

    python scripts/convert.py <dataset> SRC DST [--recordings NAME ...] [--compression gzip]
    python scripts/convert.py files SRC DST [--streams frames imu triggers] [--sensor-size H W] [--topic T]

Datasets: ecd, uzh_fpv, mvsec, hqf, dsec (DST/<recording>.h5 for every recording found in SRC, or the
ones named). ``files``: SRC is a camera file (Prophesee .raw, .aedat4, ROS 1 .bag, ROS 2 bag folder) or a
folder searched for them; DST/<file name>.h5 each, streamed in bounded memory with a progress bar
(needs ``pip install 'tinyflow[formats]'``). Each file appears only when complete; a second run skips the
recordings already converted and refuses a target that is not a complete conversion of the same
source (nothing is overwritten). SRC is only read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from tinyflow.app.errors import user_errors_as_messages
from tinyflow.io.convert import convert_camera_files, convert_dataset
from tinyflow.io.datasets import DATASETS
from tinyflow.io.stream import SIDE_STREAMS, CameraFile

FILES = "files"


@contextmanager
def progress_bars() -> Iterator[Callable[[CameraFile], Callable[[float, int], None]]]:
    """A rich progress display; yields file -> callback ``(fraction read, events so far)`` of one bar."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as bars:

        def bar(file: CameraFile) -> Callable[[float, int], None]:
            task = bars.add_task(file.path.name, total=1.0, events=0)
            return lambda fraction, events: bars.update(task, completed=fraction, events=events)

        yield bar


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dataset", choices=[*sorted(DATASETS), FILES], help=f"a dataset, or '{FILES}' for camera files"
    )
    parser.add_argument(
        "src", type=Path, help="the dataset's folder in its original layout, or a camera file / folder"
    )
    parser.add_argument("dst", type=Path, help="output folder of canonical files")
    parser.add_argument(
        "--recordings", nargs="+", help="datasets: recordings to convert (default: all found in SRC)"
    )
    parser.add_argument("--compression", default="gzip", choices=["gzip", "lzf", "blosc", "zstd", "none"])
    parser.add_argument(
        "--streams", nargs="+", default=[], choices=SIDE_STREAMS, help="files: side streams to keep"
    )
    parser.add_argument(
        "--sensor-size", nargs=2, type=int, metavar=("H", "W"), help="files: RAW without a size"
    )
    parser.add_argument("--topic", help="files: the bags' event topic (default: their only one)")
    args = parser.parse_args(argv)
    compression = None if args.compression == "none" else args.compression
    if args.dataset != FILES:
        convert_dataset(args.dataset, args.src, args.dst, args.recordings, compression)
        return
    options = {"sensor_size": args.sensor_size, "topic": args.topic}
    with progress_bars() as bar:
        convert_camera_files(args.src, args.dst, args.streams, options, compression, progress=bar)


if __name__ == "__main__":
    with user_errors_as_messages():
        main()
