"""Convert a dataset from its original layout to canonical HDF5 files.

    python scripts/convert.py <dataset> SRC DST [--recordings NAME ...] [--compression gzip]

Writes DST/<recording>.h5 for every recording found in SRC (or the ones named). Each file appears
only when complete; a second run skips the recordings already converted and refuses a target that
is not a complete conversion. SRC is only read. Datasets: ecd, uzh_fpv, mvsec, hqf, dsec.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyflow.io.convert import convert_dataset
from tinyflow.io.datasets import DATASETS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=sorted(DATASETS))
    parser.add_argument("src", type=Path, help="folder of the dataset in its original layout")
    parser.add_argument("dst", type=Path, help="output folder of canonical files")
    parser.add_argument("--recordings", nargs="+", help="recordings to convert (default: all found in SRC)")
    parser.add_argument("--compression", default="gzip", choices=["gzip", "lzf", "blosc", "zstd", "none"])
    args = parser.parse_args(argv)
    compression = None if args.compression == "none" else args.compression
    convert_dataset(args.dataset, args.src, args.dst, args.recordings, compression)


if __name__ == "__main__":
    main()
