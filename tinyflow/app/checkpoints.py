"""Checkpoint files: atomic writes in the checkpoint's own folder, and loading that runs no pickled code.

:class:`AtomicCheckpointIO` is the Trainer's checkpoint plugin (``trainer.plugins`` in ``config/trainer``),
so every checkpoint goes through it: ModelCheckpoint's, ``trainer.save_checkpoint``'s, and the files that
``fit``/``validate`` load (``ckpt_path``).

Writing: the checkpoint goes to ``.<name>.<pid>.tmp`` next to its target, is flushed and fsynced, renamed
onto the target (``os.replace``: atomic within a filesystem) and the folder is fsynced. A reader sees the
previous file or the new one, never a partial one, and nothing is written to ``$TMPDIR`` (Lightning's own
plugin writes there first, then copies across filesystems: a kill leaves a truncated target). A writer
killed mid-write leaves its temporary behind; the next save into that folder removes it.

Loading: always ``torch.load(weights_only=True)`` (tensors and plain containers only), whatever the
caller asks for; a file holding anything else raises :class:`CheckpointError`, naming the file and why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from hydra.utils import instantiate
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _load as pl_load
from lightning.fabric.utilities.types import _PATH
from omegaconf import DictConfig

# .<target name>.<writer pid>.tmp: the temporaries of this plugin, and only those, are ever removed.
TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp")
# This process wrote no temporary before this module was imported: an older one is another process's.
_STARTED = time.time()
_PLAIN = "tinyflow checkpoints hold only tensors and plain containers"


class CheckpointError(ValueError):
    """A checkpoint file that tinyflow refuses to load (it holds pickled code) or cannot read (truncated)."""


def temporary_path(path: Path, pid: int | None = None) -> Path:
    """Where ``path`` is written before it is renamed onto itself: ``.<name>.<pid>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid() if pid is None else pid}.tmp")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on Windows, unknown: assumed alive)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove this plugin's temporaries in ``folder`` left by killed writers: those whose writer pid is not
    alive, or that are older than this process (a reused pid). Returns the removed files."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = TEMPORARY.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            try:
                modified = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:  # renamed meanwhile by its (live) writer
                continue
            if _alive(int(match["pid"])) and modified >= _STARTED:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make a rename or removal in ``folder`` durable (where the filesystem can sync a directory)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def atomic_save(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary in ``path``'s folder, fsync, rename onto ``path``, fsync the folder;
    stale temporaries of killed writers in that folder are removed first."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def _unsafe_globals(path: _PATH, error: Exception) -> list[str]:
    """The globals (classes, functions) that made a weights-only load of ``path`` fail."""
    with contextlib.suppress(Exception):
        if names := torch.serialization.get_unsafe_globals_in_checkpoint(str(path)):
            return sorted(names)
    return re.findall(r"GLOBAL (\S+)", str(error))[:1]


def load_checkpoint_file(path: _PATH, map_location: Any = None) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` (local, fsspec or http), with a :class:`CheckpointError`
    naming the file for one that holds pickled objects or is truncated."""
    try:
        return pl_load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        names = _unsafe_globals(path, error)
        if names:
            what = (
                f"a pickled object ({names[0]})"
                if len(names) == 1
                else f"pickled objects ({', '.join(names)})"
            )
            reason = f"it holds {what} that could run code"
        else:
            detail = str(error).split("Check the documentation")[0].strip().splitlines()[-1].strip()
            reason = f"weights-only unpickling rejects it ({detail})"
        raise CheckpointError(f"{path}: refusing to load: {reason}; {_PLAIN}") from error
    except RuntimeError as error:
        if "PytorchStreamReader" not in str(error):
            raise
        raise CheckpointError(
            f"{path}: cannot read it: the file is truncated or not a torch checkpoint ({error})"
        ) from error


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint plugin, writing atomically in the destination folder (never in
    ``$TMPDIR``) and always loading with ``weights_only=True`` (see the module's description).

    Remote (fsspec) destinations are written as Lightning writes them.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (:func:`atomic_save`)."""
        fs, local = url_to_fs(str(path))
        if not isinstance(fs, LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__}.save_checkpoint takes no storage_options")
        atomic_save(checkpoint, Path(local))

    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Callable | Any = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """The checkpoint at ``path``, loaded with ``weights_only=True`` whatever ``weights_only`` says.

        Raises:
            FileNotFoundError: no file at ``path``.
            CheckpointError: the file holds pickled objects beyond tensors and plain containers, or is
                truncated.
        """
        fs, local = url_to_fs(str(path))
        if not fs.exists(local):
            raise FileNotFoundError(f"Checkpoint file not found: {path}")
        return load_checkpoint_file(path, map_location)

    def remove_checkpoint(self, path: _PATH) -> None:
        """Remove the checkpoint file (or folder) at ``path``."""
        fs, local = url_to_fs(str(path))
        if not isinstance(fs, LocalFileSystem):
            super().remove_checkpoint(path)
            return
        target = Path(local)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        if target.parent.is_dir():
            _fsync_folder(target.parent)


def trainer_plugins(trainer_cfg: DictConfig) -> list[Any]:
    """The Trainer plugins of a ``trainer`` config, instantiated, with an :class:`AtomicCheckpointIO` added
    when they hold no checkpoint plugin (e.g. the config of a run saved before ``plugins`` existed)."""
    plugins = [instantiate(p) for p in trainer_cfg.get("plugins") or [] if p is not None]
    if not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return plugins
