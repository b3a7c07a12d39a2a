"""Lightning DataModules: a folder of HDF5 recordings, and the embedded synthetic event camera."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from tinyflow.data.dataset import HotPixelFilter, SequenceCollate, WindowDataset, Windowing, check_cameras
from tinyflow.data.sampler import SequentialBatchSampler
from tinyflow.data.targets import TargetsConfig, WindowTarget, build_targets
from tinyflow.events.transforms import FlowAugmentation
from tinyflow.io.recording import LEFT, Recording
from tinyflow.synth.config import StereoConfig, SynthConfig
from tinyflow.synth.dataset import ensure_synthetic_dataset

HDF5_SUFFIXES = (".h5", ".hdf5")


def find_recordings(folder: str | Path) -> list[Path]:
    """Every HDF5 file directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist or is not a directory")
    paths = sorted(p for p in folder.iterdir() if p.suffix in HDF5_SUFFIXES and p.is_file())
    if not paths:
        raise FileNotFoundError(f"data folder {folder} holds no HDF5 recordings (*.h5, *.hdf5)")
    return paths


class EmptyDataError(ValueError):
    """A split that would train or validate on nothing; the message says what to change."""


class ResumableLoader(DataLoader):
    """A DataLoader over a :class:`SequentialBatchSampler` whose position is part of a checkpoint.

    Lightning saves ``state_dict()`` with every checkpoint and hands it back to ``load_state_dict()`` on
    resume, so a resumed run sees exactly the batches an uninterrupted run would have seen from its step.
    The position is the epoch and the number of its batches the training loop has finished, read from
    ``batches_done`` (the trainer's count: batches prefetched by the loader or its workers do not count).
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.batch_sampler.epoch), "batches_done": int(self.batches_done())}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue after the saved position; a checkpoint of an epoch's last batch continues with the next
        epoch."""
        sampler, epoch, done = self.batch_sampler, int(state["epoch"]), int(state["batches_done"])
        sampler.set_epoch(epoch)
        if done >= len(sampler):
            sampler.resume_at(epoch + 1, 0)
        else:
            sampler.resume_at(epoch, done)


class EventDataModule(L.LightningDataModule, abc.ABC):
    """Sequences of windows for recurrent training (shuffled streams) and validation (one full pass).

    Args:
        batch_size: parallel streams B in training.
        seq_len: consecutive windows per stream in one training batch (the accumulation window).
        train_windowing / val_windowing: :class:`Windowing` fields; validation defaults to GT-aligned
            windows when the recordings hold GT flow.
        encoding, num_bins: network input (``counts`` or ``voxel``).
        augmentation: :class:`FlowAugmentation` fields for training, or None.
        crop_size: (height, width) random crop per training episode, or None.
        val_batch_size: parallel streams in validation (1 keeps per-recording order simple).
        targets: what each window carries besides its input (:func:`~tinyflow.data.targets.build_targets`):
            target names (``[flow, depth]``), ``_target_`` configs, or a mapping name -> options. Default:
            the ``flow`` target of each split's windowing (its ``flow_name``). A task checks the names it
            needs with :meth:`require_targets`.
        cameras: the cameras whose events form the input, ``[left]`` or ``[left, right]`` (a stereo pair:
            ``input`` is [len(cameras) * C, H, W], the left camera's C channels first; see
            :class:`~tinyflow.data.dataset.WindowDataset`).
    """

    def __init__(
        self,
        batch_size: int = 4,
        seq_len: int = 10,
        train_windowing: Mapping[str, Any] | None = None,
        val_windowing: Mapping[str, Any] | None = None,
        encoding: str = "counts",
        num_bins: int = 2,
        augmentation: Mapping[str, float] | None = None,
        crop_size: tuple[int, int] | None = None,
        hot_pixels: Mapping[str, float | None] | None = None,
        num_workers: int = 0,
        val_batch_size: int = 1,
        seed: int = 0,
        targets: TargetsConfig | None = None,
        cameras: Sequence[str] = (LEFT,),
    ) -> None:
        super().__init__()
        self.targets: tuple[WindowTarget, ...] = build_targets(targets)
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.train_windowing = Windowing(**(train_windowing or {}))
        self.val_windowing = Windowing(**(val_windowing or {"mode": "gt"}))
        self.encoding = encoding
        self.num_bins = num_bins
        self.augmentation = FlowAugmentation(**augmentation) if augmentation else None
        self.cameras = check_cameras(cameras, self.augmentation)
        self.crop_size = tuple(crop_size) if crop_size else None
        self.hot_pixels = HotPixelFilter(**hot_pixels) if hot_pixels else None
        self.num_workers = num_workers
        self.val_batch_size = val_batch_size
        self.seed = seed
        self.train_set: WindowDataset | None = None
        self.val_set: WindowDataset | None = None

    @property
    def target_names(self) -> list[str]:
        """Names of the targets every window carries (e.g. ``['flow']``)."""
        return [t.name for t in self.targets]

    def require_targets(self, names: Iterable[str]) -> None:
        """Raise a clear error unless the windows carry every target in ``names`` (a task's needs)."""
        missing = [name for name in names if name not in self.target_names]
        if missing:
            wanted = ",".join([*self.target_names, *missing])
            raise ValueError(
                f"the task needs target(s) {missing}, but the data config ({type(self).__name__}) declares "
                f"targets {self.target_names}; add them to the data config's targets, e.g. "
                f"data.targets=[{wanted}]"
            )

    @abc.abstractmethod
    def train_paths(self) -> list[Path | Recording]:
        """Recordings used for training (files, or recordings already open)."""

    @abc.abstractmethod
    def val_paths(self) -> list[Path | Recording]:
        """Recordings used for validation (files, or recordings already open)."""

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = WindowDataset(
                self.train_paths(),
                self.train_windowing,
                self.encoding,
                self.num_bins,
                self.augmentation,
                self.crop_size,
                self.hot_pixels,
                self.seed,
                self.targets,
                self.cameras,
            )
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = WindowDataset(
                self.val_paths(),
                self.val_windowing,
                self.encoding,
                self.num_bins,
                None,
                None,
                self.hot_pixels,
                targets=self.targets,
                cameras=self.cameras,
            )

    def check_not_empty(self, stage: str = "fit", world_size: int = 1) -> None:
        """Raise :class:`EmptyDataError` when training would take zero steps (``fit``) or validation has no
        window (``fit`` and ``validate``), naming the recordings and the settings to change."""
        self.setup(stage)
        if stage == "fit":
            counts = self.train_set.window_counts
            usable = sum(c > 0 for c in counts)
            if usable < self.batch_size * world_size:
                raise EmptyDataError(
                    f"data.batch_size={self.batch_size} parallel streams"
                    + (f" on each of {world_size} processes" if world_size > 1 else "")
                    + f" need as many training recordings with windows (each stream walks its own); found "
                    f"{usable} training recording{'s' * (usable != 1)} with windows "
                    f"({', '.join(self.train_set.recording_names)}): lower data.batch_size or add recordings"
                )
            sampler = SequentialBatchSampler(
                counts, self.batch_size, self.seq_len, True, self.seed, 0, world_size
            )
            if sampler.training_batches_per_epoch() == 0:
                raise EmptyDataError(
                    f"training would take 0 steps: {len(counts)} training recordings with {counts} windows "
                    f"({self.train_windowing.mode} windowing) give no batch of data.batch_size={self.batch_size} "
                    f"streams x data.seq_len={self.seq_len} consecutive windows"
                    + (f" on each of {world_size} processes" if world_size > 1 else "")
                    + "; lower data.seq_len or data.batch_size, use shorter windows, or add recordings"
                )
        if sum(self.val_set.window_counts) == 0:
            windowing = self.val_windowing
            missing = {"gt": f"GT flow '{windowing.flow_name}'", "depth": "depth maps"}.get(windowing.mode)
            hint = f"; they hold no {missing}: set data.val_windowing.without_gt=count" if missing else ""
            raise EmptyDataError(
                f"nothing to validate: the {len(self.val_set.recordings)} validation recordings "
                f"({', '.join(self.val_set.recording_names)}) give no window with {windowing.mode} windowing{hint}"
            )

    def _loader(self, dataset: WindowDataset, batch_size: int, seq_len: int, shuffle: bool) -> DataLoader:
        """Training shares the recordings between the ranks of a distributed run (the trainer's
        ``use_distributed_sampler`` must be off); validation is not shared: every rank validates every
        recording, so each holds the full results and nothing needs reducing."""
        distributed = shuffle and self.trainer is not None
        rank = self.trainer.global_rank if distributed else 0
        world = self.trainer.world_size if distributed else 1
        sampler = SequentialBatchSampler(
            dataset.window_counts, batch_size, seq_len, shuffle, self.seed, rank=rank, world_size=world
        )
        options = {"collate_fn": SequenceCollate(batch_size), "num_workers": self.num_workers}
        options["persistent_workers"] = self.num_workers > 0
        if not shuffle:
            return DataLoader(dataset, batch_sampler=sampler, **options)
        return ResumableLoader(dataset, batch_sampler=sampler, batches_done=self._batches_done, **options)

    def _batches_done(self) -> int:
        """Training batches of the current epoch that the trainer has finished."""
        return self.trainer.fit_loop.epoch_loop.batch_progress.current.processed if self.trainer else 0

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, self.seq_len, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, 1, shuffle=False)


class H5DirDataModule(EventDataModule):
    """Every supported HDF5 file in ``root``; ``root/train`` and ``root/val`` when both exist."""

    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)

    def _split(self, name: str) -> list[Path]:
        if (self.root / "train").is_dir() and (self.root / "val").is_dir():
            return find_recordings(self.root / name)
        return find_recordings(self.root)

    def train_paths(self) -> list[Path]:
        return self._split("train")

    def val_paths(self) -> list[Path]:
        return self._split("val")


class SyntheticDataModule(EventDataModule):
    """The embedded synthetic event camera: generated and cached under ``root`` on first use.

    Args:
        root: cache folder; the dataset lands in ``root/synthetic_<hash of config and seed>/``.
        synth: :class:`~tinyflow.synth.config.SynthConfig` fields (sensor size, duration, motion, ...).
        num_train, num_val: number of recordings per split (train/val split by recording).
        data_seed: seed of the generated dataset.
        stereo: :class:`~tinyflow.synth.config.StereoConfig` fields of a second (right) camera, or None
            (mono recordings).
    """

    def __init__(
        self,
        root: str | Path,
        synth: Mapping[str, Any] | None = None,
        num_train: int = 8,
        num_val: int = 2,
        data_seed: int = 0,
        stereo: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(synth or {}).items()}
        self.synth_config = SynthConfig(**fields)
        self.stereo = None if stereo is None else StereoConfig(**stereo)
        self.splits = {"train": num_train, "val": num_val}
        self.data_seed = data_seed

    def _paths(self) -> dict[str, list[Path]]:
        return ensure_synthetic_dataset(
            self.root, self.synth_config, self.splits, self.data_seed, self.stereo
        )

    def prepare_data(self) -> None:
        self._paths()

    def train_paths(self) -> list[Path]:
        return self._paths()["train"]

    def val_paths(self) -> list[Path]:
        return self._paths()["val"]
