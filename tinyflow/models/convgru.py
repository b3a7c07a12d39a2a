"""TinyCMax's ConvGRU flow network (Paredes-Vallés et al., ICCV 2023 code base; after IDNet, Wu et al.
ICRA 2024): tinycmax/network.py ``FlowNetwork``, tinycmax/blocks.py, config/network/flow.yaml.

With C = ``base_num_channels`` (TinyCMax's ``encoder_channels``, 64), M = ``memory_channels`` (64),
D = ``decoder_channels`` (64), every conv with a bias and ``padding_mode="reflect"``::

    head     7x7, stride 2, num_bins -> C/4, ReLU                    (conv_encoder's head)
    res1     residual block, stride 2, C/4 -> C/2                     (res_block: relu(conv3x3(relu(
    res2     residual block, stride 2, C/2 -> C                        conv3x3 s2 (x))) + conv3x3 s2 (x)))
    memory   ConvGRU, 3x3, C -> M (torch.nn.GRU's gate layout)       (LazyConvGru)
    decoder  3x3, M -> D, ReLU                                       (upsample_decoder)
    head     3x3, D -> 2, linear, 8x bilinear upsampling, times ``flow_scaling`` (TinyCMax: ``scaling`` 32)

The body works at 1/8 of the input resolution; the flow is predicted there and upsampled, its values
unchanged (pixels of the full resolution, as TinyCMax's loss reads them). The input's height and width
must be multiples of 8 (TinyCMax pads to a multiple of 8 instead): else a ``ValueError`` names both.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from tinyflow.models.blocks import ConvReLU, ResidualBlock, TorchStyleConvGRU
from tinyflow.models.body import LayerSpec, RecurrentBody
from tinyflow.models.firenet import reject_neuron
from tinyflow.models.heads import FlowHead
from tinyflow.models.network import RecurrentNetwork

HEAD_KERNEL_SIZE = 7
KERNEL_SIZE = 3
UPSAMPLE = 8  # three stride-2 layers


class ConvGRUFlowNet(RecurrentNetwork):
    """TinyCMax's flow network (the module docstring); 353,682 parameters at TinyCMax's defaults.

    Args:
        num_bins: input channels (TinyCMax: 2, per-polarity counts).
        base_num_channels: C, the encoder's output channels (TinyCMax's ``encoder_channels``: 64);
            a multiple of 4.
        memory_channels: M, the ConvGRU's hidden channels; None = C (TinyCMax: 64).
        decoder_channels: D, the decoder conv's channels; None = C (TinyCMax: 64).
        flow_scaling: the linear flow output's scale, in pixels per window (TinyCMax: 32).
        prediction_bias: the prediction conv has a bias (TinyCMax's ``final_bias``: True).
        prediction_init_scale: if set, the prediction conv's weights start uniform in
            ``+-prediction_init_scale`` (bias zero); None = PyTorch's default (TinyCMax).
        padding_mode: of every conv (TinyCMax: ``"reflect"``).
        mask_output: zero the flow where the input has no event.
        neuron, neuron_kwargs: an ANN: anything but None is a ``ValueError`` naming the model and neuron.
    """

    def __init__(
        self,
        *,
        num_bins: int = 2,
        base_num_channels: int = 64,
        memory_channels: int | None = None,
        decoder_channels: int | None = None,
        flow_scaling: float = 32.0,
        prediction_bias: bool = True,
        prediction_init_scale: float | None = None,
        padding_mode: str = "reflect",
        mask_output: bool = False,
        neuron: str | None = None,
        neuron_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        name = type(self).__name__
        reject_neuron(name, neuron, neuron_kwargs)
        if not isinstance(base_num_channels, int) or base_num_channels < 4 or base_num_channels % 4:
            raise ValueError(
                f"{name}: base_num_channels={base_num_channels!r}: expected a multiple of 4 (the head has "
                f"base_num_channels / 4 channels, the first residual block base_num_channels / 2)"
            )
        channels = base_num_channels
        memory = channels if memory_channels is None else memory_channels
        decoder = channels if decoder_channels is None else decoder_channels
        conv = partial(ConvReLU, kernel_size=KERNEL_SIZE, padding_mode=padding_mode)
        residual = partial(ResidualBlock, kernel_size=KERNEL_SIZE, padding_mode=padding_mode)
        body = RecurrentBody(
            num_bins,
            [
                LayerSpec(
                    "head",
                    channels // 4,
                    partial(ConvReLU, kernel_size=HEAD_KERNEL_SIZE, padding_mode=padding_mode),
                    stride=2,
                ),
                LayerSpec("res1", channels // 2, residual, stride=2),
                LayerSpec("res2", channels, residual, stride=2),
                LayerSpec(
                    "memory",
                    memory,
                    partial(TorchStyleConvGRU, kernel_size=KERNEL_SIZE, padding_mode=padding_mode),
                ),
                LayerSpec("decoder", decoder, conv),
            ],
        )
        head = FlowHead(
            decoder,
            flow_scaling=flow_scaling,
            prediction_init_scale=prediction_init_scale,
            prediction_bias=prediction_bias,
            kernel_size=KERNEL_SIZE,
            activation=None,
            upsample=UPSAMPLE,
            upsample_mode="bilinear",
            padding_mode=padding_mode,
        )
        super().__init__(body=body, head=head, mask_output=mask_output)


__all__ = ["ConvGRUFlowNet"]
