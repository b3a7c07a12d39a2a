"""Prediction heads: what a network predicts from its body's last features.

A head maps ``features [B, in_channels, h, w]`` to one prediction tensor ``[B, C_out, h * upsample,
w * upsample]`` and names it with ``output_key``; :class:`~tinyflow.models.network.RecurrentNetwork`
stores it as ``out[output_key]``: :class:`FlowHead` (``"flow"``, ``[B, 2, H, W]``) and :class:`DepthHead`
(``"depth"``, ``[B, 1, H, W]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyflow.models.blocks import check_padding_mode


class PredictionHead(nn.Module, ABC):
    """Stateless map from the body's features to one prediction; subclasses set ``output_key``.

    Args:
        in_channels: channels of the body's last features.
        upsample: the prediction has ``upsample`` times the features' resolution (the network checks
            that this is the input resolution).
    """

    output_key: ClassVar[str]

    def __init__(self, in_channels: int, upsample: int = 1) -> None:
        super().__init__()
        if not isinstance(upsample, int) or upsample < 1:
            raise ValueError(f"{type(self).__name__}: upsample={upsample!r}: expected an integer >= 1")
        self.in_channels = in_channels
        self.upsample = upsample

    @abstractmethod
    def forward(self, features: Tensor) -> Tensor:
        """The prediction ``[B, C_out, h * upsample, w * upsample]`` for features ``[B, in_channels, h, w]``."""


class FlowHead(PredictionHead):
    """``flow = flow_scaling * up(tanh(conv1x1(h)))`` [B, 2, H, W]: (x, y) displacement in pixels over the window.

    The defaults are event_flow's prediction layer (a 1x1 conv, tanh, no upsampling); TinyCMax's
    ``upsample_decoder`` ends in a 3x3 conv without activation, upsampled 8x bilinearly
    (``kernel_size=3, activation=None, upsample=8``). Upsampling interpolates the flow without
    rescaling its values: ``flow_scaling`` is in pixels of the output (input) resolution.

    Args:
        in_channels: channels of the body's last features.
        flow_scaling: pixels of displacement at ``tanh = 1`` (or per unit of the linear output).
        prediction_init_scale: if set, the conv's weights start uniform in ``+-prediction_init_scale`` and
            its bias at zero (event_flow: 0.01 for its spiking and feed-forward nets); None = PyTorch's
            default init (``+-1/sqrt(in_channels)``).
        prediction_bias: give the conv a bias. Without one the flow can only come from the features: a
            bias lets a network lower the CMax loss with one flow for the whole batch and ignore its input.
        kernel_size: of the conv (event_flow: 1; TinyCMax: 3).
        activation: ``"tanh"`` (event_flow) or None (linear, TinyCMax).
        upsample: upsampling factor of the flow (TinyCMax: 8), by ``upsample_mode``.
        upsample_mode: ``"bilinear"`` (TinyCMax) or ``"nearest"``.
        padding_mode: of the conv (TinyCMax: ``"reflect"``).
    """

    output_key = "flow"

    def __init__(
        self,
        in_channels: int,
        *,
        flow_scaling: float,
        prediction_init_scale: float | None = None,
        prediction_bias: bool = True,
        kernel_size: int = 1,
        activation: Literal["tanh"] | None = "tanh",
        upsample: int = 1,
        upsample_mode: Literal["bilinear", "nearest"] = "bilinear",
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__(in_channels, upsample)
        if not flow_scaling > 0:
            raise ValueError(f"flow_scaling={flow_scaling!r}: expected a positive number of pixels")
        if activation not in ("tanh", None):
            raise ValueError(f"FlowHead: activation={activation!r}: expected 'tanh' or None (linear)")
        if upsample_mode not in ("bilinear", "nearest"):
            raise ValueError(f"FlowHead: upsample_mode={upsample_mode!r}: expected 'bilinear' or 'nearest'")
        check_padding_mode("FlowHead", padding_mode)
        self.conv = nn.Conv2d(
            in_channels,
            2,
            kernel_size=kernel_size,
            padding=kernel_size // 2,
            bias=prediction_bias,
            padding_mode=padding_mode,
        )
        self.flow_scaling = float(flow_scaling)
        self.activation = activation
        self.upsample_mode = upsample_mode
        if prediction_init_scale is not None:
            nn.init.uniform_(self.conv.weight, -prediction_init_scale, prediction_init_scale)
            if prediction_bias:
                nn.init.zeros_(self.conv.bias)

    def forward(self, features: Tensor) -> Tensor:
        flow = self.conv(features)
        if self.activation == "tanh":
            flow = torch.tanh(flow)
        if self.upsample != 1:
            align = False if self.upsample_mode == "bilinear" else None
            flow = F.interpolate(
                flow, scale_factor=self.upsample, mode=self.upsample_mode, align_corners=align
            )
        return self.flow_scaling * flow


class DepthHead(PredictionHead):
    """``depth = conv(h)`` [B, 1, H, W]: a k x k conv with a bias, no activation, at the features' resolution.

    StereoSpike's ``predict_depth1``: the current that its readout neurons integrate (neurons with an
    infinite threshold: they never fire, their potential is the prediction). With coarser scales
    (:class:`~tinyflow.models.network.MultiScaleDepthNetwork`) the readout adds theirs to it. The values are
    depth in the representation the loss trains (metres, or normalised log depth; see
    :mod:`tinyflow.tasks.depth_loss`).

    Args:
        in_channels: channels of the body's last features.
        kernel_size: of the conv (StereoSpike: 3).
        bias: the conv has a bias (StereoSpike: yes; the biases of all scales together are the readout
            neurons' learnable rest potential of the paper).
    """

    output_key = "depth"

    def __init__(self, in_channels: int, *, kernel_size: int = 3, bias: bool = True) -> None:
        super().__init__(in_channels)
        self.conv = nn.Conv2d(in_channels, 1, kernel_size, padding=kernel_size // 2, bias=bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.conv(features)


__all__ = ["DepthHead", "FlowHead", "PredictionHead"]
