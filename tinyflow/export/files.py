"""Export folders that appear whole or not at all, and the hashes that tie an export to its source."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch import nn

from tinyflow.export.errors import ExportError

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(network: nn.Module) -> str:
    """Hex SHA-256 of a network's state dict: each entry's name, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, flushed to disk (inside a folder that :func:`export_folder` publishes)."""
    with open(path, "w") as file:
        json.dump(data, file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def export_folder(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``target`` to write an export into; renamed onto ``target`` when the block
    ends without error, removed when it raises.

    A reader sees no export or a complete one. An existing ``target`` is an :class:`ExportError` (raised
    before anything is written) unless ``overwrite``; then it is replaced only once the new export is complete.
    Temporaries that killed writers left beside ``target`` are removed first.
    """
    if target.exists() and not overwrite:
        raise ExportError(
            f"{target}: an export is already there; pass overwrite=true to replace it (or move it away)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.(tmp|old)")
    for entry in target.parent.iterdir():
        match = stale.fullmatch(entry.name)
        if match and not _pid_alive(int(match[1])):
            shutil.rmtree(entry, ignore_errors=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        os.rename(target, old)
    try:
        os.rename(temporary, target)
    except BaseException:
        if old.exists():
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


__all__ = ["export_folder", "sha256_file", "weights_sha256", "write_json"]
