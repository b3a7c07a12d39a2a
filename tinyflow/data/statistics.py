"""Statistics of a dataset's ground truth, for the baselines that evaluations report beside a model."""

from __future__ import annotations

import math

import numpy as np

from tinyflow.data.dataset import WindowDataset
from tinyflow.data.targets import DepthTarget


def mean_depth_m(dataset: WindowDataset) -> float:
    """The mean depth in metres over every valid pixel (finite, > 0) of the depth maps that the dataset's
    windows carry, each window's map once, whole (before crops and augmentation); NaN without any.

    ``ValueError`` when the dataset declares no depth target.
    """
    targets = [target for target in dataset.targets if isinstance(target, DepthTarget)]
    if not targets:
        raise ValueError(f"mean_depth_m: the dataset's targets {dataset.target_names} hold no depth target")
    total, count = 0.0, 0
    for recording, windows in zip(dataset.recordings, dataset.windows, strict=True):
        for window in windows:
            depth = targets[0].load(recording, window)
            if depth is None:
                continue
            valid = np.isfinite(depth) & (depth > 0)
            total += float(depth[valid].sum(dtype=np.float64))
            count += int(valid.sum())
    return total / count if count else math.nan
