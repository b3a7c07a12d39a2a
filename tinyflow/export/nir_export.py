"""Spiking networks as NIR graphs (``nir`` 1.0), and their simulation by an independent NIR importer.

**Time step.** tinyflow's neurons are discrete: one step per input window. NIR's are continuous, so the graph
states a step ``dt`` (:data:`NIR_DT_S`, in its metadata): a simulator must take one step of ``dt`` per
window, integrating by forward Euler, with a spike and its reset in the same step (snntorch's and norse's
discretisation). ``dt`` is nominal, 1e-4 s, because snntorch's importer fixes it; only ``dt / tau`` enters
the dynamics.

**LIF mapping.** A tinyflow LIF layer (:class:`~tinyflow.models.neurons.lif.ConvLIF` with hard reset, or
:class:`~tinyflow.models.neurons.snntorch_lif.SnnTorchConvLIF` with reset to zero) computes per channel c::

    v_t = leak_c * v_{t-1} * (1 - z_{t-1}) + (1 - leak_c) * (W_ff x_t + W_rec z_{t-1})
    z_t = v_t > thr_c

NIR's LIF is ``tau dv/dt = (v_leak - v) + r I``, spike where ``v > v_threshold``, then ``v = v_reset``; by
forward Euler at ``dt``: ``v_t = (1 - dt/tau) v_{t-1} + (dt/tau) r I_t``, with ``v_{t-1}`` already reset.
The graph writes, per neuron: ``tau = dt / (1 - leak_c)`` (so ``1 - dt/tau = leak_c``), ``r = tau / dt``
(so ``(dt/tau) r = 1``: the current enters the membrane as it is, snntorch's convention), ``v_leak = 0``,
``v_reset = 0`` and ``v_threshold = 1``, and folds ``(1 - leak_c) / thr_c`` into row c of both convolutions.
The NIR membrane is then ``v / thr_c``: it crosses 1 exactly where tinyflow's crosses ``thr_c``, so the spikes
are the same, and one threshold per layer (chips that have one per core) suffices. A reset membrane starts the
next step at 0 in both (tinyflow's reset at the next step of a membrane held for one step, NIR's at once).

**Graph.** Per spiking layer ``L``: ``L.ff`` (Conv2d of its input), ``L.lif`` (LIF) and, for a recurrent
layer, ``L.rec`` (Conv2d of ``L.lif``'s spikes back into ``L.lif``: the recurrent edge, which carries the
previous step's spikes). A residual skip (``Skip(mode="add")`` into a layer's output) is a second edge into
the next layer (NIR sums a node's inputs). The head is a Conv2d to ``output``; what follows it (``tanh``,
``flow_scaling``, the event mask) has no NIR primitive and is :func:`postprocess`, written in the metadata.
Any other layer (ANN blocks, PLIF/ALIF/XLIF traces, soft reset, upsampling, concatenating skips) raises
:class:`~tinyflow.export.errors.ExportError` naming it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
from torch import Tensor, nn

from tinyflow.export.errors import ExportError
from tinyflow.models.heads import FlowHead, blur_weight
from tinyflow.models.network import RecurrentNetwork, event_presence_mask
from tinyflow.models.neurons.base import ConvSynapses
from tinyflow.models.neurons.lif import ConvLIF
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF

NIR_DT_S = 1e-4
INPUT_NODE = "input"
OUTPUT_NODE = "output"
HEAD_NODE = "prediction"


@dataclass(frozen=True)
class LIFParameters:
    """What NIR needs of a LIF layer: per-channel leak and threshold [C] and its synapses."""

    leak: np.ndarray
    threshold: np.ndarray
    synapses: ConvSynapses


def _channels(values: Tensor, channels: int) -> np.ndarray:
    return np.broadcast_to(values.detach().cpu().double().numpy().reshape(-1), (channels,)).copy()


def convlif_parameters(name: str, layer: ConvLIF) -> LIFParameters:
    """A :class:`ConvLIF` with hard reset (leak ``sigmoid(leak_logit)``, threshold ``max(thresh, 0.01)``)."""
    if not layer.hard_reset:
        raise ExportError(
            f"layer {name!r} (ConvLIF) resets softly (subtracts the threshold): NIR's LIF resets to v_reset; "
            f"export=nir takes hard-reset LIF layers (model.neuron_kwargs.hard_reset=true), export=onnx any"
        )
    channels = layer.synapses.ff.out_channels
    return LIFParameters(
        _channels(torch.sigmoid(layer.leak_logit), channels),
        _channels(layer.threshold(None), channels),
        layer.synapses,
    )


def snntorch_lif_parameters(name: str, layer: SnnTorchConvLIF) -> LIFParameters:
    """A :class:`SnnTorchConvLIF` with reset to zero (leak ``clamp(beta, 0, 1)``, its threshold)."""
    if layer.leaky.reset_mechanism != "zero":
        raise ExportError(
            f"layer {name!r} (SnnTorchConvLIF) resets by {layer.leaky.reset_mechanism!r}: NIR's LIF resets to "
            f"v_reset; export=nir takes reset_mechanism 'zero' (hard_reset=true)"
        )
    channels = layer.synapses.ff.out_channels
    return LIFParameters(
        _channels(layer.leaky.beta.clamp(0, 1), channels),
        _channels(layer.leaky.threshold, channels),
        layer.synapses,
    )


# One converter per layer type, looked up by exact type (ConvPLIF subclasses ConvLIF but adds a trace).
LAYER_CONVERTERS: dict[type[nn.Module], Callable[[str, Any], LIFParameters]] = {
    ConvLIF: convlif_parameters,
    SnnTorchConvLIF: snntorch_lif_parameters,
}


def _conv_node(
    conv: nn.Conv2d, weight: np.ndarray, bias: np.ndarray, input_hw: tuple[int, int]
) -> nir.Conv2d:
    if conv.padding_mode != "zeros":
        raise ExportError(f"a conv with padding_mode={conv.padding_mode!r}: NIR's Conv2d pads with zeros")
    return nir.Conv2d(
        input_shape=input_hw,
        weight=weight.astype(np.float32),
        stride=tuple(conv.stride),
        padding=tuple(conv.padding),
        dilation=tuple(conv.dilation),
        groups=conv.groups,
        bias=bias.astype(np.float32),
    )


def _output_hw(conv: nn.Conv2d, input_hw: tuple[int, int]) -> tuple[int, int]:
    return tuple(
        (size + 2 * pad - dil * (kernel - 1) - 1) // stride + 1
        for size, pad, dil, kernel, stride in zip(
            input_hw, conv.padding, conv.dilation, conv.kernel_size, conv.stride, strict=True
        )
    )


def lif_nodes(
    name: str, parameters: LIFParameters, input_hw: tuple[int, int]
) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]], tuple[int, int]]:
    """The nodes ``name.ff``, ``name.lif`` (and ``name.rec``) of a LIF layer, the edges among them and the
    output's height and width (the module docstring's mapping)."""
    leak, threshold = parameters.leak, parameters.threshold
    if not (np.all(leak < 1) and np.all(leak >= 0) and np.all(threshold > 0)):
        raise ExportError(
            f"layer {name!r}: leak {leak.min():.6g}..{leak.max():.6g}, threshold {threshold.min():.6g}.."
            f"{threshold.max():.6g}: NIR's LIF needs 0 <= leak < 1 (a finite tau) and a positive threshold"
        )
    synapses = parameters.synapses
    gain = ((1 - leak) / threshold)[:, None, None, None]
    channels = len(leak)
    output_hw = _output_hw(synapses.ff, input_hw)

    def per_neuron(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values.reshape(-1, 1, 1), (channels, *output_hw)).astype(np.float32)

    zeros = np.zeros(channels)
    tau = NIR_DT_S / (1 - leak)
    nodes: dict[str, nir.NIRNode] = {
        f"{name}.ff": _conv_node(
            synapses.ff, synapses.ff.weight.detach().cpu().double().numpy() * gain, zeros, input_hw
        ),
        f"{name}.lif": nir.LIF(
            tau=per_neuron(tau),
            r=per_neuron(tau / NIR_DT_S),
            v_leak=per_neuron(zeros),
            v_threshold=per_neuron(np.ones(channels)),
            v_reset=per_neuron(zeros),
        ),
    }
    edges = [(f"{name}.ff", f"{name}.lif")]
    if synapses.rec is not None:
        weight = synapses.rec.weight.detach().cpu().double().numpy() * gain
        nodes[f"{name}.rec"] = _conv_node(synapses.rec, weight, zeros, output_hw)
        edges += [(f"{name}.lif", f"{name}.rec"), (f"{name}.rec", f"{name}.lif")]
    return nodes, edges, output_hw


def _supported() -> str:
    return ", ".join(f"{cls.__name__}" for cls in LAYER_CONVERTERS)


@dataclass(frozen=True)
class Postprocess:
    """What turns the graph's output into the prediction: ``flow_scaling * tanh(output)`` (or the output times
    ``flow_scaling`` for a linear head), times the event mask of the input where ``mask_output``.

    For a head that blurs its conv's output (``FlowHead.smoothing``), the graph's head conv holds the conv
    and the Gaussian folded into one kernel, with zero padding and no bias; the output is then first divided
    by ``blur_weight`` [H, W] (the kernel weight inside the image at each pixel) and the head's ``bias`` [C]
    added, before tanh: exactly the head's renormalised blur.
    """

    flow_scaling: float
    tanh: bool
    mask_output: bool
    smoothing_px: float | None = None
    blur_weight: Tensor | None = None
    bias: Tensor | None = None

    def __call__(self, output: Tensor, x: Tensor) -> Tensor:
        if self.blur_weight is not None:
            output = output / self.blur_weight
        if self.bias is not None:
            output = output + self.bias.view(-1, 1, 1)
        flow = self.flow_scaling * (torch.tanh(output) if self.tanh else output)
        return flow * event_presence_mask(x) if self.mask_output else flow

    def describe(self) -> str:
        inner = "output"
        if self.smoothing_px is not None:
            inner = (
                f"output / w + b, w the weight of the head's Gaussian (std {self.smoothing_px:g} px) inside "
                f"the image at each pixel, b the head's bias"
            )
        body = f"{self.flow_scaling:g} * {f'tanh({inner})' if self.tanh else f'({inner})'}"
        return body + (" * (any input channel of the pixel != 0)" if self.mask_output else "")


def smoothed_head_conv(
    head: FlowHead, hw: tuple[int, int], mask_output: bool
) -> tuple[nir.Conv2d, Postprocess]:
    """The head conv of a blurring :class:`FlowHead` with its Gaussian folded in (a ``2 r + 1`` kernel, zero
    padding ``r``, no bias) and the :class:`Postprocess` that renormalises it and adds the bias.

    Raises:
        ExportError: the head's conv is not 1x1 (a k x k conv padded by zeros, then blurred, folds into no
            single zero-padded conv).
    """
    conv = head.conv
    if conv.kernel_size != (1, 1):
        raise ExportError(
            f"FlowHead with smoothing_px={head.smoothing.sigma_px} and a {conv.kernel_size} conv: export=nir folds the "
            f"blur into a 1x1 head conv only; export=onnx exports this network"
        )
    kernel = head.smoothing.kernel.detach().cpu().double()
    gaussian = torch.outer(kernel, kernel).numpy()
    weight = conv.weight.detach().cpu().double().numpy()[:, :, :1, :1] * gaussian
    radius = kernel.numel() // 2
    node = nir.Conv2d(
        input_shape=hw,
        weight=weight.astype(np.float32),
        stride=(1, 1),
        padding=(radius, radius),
        dilation=(1, 1),
        groups=1,
        bias=np.zeros(conv.out_channels, np.float32),
    )
    bias = conv.bias.detach().cpu() if conv.bias is not None else None
    weight_map = blur_weight(kernel, *hw).float()
    post = Postprocess(
        head.flow_scaling, head.activation == "tanh", mask_output, head.smoothing.sigma_px, weight_map, bias
    )
    return node, post


def to_nir(network: RecurrentNetwork, input_shape: tuple[int, int, int]) -> tuple[nir.NIRGraph, Postprocess]:
    """The NIR graph of ``network`` for inputs ``[C, H, W]`` and its :class:`Postprocess`.

    Raises:
        ExportError: a layer, skip or head without NIR primitive (named).
    """
    network_name = type(network).__name__
    body = network.layers
    nodes: dict[str, nir.NIRNode] = {INPUT_NODE: nir.Input(input_type={"input": np.array(input_shape)})}
    edges: list[tuple[str, str]] = []
    features, hw = [INPUT_NODE], tuple(input_shape[1:])
    outputs: dict[str, str] = {}
    for name, layer in body.items():
        if name in body.upsampling:
            raise ExportError(
                f"{network_name}: layer {name!r} upsamples its input: NIR has no upsampling primitive; "
                f"export=onnx exports this network"
            )
        converter = LAYER_CONVERTERS.get(type(layer))
        if converter is None:
            raise ExportError(
                f"{network_name}: layer {name!r} ({type(layer).__name__}) has no NIR primitive: export=nir "
                f"takes spiking layers of type {_supported()} (hard reset, no trace); export=onnx exports "
                f"this network"
            )
        layer_nodes, layer_edges, hw = lif_nodes(name, converter(name, layer), hw)
        nodes.update(layer_nodes)
        edges += [(source, f"{name}.ff") for source in features] + layer_edges
        outputs[name] = f"{name}.lif"
        features = [outputs[name]]
        skip = body.skips.get(name)
        if skip is not None:
            if (skip.mode, skip.into, skip.of) != ("add", "output", "output"):
                raise ExportError(
                    f"{network_name}: skip {skip.described} -> {name!r} ({skip.mode} into the {skip.into}): "
                    f"export=nir takes skips that add a layer's spikes to a later layer's output"
                )
            features.append(outputs[skip.source])
    head = network.prediction
    if not isinstance(head, FlowHead) or head.upsample != 1:
        raise ExportError(
            f"{network_name}: head {type(head).__name__} (upsample {head.upsample}): export=nir takes a "
            f"FlowHead without upsampling"
        )
    conv = head.conv
    if head.smoothing is None:
        bias = conv.bias.detach().cpu().numpy() if conv.bias is not None else np.zeros(conv.out_channels)
        nodes[HEAD_NODE] = _conv_node(conv, conv.weight.detach().cpu().numpy(), bias, hw)
        post = Postprocess(head.flow_scaling, head.activation == "tanh", network.mask_output)
    else:
        nodes[HEAD_NODE], post = smoothed_head_conv(head, hw, network.mask_output)
    nodes[OUTPUT_NODE] = nir.Output(output_type={"output": np.array([conv.out_channels, *hw])})
    edges += [(source, HEAD_NODE) for source in features] + [(HEAD_NODE, OUTPUT_NODE)]
    metadata = {
        "source": "tinyflow",
        "network": network_name,
        "dt_s": NIR_DT_S,
        "time_step": "one input window per step of dt_s (forward Euler, spike and reset in the same step)",
        "postprocess": post.describe(),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata), post


class NirSimulator:
    """A NIR graph run step by step by snntorch's NIR importer (``snntorch.import_nir.import_from_nir`` on
    ``nirtorch``), an implementation of NIR's LIF independent of tinyflow's neurons.

    ``step(x)`` returns the graph's output and the spikes of every ``<layer>.lif`` node by layer name;
    ``reset()`` zeroes every membrane and the recurrent edges (a new recording).
    """

    def __init__(self, graph: nir.NIRGraph) -> None:
        from snntorch.import_nir import import_from_nir

        with contextlib.redirect_stdout(io.StringIO()):  # the importer prints its progress
            self.module = import_from_nir(graph)
        self.neurons = {
            name.removesuffix("_lif"): module
            for name, module in self.module.named_children()
            if name.endswith("_lif")
        }
        self._spikes: dict[str, Tensor] = {}
        for name, module in self.neurons.items():
            module.register_forward_hook(self._recorder(name))
        self._state: Any = None

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(module: nn.Module, inputs: Any, output: Tensor) -> None:
            self._spikes[name] = output

        return record

    def reset(self) -> None:
        self._state = None
        for module in self.neurons.values():
            module.reset_mem()

    @torch.no_grad()
    def step(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        output, self._state = self.module(x, self._state)
        return output, dict(self._spikes)


__all__ = [
    "LAYER_CONVERTERS",
    "NIR_DT_S",
    "LIFParameters",
    "NirSimulator",
    "Postprocess",
    "lif_nodes",
    "to_nir",
]
