"""Spike statistics from hooks outside the model: firing rates, synaptic operations, energy per window.

:class:`SpikeProbe` puts forward hooks on a network's convolutions and body layers and counts, per
stream and window, what :data:`COUNT_FIELDS` names. Counts are attributed to *units*: the body layers
(``layers.<name>``, the keys of ``out["activity"]``) and the other top-level parts (``prediction``).

Definitions (per stream and window; a conv has ``C_out`` outputs channels in ``g`` groups, kernel
``k_h x k_w``, and input ``x``):

- **dense MACs** ``= sum over output positions o and kernel taps (c, i, j) that fall inside the input of
  C_out / g``: the multiply-accumulates of the conv run densely. Taps on zero padding are no operation
  (with ``padding_mode`` other than zeros the padded values are inputs and count).
- **synaptic operations** (effective) ``= sum over the same taps of [x_tap != 0] * C_out / g``: only
  nonzero inputs cost; each reaches ``C_out / g`` weights at every output position whose receptive field
  holds it. Where the input is binary (every value 0 or 1: spikes) they are **ACs** (the weight is
  added), else **MACs** (the first layer on a voxel grid, ANN layers, a sum of spike tensors).
- **neuron updates** ``= neurons of a spiking layer`` (one state update per neuron per window);
  **spikes** ``= sum of its output``; **firing rate** ``= spikes / neuron updates`` (spikes per neuron
  per window). ANN layers report their **activation density** ``= nonzero outputs / outputs``.
  Element-wise work of ANN layers (gates, activations) is not counted.

A :class:`HardwareProfile` prices the counts (:func:`energy_pj`); the ANN-equivalent is the same network
with every dense op a MAC at the profile's ``ann_mac`` energy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from tinyflow.metrics.hardware import HardwareProfile
from tinyflow.metrics.registry import Metric, register_task_metrics
from tinyflow.models.heads import FlowHead
from tinyflow.models.spiking import SpikingLayer

COUNT_FIELDS = (
    "dense_macs",  # dense multiply-accumulates of every conv
    "spike_ops",  # synaptic operations on binary inputs (ACs)
    "real_ops",  # synaptic operations on real-valued inputs, convs outside spiking layers (MACs)
    "real_spiking_ops",  # synaptic operations on real-valued inputs of spiking layers (MACs, or ACs by profile)
    "neuron_updates",  # spiking neurons updated
    "spikes",  # spikes emitted
    "outputs",  # output values of a body layer
    "nonzero_outputs",  # nonzero output values of a body layer
    "blur_macs",  # MACs of a flow head's fixed blur on binary features (in real_ops too)
    "blur_folded_acs",  # the ACs that blur adds when folded into the head conv (no multiplier: export=nir)
)
COUNTED_LAYERS = (nn.Conv2d,)
UNCOUNTED_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

UnitCounts = dict[str, Tensor]  # field -> per-stream values [B]
WindowCounts = dict[str, UnitCounts]  # unit -> its counts


def spikes_per_neuron(spikes: Tensor) -> Tensor:
    """Firing rate ``[B]`` of a layer's output ``[B, ...]``: spikes per neuron in this window."""
    return spikes.detach().flatten(1).float().mean(dim=1)


def layer_firing_rates(activity: Mapping[str, Tensor], names: Sequence[str]) -> dict[str, float]:
    """Mean spikes per neuron per window of each named layer of ``out["activity"]``, over the batch."""
    return {name: float(spikes_per_neuron(activity[name]).mean()) for name in names if name in activity}


def pure_network(network: nn.Module) -> nn.Module:
    """The pure network inside a :class:`~tinyflow.models.stateful.StatefulNetwork` (or ``network``)."""
    inner = getattr(network, "network", None)
    return inner if isinstance(inner, nn.Module) else network


def unit_of(module_name: str) -> str:
    """The unit a module belongs to: its body layer (``layers.G1.synapses.ff`` -> ``G1``), else its
    top-level part (``prediction.conv`` -> ``prediction``)."""
    parts = module_name.split(".")
    return parts[1] if parts[0] == "layers" and len(parts) > 1 else parts[0]


def spiking_unit_names(network: nn.Module) -> list[str]:
    """Body layers (``out["activity"]`` keys) that are spiking layers, in execution order."""
    body = getattr(pure_network(network), "layers", None)
    if not isinstance(body, nn.ModuleDict):
        return []
    return [name for name, layer in body.items() if isinstance(layer, SpikingLayer) and layer.emits_spikes]


def _padded(conv: nn.Conv2d, x: Tensor) -> tuple[Tensor, int | tuple[int, ...] | str]:
    """``x`` padded as the conv pads it, and the padding left to the conv call."""
    if conv.padding_mode == "zeros":
        return x, conv.padding
    return F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode), 0


def tap_counts(conv: nn.Conv2d, present: Tensor) -> Tensor:
    """Per stream ``[B]``: sum over output positions of the taps inside the input where ``present``
    (``[B, C_in, H, W]``, 0/1) is 1, times ``C_out / groups`` (see the module docstring)."""
    present, padding = _padded(conv, present.to(torch.float32))
    groups = conv.groups
    ones = present.new_ones(groups, conv.in_channels // groups, *conv.kernel_size)
    taps = F.conv2d(present, ones, None, conv.stride, padding, conv.dilation, groups)
    return taps.flatten(1).sum(dim=1) * (conv.out_channels // groups)


def dense_macs(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """Dense MACs of ``conv`` on one stream of ``x``'s shape, ``[1]`` (the same for every stream)."""
    return tap_counts(conv, torch.ones_like(x[:1]))


def conv_operations(conv: nn.Conv2d, x: Tensor, dense: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(dense MACs [B], synaptic operations [B], binary input [B] bool)`` of ``conv`` on ``x``;
    ``dense``: :func:`dense_macs` of this conv and input shape, where the caller has it already."""
    x = x.detach()
    binary = ((x == 0) | (x == 1)).flatten(1).all(dim=1)
    dense = dense_macs(conv, x) if dense is None else dense
    return dense.expand(x.shape[0]), tap_counts(conv, x != 0), binary


class SpikeProbe:
    """Counts a network's operations and activity per window with forward hooks (the model is untouched).

    Use as a context manager (or :meth:`attach` / :meth:`detach`); call :meth:`take` after each window
    (or group of windows) to get the counts since the last call.

    Args:
        network: a pure network or a :class:`~tinyflow.models.stateful.StatefulNetwork`.
        operations: also count synaptic operations (costs about one extra conv per conv); False counts
            activity only (firing rates during training).
    """

    def __init__(self, network: nn.Module, operations: bool = True) -> None:
        self.network = pure_network(network)
        self.operations = operations
        unsupported = [n for n, m in self.network.named_modules() if isinstance(m, UNCOUNTED_LAYERS)]
        if unsupported:
            raise ValueError(
                f"SpikeProbe: {type(self.network).__name__} has layers whose operations it cannot count "
                f"({', '.join(unsupported)}); it counts {', '.join(t.__name__ for t in COUNTED_LAYERS)}"
            )
        self.spiking_units = spiking_unit_names(self.network)
        self._conv_units: dict[nn.Module, str] = {}
        self._blur_units: dict[FlowHead, str] = {}
        for name, module in self.network.named_modules():
            if isinstance(module, COUNTED_LAYERS):
                self._conv_units[module] = unit_of(name)
            elif isinstance(module, FlowHead) and module.smoothing is not None:
                self._blur_units[module] = unit_of(name)
        self._handles: list[RemovableHandle] = []
        self._pending: WindowCounts = {}
        self._dense: dict[tuple[nn.Module, tuple[int, ...], torch.device], Tensor] = {}  # per conv, shape

    def attach(self) -> SpikeProbe:
        if self._handles:
            return self
        for module, unit in self._conv_units.items():
            self._handles.append(module.register_forward_hook(self._conv_hook(unit)))
        for module, unit in self._blur_units.items():
            self._handles.append(module.register_forward_hook(self._blur_hook(unit)))
        body = getattr(self.network, "layers", None)
        if isinstance(body, nn.ModuleDict):
            for name, layer in body.items():
                self._handles.append(layer.register_forward_hook(self._layer_hook(name)))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> SpikeProbe:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def take(self) -> WindowCounts:
        """The counts since the last call (unit -> field -> per-stream ``[B]``); then starts afresh."""
        counts, self._pending = self._pending, {}
        return counts

    def _add(self, unit: str, field: str, values: Tensor) -> None:
        fields = self._pending.setdefault(unit, {})
        values = values.detach().to(torch.float64)
        fields[field] = fields[field] + values if field in fields else values

    def _conv_hook(self, unit: str):
        spiking = unit in self.spiking_units

        @torch.no_grad()
        def hook(module: nn.Conv2d, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if not self.operations:
                return
            x = inputs[0]
            key = (module, tuple(x.shape[1:]), x.device)
            if key not in self._dense:
                self._dense[key] = dense_macs(module, x)
            dense, synaptic, binary = conv_operations(module, x, self._dense[key])
            zero = torch.zeros_like(synaptic)
            self._add(unit, "dense_macs", dense)
            self._add(unit, "spike_ops", torch.where(binary, synaptic, zero))
            real = torch.where(binary, zero, synaptic)
            self._add(unit, "real_spiking_ops" if spiking else "real_ops", real)

        return hook

    def _blur_hook(self, unit: str):
        """A flow head's fixed blur: dense, real-valued MACs outside the spiking layers. On binary features
        it can also run folded into the head conv (``2 r + 1`` square taps per spike instead of 1: ACs)."""

        @torch.no_grad()
        def hook(head: FlowHead, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if not self.operations:
                return
            x = inputs[0].detach()
            outputs, (height, width) = head.conv.out_channels, x.shape[-2:]
            macs = torch.full(
                (x.shape[0],), float(head.smoothing.macs(outputs, height, width)), device=x.device
            )
            self._add(unit, "dense_macs", macs)
            self._add(unit, "real_ops", macs)
            if not bool(((x == 0) | (x == 1)).all()):
                return
            side = head.smoothing.kernel.numel()
            present = (x != 0).to(torch.float32).sum(dim=1, keepdim=True)
            window = present.new_ones(1, 1, side, side)
            taps = F.conv2d(present, window, padding=side // 2).flatten(1).sum(dim=1)
            self._add(unit, "blur_macs", macs)
            self._add(unit, "blur_folded_acs", (taps - present.flatten(1).sum(dim=1)) * outputs)

        return hook

    def _layer_hook(self, unit: str):
        spiking = unit in self.spiking_units

        @torch.no_grad()
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: tuple[Tensor, object]) -> None:
            y = output[0].detach().flatten(1)
            size = torch.full((y.shape[0],), float(y.shape[1]), device=y.device)
            self._add(unit, "outputs", size)
            self._add(unit, "nonzero_outputs", (y != 0).sum(dim=1))
            if spiking:
                self._add(unit, "neuron_updates", size)
                self._add(unit, "spikes", y.float().sum(dim=1))

        return hook


@dataclass
class OperationCounts:
    """Sums of every :data:`COUNT_FIELDS` field over observed stream-windows, per unit.

    Attributes:
        windows: stream-windows observed.
        duration_us: their summed time span (for energy per second of events).
        units: unit -> field -> summed count.
    """

    windows: int = 0
    duration_us: float = 0.0
    units: dict[str, dict[str, float]] | None = None

    def add(
        self, counts: WindowCounts, streams: Tensor | None = None, duration_us: Tensor | None = None
    ) -> None:
        """Add the window counts of the streams where ``streams [B]`` (bool) is True (None: every stream),
        and their time spans ``duration_us [B]``."""
        self.units = self.units or {}
        if streams is None:
            some_field = next(iter(next(iter(counts.values())).values()))
            streams = torch.ones(some_field.shape[0], dtype=torch.bool)
        streams = streams.to(torch.bool).cpu()
        for unit, fields in counts.items():
            summed = self.units.setdefault(unit, dict.fromkeys(COUNT_FIELDS, 0.0))
            for field, values in fields.items():
                summed[field] += float(values.cpu()[streams].sum())
        self.windows += int(streams.sum())
        if duration_us is not None:
            self.duration_us += float(duration_us.detach().cpu().to(torch.float64)[streams].sum())


def synaptic_ops(counts: Mapping[str, float], profile: HardwareProfile | None) -> tuple[float, float]:
    """``(ACs, MACs)`` of summed counts; a spiking layer's real-valued inputs are MACs unless the profile's
    energy model integrates them as graded spikes (``real_inputs_of_spiking_layers="ac"``). On a profile
    without multiplier, a flow head's blur of binary features runs folded into the head conv (ACs)."""
    as_ac = profile is not None and profile.energy.real_inputs_of_spiking_layers == "ac"
    acs = counts["spike_ops"] + (counts["real_spiking_ops"] if as_ac else 0.0)
    macs = counts["real_ops"] + (0.0 if as_ac else counts["real_spiking_ops"])
    if profile is not None and profile.energy.mac is None:
        acs, macs = acs + counts["blur_folded_acs"], macs - counts["blur_macs"]
    return acs, macs


def energy_pj(counts: Mapping[str, float], profile: HardwareProfile) -> float:
    """Energy of summed counts on ``profile`` in pJ: ACs, MACs, neuron updates and (where modelled) spikes;
    NaN where the counts need MACs and the profile has no multiplier."""
    model = profile.energy
    acs, macs = synaptic_ops(counts, profile)
    if macs and model.mac is None:
        return math.nan
    energy = acs * model.ac.pj + counts["neuron_updates"] * model.neuron_update.pj
    energy += macs * model.mac.pj if model.mac is not None else 0.0
    energy += counts["spikes"] * model.spike.pj if model.spike is not None else 0.0
    return energy


def ann_energy_pj(counts: Mapping[str, float], profile: HardwareProfile) -> float:
    """Energy in pJ of the ANN of equal shape: every dense op a MAC at the profile's ``ann_mac``."""
    return counts["dense_macs"] * profile.energy.ann_mac.pj


def _summed(counts: OperationCounts, units: Sequence[str] | None = None) -> dict[str, float]:
    chosen = [u for u in (counts.units or {}) if units is None or u in units]
    return {field: math.fsum(counts.units[u][field] for u in chosen) for field in COUNT_FIELDS}


def _rate(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def statistics(counts: OperationCounts, profile: HardwareProfile | None) -> dict[str, float]:
    """The values of :data:`SPIKE_METRICS` per window (means over the observed stream-windows)."""
    windows = max(counts.windows, 1)
    summed = _summed(counts)
    acs, macs = synaptic_ops(summed, profile)
    values = {
        "firing_rate": 100 * _rate(summed["spikes"], summed["neuron_updates"]),
        "activation_density": 100 * _rate(summed["nonzero_outputs"], summed["outputs"]),
        "ac_m": acs / windows * 1e-6,
        "mac_m": macs / windows * 1e-6,
        "dense_mac_m": summed["dense_macs"] / windows * 1e-6,
        "neuron_updates_k": summed["neuron_updates"] / windows * 1e-3,
    }
    if profile is not None:
        energy_uj = energy_pj(summed, profile) / windows * 1e-6
        ann_uj = ann_energy_pj(summed, profile) / windows * 1e-6
        seconds = counts.duration_us * 1e-6
        values |= {
            "energy_uj": energy_uj,
            "ann_energy_uj": ann_uj,
            "ann_energy_ratio": _rate(ann_uj, energy_uj),
            "power_uw": energy_uj * counts.windows / seconds if seconds else math.nan,
        }
    return values


def layer_statistics(counts: OperationCounts, profile: HardwareProfile | None) -> dict[str, dict[str, float]]:
    """Per unit: firing rate (spiking layers) or activation density [%], ACs, MACs, dense MACs per window
    (millions), neurons, and energy per window in µJ on ``profile``."""
    windows = max(counts.windows, 1)
    table: dict[str, dict[str, float]] = {}
    for unit, fields in (counts.units or {}).items():
        acs, macs = synaptic_ops(fields, profile)
        row = {
            "ac_m": acs / windows * 1e-6,
            "mac_m": macs / windows * 1e-6,
            "dense_mac_m": fields["dense_macs"] / windows * 1e-6,
        }
        if fields["neuron_updates"]:
            row["firing_rate"] = 100 * _rate(fields["spikes"], fields["neuron_updates"])
            row["neurons"] = fields["neuron_updates"] / windows
        elif fields["outputs"]:
            row["activation_density"] = 100 * _rate(fields["nonzero_outputs"], fields["outputs"])
        if profile is not None:
            row["energy_uj"] = energy_pj(fields, profile) / windows * 1e-6
        table[unit] = row
    return table


@dataclass(frozen=True)
class SpikeActivityPenalty:
    """Firing-rate regulariser (StereoSpike, Rançon et al. 2022, ``network/loss.py``): ``weight`` times the
    sum over spiking layers of ``1 / (2 N) * sum(s ** 2)`` (``N``: the layer's spike values in the batch),
    i.e. half the mean squared spike activity per layer, summed over layers. Gradients reach the network
    through the spike functions' surrogates."""

    weight: float = 0.01

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise ValueError(f"SpikeActivityPenalty: weight={self.weight!r}: expected a number >= 0")

    def __call__(self, activity: Mapping[str, Tensor], layers: Sequence[str]) -> Tensor:
        """The penalty of one window's ``out["activity"]`` over the spiking ``layers``."""
        terms = [activity[name].float().pow(2).mean() / 2 for name in layers if name in activity]
        if not terms:
            raise ValueError(
                "SpikeActivityPenalty: the network has no spiking layers in its activity "
                f"({sorted(activity)}); the firing-rate regulariser needs a spiking model (regularizer=none)"
            )
        return self.weight * torch.stack(terms).sum()


SPIKE_METRICS = (  # values per window and stream (tables say "per window"); counts in millions (M) or k
    Metric(
        "firing_rate", "firing rate", "%", True, "spikes", "spikes per neuron per window, all spiking layers"
    ),
    Metric(
        "activation_density",
        "activation density",
        "%",
        True,
        "spikes",
        "nonzero outputs of all body layers (ANN layers' sparsity)",
        default=False,
    ),
    Metric("ac_m", "ACs", "M", True, "spikes", "accumulates per window: synaptic ops on binary spikes"),
    Metric(
        "mac_m", "MACs", "M", True, "spikes", "multiply-accumulates per window: synaptic ops on real inputs"
    ),
    Metric(
        "dense_mac_m", "dense MACs", "M", True, "spikes", "every conv run densely (the ANN-equivalent's ops)"
    ),
    Metric(
        "neuron_updates_k",
        "neuron updates",
        "k",
        True,
        "spikes",
        "spiking neuron state updates",
        default=False,
    ),
    Metric(
        "energy_uj", "energy", "µJ", True, "spikes", "ACs, MACs, neuron updates (and spikes) on the profile"
    ),
    Metric(
        "ann_energy_uj", "ANN energy", "µJ", True, "spikes", "the ANN of equal shape: every dense op a MAC"
    ),
    Metric("ann_energy_ratio", "ANN / SNN", None, False, "spikes", "ANN-equivalent energy over energy"),
    Metric("power_uw", "power", "µW", True, "spikes", "energy per second of events (µJ/s)"),
    Metric(
        "neurons",
        "neurons",
        None,
        False,
        "spikes",
        "neurons of a spiking layer (per-layer table)",
        default=False,
    ),
)
SPIKE_STATISTICS = register_task_metrics("spikes", SPIKE_METRICS, objective=("energy_uj",))
