"""FireNet family in event_flow's layer order: head -> G1 -> R1a -> R1b -> G2 -> R2a -> R2b -> pred.

FireNet is Scheerlinck et al. 2020's architecture as adapted for optical flow in event_flow
(Hagenaars et al. 2021). All layers keep the input resolution and have ``base_num_channels``
channels; ``pred`` is a :class:`~tinyflow.models.heads.FlowHead` (a 1x1 conv to 2 channels with tanh,
scaled by ``flow_scaling``). Each model class is a :class:`FireNetFamily`: :func:`firenet_body` with the class's layer names and
layer builders, plus a flow head; the classes differ only in those and in two defaults.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

from tinyflow.models.blocks import ConvGRU, ConvReLU
from tinyflow.models.body import LayerBuilder, LayerSpec, RecurrentBody, Skip
from tinyflow.models.heads import FlowHead
from tinyflow.models.network import RecurrentNetwork
from tinyflow.models.neurons import build_spiking_layer, resolve_neuron_kwargs

FIRENET_LAYER_NAMES = ("head", "G1", "R1a", "R1b", "G2", "R2a", "R2b")
SHORT_LAYER_NAMES = ("head", "G1", "R1a", "G2", "R2a")
RESIDUAL_SKIPS = {"R1b": "G1", "R2b": "G2"}  # target -> source, added to the target's output
PRED_WEIGHT_SCALE = 0.01  # event_flow's prediction init for its spiking and feed-forward nets


def firenet_body(
    num_bins: int,
    channels: int,
    *,
    feedforward: LayerBuilder,
    recurrent: LayerBuilder,
    names: tuple[str, ...] = FIRENET_LAYER_NAMES,
    residual: bool = False,
) -> RecurrentBody:
    """Body with layers ``names`` of ``channels`` channels each: ``G*`` from ``recurrent``, the others from
    ``feedforward``; with ``residual``, the skips of :data:`RESIDUAL_SKIPS` (adding)."""
    missing = [target for target in RESIDUAL_SKIPS if target not in names] if residual else []
    if missing:
        raise ValueError(
            f"residual=True: the residual skips land on {missing}, which are not layers of {names}"
        )
    skips = RESIDUAL_SKIPS if residual else {}
    specs = [
        LayerSpec(
            name,
            channels,
            recurrent if name.startswith("G") else feedforward,
            skip=Skip(skips[name]) if name in skips else None,
        )
        for name in names
    ]
    return RecurrentBody(num_bins, specs)


def spiking_builders(
    model: str, neuron: str, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
) -> tuple[LayerBuilder, LayerBuilder]:
    """(feed-forward, recurrent) builders of spiking layers of type ``neuron``, with the settings that
    :func:`~tinyflow.models.neurons.resolve_neuron_kwargs` takes from ``neuron_kwargs`` (``ValueError``
    naming ``model``, the neuron and the key for a setting the neuron does not have)."""
    settings = resolve_neuron_kwargs(model, neuron, neuron_kwargs)
    layer = partial(build_spiking_layer, neuron, kernel_size=kernel_size, **settings)
    return partial(layer, recurrent=False), partial(layer, recurrent=True)


def reject_neuron(model: str, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None = None) -> None:
    """``ValueError`` naming ``model`` and ``neuron`` unless ``neuron`` is None and no neuron settings are
    given (for the ANN models)."""
    if neuron is not None or neuron_kwargs:
        raise ValueError(
            f"{model}: neuron={neuron!r}, neuron_kwargs={dict(neuron_kwargs or {})}: {model} is an ANN "
            f"(ReLU convs / ConvGRUs / ConvLSTMs) and takes no spiking neuron; the spiking models are "
            f"LIFFireNet, LIFFireNetShort, LIFFireFlowNet and LIFEVFlowNet (model=lif_firenet, "
            f"lif_firenet_short, lif_fireflownet, lif_evflownet)"
        )


class Default(enum.Enum):
    """Marks an argument left to the class's default (:attr:`FireNetFamily.default_neuron`, ...)."""

    CLASS = "the class's default"


class FireNetFamily(RecurrentNetwork, abc.ABC):
    """A FireNet-family network: :func:`firenet_body` of the class's layers plus a :class:`FlowHead`.

    Args:
        num_bins: input channels (2 for per-polarity counts).
        base_num_channels: channels of every hidden layer (32 in event_flow).
        kernel_size: of every hidden conv.
        neuron: spiking layer type, a key of ``tinyflow.models.neurons.NEURON_TYPES`` (``lif``, ``plif``,
            ``alif``, ``xlif``, ``snntorch_lif``); None for the ANNs, which refuse any other value with a
            ``ValueError`` naming the model and the neuron. Default: :attr:`default_neuron`.
        neuron_kwargs: settings of every spiking layer (leak / threshold init, reset, surrogate): shared
            settings, and per-neuron sections ``{<neuron type>: {...}}`` that apply to that type only.
            Each setting applied must be one the neuron has, else ``ValueError`` (the rule:
            :mod:`tinyflow.models.neurons.registry`).
        flow_scaling: pixels of displacement at ``tanh = 1`` (event_flow: the training resolution, 128).
        mask_output: zero the flow where the input has no event.
        residual: add G1's output to R1b's and G2's to R2b's (event_flow trains without: False).
        prediction_bias: the prediction conv has a bias (event_flow: True). Without it the flow can
            only come from the features (see :class:`~tinyflow.models.heads.FlowHead`).
        prediction_init_scale: the prediction conv's weights start uniform in ``+-prediction_init_scale``;
            None = PyTorch's default (``+-1/sqrt(base_num_channels)``). Default:
            :attr:`default_prediction_init_scale` (event_flow: None for FireNet, 0.01 for the others).
        prediction_smoothing_px: the flow head's fixed Gaussian blur, standard deviation in pixels (see
            :class:`~tinyflow.models.heads.FlowHead`, ``smoothing_px``); None (event_flow): no blur.
    """

    body_layers: ClassVar[tuple[str, ...]] = FIRENET_LAYER_NAMES
    default_neuron: ClassVar[str | None] = None
    default_prediction_init_scale: ClassVar[float | None] = PRED_WEIGHT_SCALE

    def __init__(
        self,
        *,
        num_bins: int = 2,
        base_num_channels: int = 32,
        kernel_size: int = 3,
        neuron: str | Default | None = Default.CLASS,
        neuron_kwargs: Mapping[str, Any] | None = None,
        flow_scaling: float = 128.0,
        mask_output: bool = False,
        residual: bool = False,
        prediction_bias: bool = True,
        prediction_init_scale: float | Default | None = Default.CLASS,
        prediction_smoothing_px: float | None = None,
    ) -> None:
        neuron = self.default_neuron if neuron is Default.CLASS else neuron
        if prediction_init_scale is Default.CLASS:
            prediction_init_scale = self.default_prediction_init_scale
        feedforward, recurrent = self.layer_builders(neuron, neuron_kwargs, kernel_size)
        body = firenet_body(
            num_bins,
            base_num_channels,
            feedforward=feedforward,
            recurrent=recurrent,
            names=self.body_layers,
            residual=residual,
        )
        head = FlowHead(
            base_num_channels,
            flow_scaling=flow_scaling,
            prediction_init_scale=prediction_init_scale,
            prediction_bias=prediction_bias,
            smoothing_px=prediction_smoothing_px,
        )
        super().__init__(body=body, head=head, mask_output=mask_output)

    @classmethod
    @abc.abstractmethod
    def layer_builders(
        cls, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
    ) -> tuple[LayerBuilder, LayerBuilder]:
        """(builder of the head and R layers, builder of the G layers)."""


class FireNet(FireNetFamily):
    """ANN FireNet: ReLU conv head and R layers, ConvGRU G1 / G2 (148,450 parameters at defaults)."""

    default_prediction_init_scale = None

    @classmethod
    def layer_builders(
        cls, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
    ) -> tuple[LayerBuilder, LayerBuilder]:
        reject_neuron(cls.__name__, neuron, neuron_kwargs)
        return partial(ConvReLU, kernel_size=kernel_size), partial(ConvGRU, kernel_size=kernel_size)


class LIFFireNet(FireNetFamily):
    """Spiking FireNet: spiking head and R layers, spiking G1 / G2 with a recurrent conv.

    74,818 parameters at defaults with LIF neurons (no conv biases; a leak and a threshold per channel).
    With ``residual``, spikes of G1 / G2 are added to those of R1b / R2b.
    """

    default_neuron = "lif"

    @classmethod
    def layer_builders(
        cls, neuron: str | None, neuron_kwargs: Mapping[str, Any] | None, kernel_size: int
    ) -> tuple[LayerBuilder, LayerBuilder]:
        return spiking_builders(cls.__name__, neuron, neuron_kwargs, kernel_size)


class LIFFireNetShort(LIFFireNet):
    """LIF-FireNet without R1b and R2b: head -> G1 -> R1a -> G2 -> R2a -> pred (56,258 parameters, LIF).

    event_flow's own repository has no short variant; this follows the ``LIFFireNet_short`` of
    derived event_flow code ("R1b and R2b layers removed"). ``residual`` is refused: its skips would
    land on the removed layers.
    """

    body_layers = SHORT_LAYER_NAMES
