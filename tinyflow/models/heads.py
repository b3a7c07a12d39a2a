"""Prediction heads: what a network predicts from its body's last features.

A head maps ``features [B, in_channels, h, w]`` to one prediction tensor ``[B, C_out, h * upsample,
w * upsample]`` and names it with ``output_key``; :class:`~tinyflow.models.network.RecurrentNetwork`
stores it as ``out[output_key]``: :class:`FlowHead` (``"flow"``, ``[B, 2, H, W]``) and :class:`DepthHead`
(``"depth"``, ``[B, 1, H, W]``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyflow.models.blocks import check_padding_mode


def gaussian_kernel(sigma_px: float) -> Tensor:
    """The 1-D Gaussian of standard deviation ``sigma_px`` pixels, cut at 3 sigma, summing to 1 [2 r + 1]."""
    radius = max(1, math.ceil(3.0 * sigma_px))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / sigma_px) ** 2)
    return kernel / kernel.sum()


def _separable(x: Tensor, kernel: Tensor) -> Tensor:
    """``x`` [B, C, H, W] convolved channel by channel with ``kernel`` [2 r + 1] along y, then x (zero padding)."""
    channels, radius = x.shape[1], kernel.numel() // 2
    kernel = kernel.to(x.dtype)
    ky = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    kx = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(
        F.conv2d(x, ky, padding=(radius, 0), groups=channels), kx, padding=(0, radius), groups=channels
    )


def blur_weight(kernel: Tensor, height: int, width: int) -> Tensor:
    """The weight of the separable ``kernel`` that lies inside a ``height x width`` image at each pixel [H, W]."""
    return _separable(torch.ones(1, 1, height, width, dtype=kernel.dtype, device=kernel.device), kernel)[0, 0]


def gaussian_blur(x: Tensor, kernel: Tensor) -> Tensor:
    """``x`` [B, C, H, W] blurred channel by channel with the separable ``kernel`` [2 r + 1] along y then x,
    each output divided by :func:`blur_weight` (zero padding, renormalised): a constant map is unchanged,
    borders included."""
    return _separable(x, kernel) / blur_weight(kernel.to(x.dtype), *x.shape[-2:])


class GaussianSmoothing(nn.Module):
    """A fixed, renormalised Gaussian blur (:func:`gaussian_blur`) of standard deviation ``sigma_px`` pixels;
    its kernel is a buffer left out of the state dict (nothing to learn or to load)."""

    def __init__(self, sigma_px: float) -> None:
        super().__init__()
        if not sigma_px > 0:
            raise ValueError(f"smoothing_px={sigma_px!r}: expected a positive standard deviation in pixels")
        self.sigma_px = float(sigma_px)
        self.register_buffer("kernel", gaussian_kernel(self.sigma_px), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return gaussian_blur(x, self.kernel)

    def macs(self, channels: int, height: int, width: int) -> int:
        """Multiply-accumulates of one blur of a ``[channels, height, width]`` map: the taps inside the image
        of both passes, plus one multiply per value by the precomputed reciprocal of :func:`blur_weight`."""
        radius = self.kernel.numel() // 2

        def taps(size: int) -> int:  # in-image taps of a 1-D pass, summed over the positions
            return sum(min(i + radius, size - 1) - max(i - radius, 0) + 1 for i in range(size))

        return channels * (taps(height) * width + taps(width) * height + height * width)


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
        smoothing_px: if set, the conv's output is blurred by a fixed Gaussian of this standard deviation
            in pixels of the features (before tanh), normalised over the weights that fall inside the
            image so that a constant map stays constant up to the borders: the flow cannot vary from
            pixel to pixel faster than the kernel allows (:class:`GaussianSmoothing`). None: no blur.
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
        smoothing_px: float | None = None,
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
        self.smoothing = None if smoothing_px is None else GaussianSmoothing(smoothing_px)
        if prediction_init_scale is not None:
            nn.init.uniform_(self.conv.weight, -prediction_init_scale, prediction_init_scale)
            if prediction_bias:
                nn.init.zeros_(self.conv.bias)

    def forward(self, features: Tensor) -> Tensor:
        flow = self.conv(features)
        if self.smoothing is not None:
            flow = self.smoothing(flow)
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


__all__ = [
    "DepthHead",
    "FlowHead",
    "GaussianSmoothing",
    "PredictionHead",
    "blur_weight",
    "gaussian_blur",
    "gaussian_kernel",
]
