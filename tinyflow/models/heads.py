"""Prediction heads: what a network predicts from its body's last features.

A head maps ``features [B, in_channels, H, W]`` to one prediction tensor and names it with
``output_key``; :class:`~tinyflow.models.network.RecurrentNetwork` stores it as ``out[output_key]``.
A depth head is another subclass of :class:`PredictionHead` (``output_key = "depth"``, ``[B, 1, H, W]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn


class PredictionHead(nn.Module, ABC):
    """Stateless map from the body's features to one prediction; subclasses set ``output_key``.

    Args:
        in_channels: channels of the body's last features.
    """

    output_key: ClassVar[str]

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels

    @abstractmethod
    def forward(self, features: Tensor) -> Tensor:
        """The prediction ``[B, C_out, H, W]`` for features ``[B, in_channels, H, W]``."""


class FlowHead(PredictionHead):
    """``flow = flow_scaling * tanh(conv1x1(h))`` [B, 2, H, W]: (x, y) displacement in pixels over the window.

    Args:
        in_channels: channels of the body's last features.
        flow_scaling: pixels of displacement at ``tanh = 1``.
        prediction_init_scale: if set, the conv's weights start uniform in ``+-prediction_init_scale`` and
            its bias at zero (event_flow: 0.01 for its spiking and feed-forward nets); None = PyTorch's
            default init (``+-1/sqrt(in_channels)``).
        prediction_bias: give the conv a bias. Without one the flow can only come from the features: a
            bias lets a network lower the CMax loss with one flow for the whole batch and ignore its input.
    """

    output_key = "flow"

    def __init__(
        self,
        in_channels: int,
        *,
        flow_scaling: float,
        prediction_init_scale: float | None = None,
        prediction_bias: bool = True,
    ) -> None:
        super().__init__(in_channels)
        if not flow_scaling > 0:
            raise ValueError(f"flow_scaling={flow_scaling!r}: expected a positive number of pixels")
        self.conv = nn.Conv2d(in_channels, 2, kernel_size=1, bias=prediction_bias)
        self.flow_scaling = float(flow_scaling)
        if prediction_init_scale is not None:
            nn.init.uniform_(self.conv.weight, -prediction_init_scale, prediction_init_scale)
            if prediction_bias:
                nn.init.zeros_(self.conv.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.flow_scaling * torch.tanh(self.conv(features))


__all__ = ["FlowHead", "PredictionHead"]
