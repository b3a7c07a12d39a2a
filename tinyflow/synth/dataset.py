"""Synthetic datasets on disk: canonical HDF5 recordings, cached by a hash of their config."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from tinyflow.io.canonical import write_canonical
from tinyflow.synth.config import StereoConfig, SynthConfig
from tinyflow.synth.generate import generate_recording

GENERATOR_VERSION = 1
MANIFEST_NAME = "manifest.json"
# SynthConfig fields added after datasets were first cached: left out of a dataset's spec while at their
# defaults (which generate what the generator did before they existed), so those datasets keep their key.
LATER_FIELDS = ("texture", "rotation_min_deg_s", "forward_rate_range_per_s")

log = logging.getLogger(__name__)


def recording_seed(seed: int, split: str, index: int) -> int:
    """Seed of recording ``index`` of ``split``: independent of the number of recordings asked for."""
    entropy = [seed, index, zlib.crc32(split.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint32)[0])


def recording_path(root: str | Path, split: str, index: int) -> Path:
    """``root/<split>/<split>_<index:03d>.h5``."""
    if not split or "/" in split or "\\" in split or split.startswith("."):
        raise ValueError(f"split name must be a plain folder name, got {split!r}")
    return Path(root) / split / f"{split}_{index:03d}.h5"


def write_synthetic_dataset(
    root: str | Path,
    config: SynthConfig,
    num_recordings: int,
    split: str,
    seed: int,
    *,
    skip_existing: bool = False,
    stereo: StereoConfig | None = None,
) -> list[Path]:
    """Generate ``num_recordings`` recordings and write them as canonical files under ``root/<split>/``.

    Recording i uses ``config`` with its seed replaced by :func:`recording_seed` ``(seed, split, i)``.
    Each file is written atomically (temporary name, then rename), so a file that exists is complete.

    Args:
        skip_existing: keep files that already exist instead of regenerating them.
        stereo: also render a right camera (stereo files: ``/right/events``, ``/disparity``, ``/calib``).
    Returns:
        The paths of all ``num_recordings`` files, in index order.
    """
    if num_recordings < 0:
        raise ValueError(f"num_recordings must be >= 0, got {num_recordings}")
    paths = [recording_path(root, split, index) for index in range(num_recordings)]
    for index, path in enumerate(paths):
        if skip_existing and path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        recording_config = replace(config, seed=recording_seed(seed, split, index))
        recording = generate_recording(recording_config, stereo=stereo)
        write_canonical(
            path,
            recording.events,
            recording.sensor_size,
            source=f"tinyflow.synth v{GENERATOR_VERSION} seed={recording_config.seed}",
            flows=recording.flows,
            depth=recording.depth,
            frames=recording.frames,
            calib=None if stereo is None else stereo.calib(),
            right_events=recording.right_events,
            disparity=recording.disparity,
            overwrite=True,
        )
        log.info("wrote %s: %d events in %.1f s", path, len(recording.events), time.perf_counter() - start)
    return paths


def dataset_spec(config: SynthConfig, seed: int, stereo: StereoConfig | None = None) -> dict[str, object]:
    """Everything that defines a dataset: the config (its own seed is unused; :data:`LATER_FIELDS` only
    where they differ from their defaults), the seed, the generator version, and the stereo camera when
    there is one."""
    fields = asdict(replace(config, seed=0))
    defaults = asdict(SynthConfig())
    for name in LATER_FIELDS:
        if fields[name] == defaults[name]:
            del fields[name]
    spec = {"config": fields, "seed": seed, "generator_version": GENERATOR_VERSION}
    return spec if stereo is None else {**spec, "stereo": asdict(stereo)}


def dataset_key(config: SynthConfig, seed: int, stereo: StereoConfig | None = None) -> str:
    """Short hash (12 hex digits) of :func:`dataset_spec`."""
    spec = dataset_spec(config, seed, stereo)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def ensure_synthetic_dataset(
    root: str | Path,
    config: SynthConfig,
    splits: Mapping[str, int],
    seed: int,
    stereo: StereoConfig | None = None,
) -> dict[str, list[Path]]:
    """Make sure ``root/synthetic_<key>/<split>/`` holds the asked-for recordings; generate only what is missing.

    ``key`` = :func:`dataset_key`, so a changed config or seed lands in a new folder. The folder's
    ``manifest.json`` records the config. Files and manifest are written atomically, so an
    interrupted run leaves only complete files, and calling this again resumes it.

    Args:
        splits: number of recordings per split name, e.g. ``{"train": 10, "val": 2}``.
        stereo: a second camera (stereo recordings), or None.
    Returns:
        The paths of every split's recordings.
    """
    directory = Path(root) / f"synthetic_{dataset_key(config, seed, stereo)}"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / MANIFEST_NAME
    if not manifest.exists():
        _write_text_atomically(
            manifest, json.dumps(dataset_spec(config, seed, stereo), indent=2, sort_keys=True) + "\n"
        )
    missing = sum(
        not recording_path(directory, split, index).exists()
        for split, count in splits.items()
        for index in range(count)
    )
    if missing:
        print(f"generating the synthetic dataset ({missing} recordings) in {directory} ...", flush=True)
    return {
        split: write_synthetic_dataset(
            directory, config, count, split, seed, skip_existing=True, stereo=stereo
        )
        for split, count in splits.items()
    }


def _write_text_atomically(path: Path, text: str) -> None:
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
