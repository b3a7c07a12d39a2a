"""A built float network becomes its quantised twin: one converter per layer type, weights copied.

- ``nn.Conv2d`` -> brevitas ``QuantConv2d`` with the same geometry and the weights and bias copied: INT8
  weights (per tensor or per channel), its input quantised to INT8 (the network's input, spikes, ReLU
  outputs, GRU states: every real-valued tensor that meets a weight), INT32 bias.
- the spiking layers (:class:`~tinyflow.models.neurons.base.SpikingConv` and
  :class:`~tinyflow.models.neurons.snntorch_lif.SnnTorchConvLIF`), where a membrane grid is asked for:
  their membrane potential is fake-quantised before it fires and is stored (``membrane_quant``;
  snntorch's own ``state_quant`` hook).

Everything else (neuron dynamics, thresholds, leaks, the head's tanh) stays as it is, so the model
configs and the state layout do not change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from brevitas.nn import QuantConv2d
from torch import nn

from tinyflow.models.neurons.base import SpikingConv
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF
from tinyflow.models.spiking import spiking_layers
from tinyflow.quant.quantisers import (
    ACTIVATION_QUANTISER,
    BIAS_QUANTISER,
    WeightGranularity,
    membrane_quantiser,
    weight_quantiser,
)


def quant_conv2d(conv: nn.Conv2d, weights: WeightGranularity) -> QuantConv2d:
    """The quantised twin of ``conv`` (same geometry, its weights and bias copied, see the module)."""
    quantised = QuantConv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        weight_quant=weight_quantiser(weights),
        input_quant=ACTIVATION_QUANTISER,
        bias_quant=BIAS_QUANTISER if conv.bias is not None else None,
        return_quant_tensor=False,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        quantised.weight.copy_(conv.weight)
        if conv.bias is not None:
            quantised.bias.copy_(conv.bias)
    return quantised


def _set_membrane_quant(layer: SpikingConv, quantiser: nn.Module) -> None:
    layer.membrane_quant = quantiser


def _set_snntorch_state_quant(layer: SnnTorchConvLIF, quantiser: nn.Module) -> None:
    layer.leaky.state_quant = quantiser


# spiking layer type -> how its membrane gets a quantiser (the first matching type in this order)
MEMBRANE_CONVERTERS: dict[type[nn.Module], Callable[[nn.Module, nn.Module], None]] = {
    SpikingConv: _set_membrane_quant,
    SnnTorchConvLIF: _set_snntorch_state_quant,
}


def _replace_convs(module: nn.Module, weights: WeightGranularity) -> None:
    for name, child in module.named_children():
        if type(child) is nn.Conv2d:
            setattr(module, name, quant_conv2d(child, weights))
        else:
            _replace_convs(child, weights)


def quantise_network(
    network: nn.Module,
    weights: WeightGranularity = "channel",
    membrane_bits: int | None = None,
    membrane_range: float = 4.0,
) -> nn.Module:
    """A quantised copy of ``network`` (``network`` itself is left as it is), see the module docstring.

    Args:
        weights: ``"tensor"`` or ``"channel"``: one weight scale per conv or per output channel.
        membrane_bits: bits of the membrane grid of every spiking layer; None = float membrane.
        membrane_range: the grid spans ``[-membrane_range, membrane_range]`` (units of the membrane).

    Raises:
        ValueError: a membrane grid for a network without spiking layers, or a spiking layer type that
            has no membrane converter.
    """
    quantised = copy.deepcopy(network)
    _replace_convs(quantised, weights)
    if membrane_bits is None:
        return quantised
    layers = spiking_layers(quantised)
    if not layers:
        raise ValueError(
            f"membrane_bits={membrane_bits}: {type(network).__name__} has no spiking layer whose membrane "
            "could be quantised (leave membrane_bits null for an ANN)"
        )
    for name, layer in layers.items():
        convert = next((c for kind, c in MEMBRANE_CONVERTERS.items() if isinstance(layer, kind)), None)
        if convert is None:
            raise ValueError(
                f"spiking layer {name!r} ({type(layer).__name__}): no membrane quantisation for this type; "
                f"known: {[kind.__name__ for kind in MEMBRANE_CONVERTERS]}"
            )
        convert(layer, membrane_quantiser(membrane_bits, membrane_range))
    return quantised
