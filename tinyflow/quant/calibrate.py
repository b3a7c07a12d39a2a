"""Calibration: the activation scales of a quantised network from its float activations on training windows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from brevitas.graph.calibrate import calibration_mode
from torch import Tensor

from tinyflow.models.stateful import StatefulNetwork


def calibrate(network: StatefulNetwork, batches: Iterable[Mapping[str, Tensor]]) -> int:
    """Set every activation quantiser's scale from the float activations seen on ``batches``.

    ``batches`` are time-major training batches (``input [T, B, C, H, W]``, ``end_of_recording [T, B]``);
    each window runs forward with the state carried as in training (reset for the streams whose recording
    ended with a batch), in brevitas' calibration mode: quantisation off, each quantiser averaging the
    statistic it is initialised from (the percentile of ``|x|``). On leaving, the averages become the
    scales, and the network's state is reset.

    Returns:
        The number of windows seen.

    Raises:
        ValueError: ``batches`` is empty.
    """
    windows = 0
    network.reset_state()
    with torch.no_grad(), calibration_mode(network):
        for batch in batches:
            for t in range(batch["input"].shape[0]):
                network(batch["input"][t])
                windows += 1
            network.reset_state(batch["end_of_recording"][-1])
    network.reset_state()
    if windows == 0:
        raise ValueError("calibration: no training batch to calibrate on")
    return windows
