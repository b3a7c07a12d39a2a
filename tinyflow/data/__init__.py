"""Datasets of windows, the sequential batch sampler and the Lightning DataModules."""

from tinyflow.data.datamodule import EventDataModule, H5DirDataModule, SyntheticDataModule
from tinyflow.data.dataset import SequenceCollate, WindowDataset, Windowing
from tinyflow.data.files import FilesDataModule
from tinyflow.data.real import DatasetDataModule
from tinyflow.data.sampler import SequentialBatchSampler, WindowKey
from tinyflow.data.targets import TARGETS, DepthTarget, EpisodeView, FlowTarget, WindowTarget, build_targets

__all__ = [
    "TARGETS",
    "DatasetDataModule",
    "DepthTarget",
    "EpisodeView",
    "EventDataModule",
    "FilesDataModule",
    "FlowTarget",
    "H5DirDataModule",
    "SequenceCollate",
    "SequentialBatchSampler",
    "SyntheticDataModule",
    "WindowDataset",
    "WindowKey",
    "WindowTarget",
    "Windowing",
    "build_targets",
]
