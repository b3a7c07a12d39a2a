"""Arrays of a ``.npz`` archive opened without reading them whole (memory-mapped when stored uncompressed)."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header (30 bytes)


def open_npz_array(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of ``path``: a read-only memory map for ``np.savez`` archives, else loaded whole."""
    member = f"{key}.npy"
    with zipfile.ZipFile(path) as archive:
        if member not in archive.namelist():
            keys = sorted(name.removesuffix(".npy") for name in archive.namelist())
            raise EventDataError(f"{path}: missing key '{key}'; keys found: {keys}")
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return np.load(path)[key]
    with path.open("rb") as file:
        file.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(file.read(_LOCAL_HEADER.size))
        file.seek(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])
        major, _ = np.lib.format.read_magic(file)
        read_header = (
            np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read_header(file)
        offset = file.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
