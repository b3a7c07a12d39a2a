"""Download a dataset's original files from their official addresses, then convert them.

    python scripts/download.py <dataset> DST [--recordings NAME ...] [--list]
    python scripts/convert.py <dataset> DST DST/converted

Direct links are downloaded (to ``*.part``, renamed when complete; existing files are skipped) and
zip archives are extracted into DST. Datasets published as Google Drive / OneDrive folders are
printed as links to fetch by hand into DST. ``--list`` only prints what would be fetched.
"""

from __future__ import annotations

import argparse
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ECD = "https://rpg.ifi.uzh.ch/datasets/davis"  # https://rpg.ifi.uzh.ch/davis_data.html
UZH_FPV = "http://rpg.ifi.uzh.ch/datasets/uzh-fpv-newer-versions/v2"  # https://fpv.ifi.uzh.ch/
UZH_FPV_CALIB = "http://rpg.ifi.uzh.ch/datasets/uzh-fpv/calib"
MVSEC = "http://visiondata.cis.upenn.edu/mvsec"  # https://daniilidis-group.github.io/mvsec/
DSEC = "https://download.ifi.uzh.ch/rpg/DSEC"  # https://dsec.ifi.uzh.ch/

ECD_RECORDINGS = [
    "boxes_6dof", "calibration", "dynamic_6dof", "office_zigzag", "poster_6dof", "shapes_6dof", "slider_depth",
    "boxes_rotation", "dynamic_rotation", "poster_rotation", "shapes_rotation",
]  # fmt: skip
UZH_FPV_RECORDINGS = [f"indoor_forward_{k}" for k in (3, 5, 6, 7, 8, 9, 10, 11, 12)]
MVSEC_RECORDINGS = ["indoor_flying1", "indoor_flying2", "indoor_flying3", "outdoor_day1", "outdoor_day2"]

MANUAL = {
    "mvsec": [
        "HDF5 files <name>_data.hdf5, <name>_gt.hdf5: https://drive.google.com/open?id=1rwyRk26wtWeRgrAx_fgPc-ubUzTFThkV",
        "GT flow <name>_gt_flow_dist.npz: https://drive.google.com/drive/u/2/folders/1XS0AQTuCwUaWOmtjyJWRHkbXjj_igJLp",
        "event_flow's pre-converted files: https://1drv.ms/u/s!Ah0kx0CRKrAZjx-EEIzfo8iqBDro?e=TIoxG9",
    ],
    "hqf": [
        "HQF <name>.h5 (https://timostoff.github.io/20ecnn): "
        "https://drive.google.com/drive/folders/18Xdr6pxJX0ZXTrXW9tK0hC3ZpmKDIt6_",
    ],
}


def direct_links(dataset: str, recordings: list[str] | None) -> list[list[str]]:
    """Per file to fetch, its candidate addresses (the first that exists is used)."""
    if dataset == "ecd":
        return [[f"{ECD}/{name}.zip"] for name in recordings or ECD_RECORDINGS]
    if dataset == "uzh_fpv":
        names = recordings or UZH_FPV_RECORDINGS
        environments = sorted({name.rsplit("_", 1)[0] for name in names})
        return [[f"{UZH_FPV_CALIB}/{env}_calib_davis.zip"] for env in environments] + [
            [f"{UZH_FPV}/{name}_davis_with_gt.zip", f"{UZH_FPV}/{name}_davis.zip"] for name in names
        ]
    if dataset == "mvsec":
        return [[f"{MVSEC}/{scene}/{scene}_calib.zip"] for scene in ("indoor_flying", "outdoor_day")]
    if dataset == "dsec":
        return [
            [f"{DSEC}/train_coarse/train_events.zip"],
            [f"{DSEC}/train_coarse/train_optical_flow.zip"],
            [f"{DSEC}/train_coarse/train_calibration.zip"],
            [f"{DSEC}/test_coarse/test_events.zip"],
            [f"{DSEC}/test_forward_optical_flow_timestamps.zip"],
        ]
    return []


def fetch(candidates: list[str], dst: Path) -> Path:
    """Download the first reachable address into ``dst`` (kept if already there); returns the file."""
    for url in candidates:
        target = dst / url.rsplit("/", 1)[1]
        if target.is_file():
            return target
        try:
            response = urllib.request.urlopen(url)
        except urllib.error.HTTPError as error:
            if error.code == 404 and url != candidates[-1]:
                continue
            raise
        partial = target.with_name(target.name + ".part")
        with response, partial.open("wb") as file:
            shutil.copyfileobj(response, file, length=1 << 22)
        partial.rename(target)
        return target
    raise FileNotFoundError(f"none of {candidates} exists")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=["ecd", "uzh_fpv", "mvsec", "hqf", "dsec"])
    parser.add_argument("dst", type=Path)
    parser.add_argument(
        "--recordings", nargs="+", help="recordings to fetch (ECD, UZH-FPV; default: the standard ones)"
    )
    parser.add_argument("--list", action="store_true", help="print the addresses only")
    args = parser.parse_args(argv)
    links = direct_links(args.dataset, args.recordings)
    for line in MANUAL.get(args.dataset, []):
        print(f"fetch by hand into {args.dst}: {line}")
    for candidates in links:
        print(" or ".join(candidates))
        if args.list:
            continue
        args.dst.mkdir(parents=True, exist_ok=True)
        archive = fetch(candidates, args.dst)
        if archive.suffix == ".zip":
            folder = args.dst / archive.stem
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(folder if args.dataset in ("ecd", "uzh_fpv") else args.dst)


if __name__ == "__main__":
    main()
