"""The neuron types by name, the settings each accepts, and the rule that turns ``neuron_kwargs`` into them.

The rule for ``neuron_kwargs`` (a model's mapping of neuron settings, e.g. in ``config/model/*.yaml``):

- a key that names a neuron type (``lif``, ``alif``, ...) holds a section of settings for that type only;
- every other key is a shared setting, applied to whichever neuron type the model builds;
- the settings applied to neuron type ``N`` are the shared ones plus section ``N``; each must be a
  setting of ``N`` (:func:`neuron_settings`), and none may be set both shared and in section ``N``;
- sections of the other types are checked against their own type but not applied, so one config can
  hold sensible values for every type and ``model.neuron=<type>`` switches between them.

Any violation is one ``ValueError`` naming the model, the neuron type, the key and what is accepted.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from tinyflow.models.neurons.alif import ConvALIF
from tinyflow.models.neurons.integrate_fire import ConvIF
from tinyflow.models.neurons.lif import ConvLIF
from tinyflow.models.neurons.plif import ConvPLIF
from tinyflow.models.neurons.snntorch_lif import SnnTorchConvLIF
from tinyflow.models.neurons.xlif import ConvXLIF

NEURON_TYPES: dict[str, type[nn.Module]] = {
    "lif": ConvLIF,
    "plif": ConvPLIF,
    "alif": ConvALIF,
    "xlif": ConvXLIF,
    "snntorch_lif": SnnTorchConvLIF,
    "if": ConvIF,
}

# constructor arguments that the network architecture sets for every spiking layer: never settings
ARCHITECTURE_ARGUMENTS = frozenset(
    {"in_channels", "out_channels", "kernel_size", "stride", "padding", "recurrent"}
)


def check_neuron(neuron: str, model: str | None = None) -> type[nn.Module]:
    """The class of neuron type ``neuron``; ``ValueError`` (naming ``model`` if given) for an unknown type."""
    if neuron not in NEURON_TYPES:
        prefix = f"{model}: " if model else ""
        raise ValueError(f"{prefix}neuron={neuron!r}: expected one of {sorted(NEURON_TYPES)}")
    return NEURON_TYPES[neuron]


def neuron_settings(neuron: str) -> frozenset[str]:
    """Settings accepted by neuron type ``neuron``: its constructor's keyword arguments.

    Arguments forwarded through ``**kwargs`` count too (up the class hierarchy, e.g. ``ConvLIF`` ->
    ``SpikingConv``), except those the architecture sets (:data:`ARCHITECTURE_ARGUMENTS`) and those a
    class declares in ``NON_SETTINGS`` (fixed by the type itself, or unused by it).
    """
    cls = check_neuron(neuron)
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is nn.Module or "__init__" not in vars(klass):
            continue
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]  # without self
        names.update(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return frozenset(names - ARCHITECTURE_ARGUMENTS - getattr(cls, "NON_SETTINGS", frozenset()))


def _check_settings(model: str, neuron: str, keys: list[str], where: str) -> None:
    accepted = neuron_settings(neuron)
    unknown = [key for key in keys if key not in accepted]
    if unknown:
        raise ValueError(
            f"{model}: neuron={neuron!r}: {', '.join(f'{where}{key}' for key in unknown)} "
            f"{'is not a setting' if len(unknown) == 1 else 'are not settings'} of {neuron!r} "
            f"({NEURON_TYPES[neuron].__name__}); it accepts {sorted(accepted)}. Settings of one neuron "
            f"type go in its own section, neuron_kwargs.<type>, with <type> one of {sorted(NEURON_TYPES)}"
        )


def resolve_neuron_kwargs(model: str, neuron: str, neuron_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings of neuron type ``neuron`` in ``neuron_kwargs`` under the rule of this module.

    Args:
        model: name of the model, for error messages.
        neuron: the neuron type the model builds (a key of :data:`NEURON_TYPES`).
        neuron_kwargs: shared settings and per-type sections (any mapping, e.g. an OmegaConf DictConfig).
    """
    check_neuron(neuron, model)
    neuron_kwargs = neuron_kwargs or {}
    shared = {key: value for key, value in neuron_kwargs.items() if key not in NEURON_TYPES}
    for section_neuron in NEURON_TYPES:
        section = neuron_kwargs.get(section_neuron)
        if section is None:
            continue
        if not isinstance(section, Mapping):
            raise ValueError(
                f"{model}: neuron_kwargs.{section_neuron}={section!r}: expected a mapping of settings "
                f"of {section_neuron!r} (a neuron type's section)"
            )
        _check_settings(model, section_neuron, list(section), f"neuron_kwargs.{section_neuron}.")
    _check_settings(model, neuron, list(shared), "neuron_kwargs.")
    section = dict(neuron_kwargs.get(neuron) or {})
    twice = sorted(set(shared) & set(section))
    if twice:
        raise ValueError(
            f"{model}: neuron={neuron!r}: "
            + ", ".join(f"neuron_kwargs.{key} and neuron_kwargs.{neuron}.{key}" for key in twice)
            + ": set each setting in one place (shared, or in the neuron type's section)"
        )
    return {**shared, **section}


def build_spiking_layer(
    neuron: str, in_channels: int, out_channels: int, kernel_size: int, recurrent: bool, **neuron_kwargs
) -> nn.Module:
    """Spiking conv layer of type ``neuron`` (a key of :data:`NEURON_TYPES`); ``neuron_kwargs`` as resolved
    by :func:`resolve_neuron_kwargs` (``stride`` and ``padding`` may be given here too)."""
    return check_neuron(neuron)(
        in_channels, out_channels, kernel_size=kernel_size, recurrent=recurrent, **neuron_kwargs
    )
