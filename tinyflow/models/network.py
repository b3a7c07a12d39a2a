"""A network = a body (:class:`~tinyflow.models.body.RecurrentBody`) + a head (:mod:`tinyflow.models.heads`)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from tinyflow.models.body import NetworkState, RecurrentBody
from tinyflow.models.heads import PredictionHead


def event_presence_mask(x: Tensor) -> Tensor:
    """``[B, 1, H, W]`` mask (dtype of ``x``): 1 where any input channel is nonzero (at least one event)."""
    return (x != 0).any(dim=1, keepdim=True).to(x.dtype)


class RecurrentNetwork(nn.Module):
    """Pure recurrent network: ``forward(x, state) -> (out, new_state)``.

    The state is a list with one entry per body layer, in ``layer_names`` order (``None`` for stateless
    layers); ``state=None`` means all-zero state. ``out[head.output_key]`` is the head's prediction at the
    input resolution (``out["flow"]`` ``[B, 2, H, W]`` for a :class:`~tinyflow.models.heads.FlowHead`:
    the (x, y) displacement in pixels over the input window, channel 0 = x); ``out["activity"]`` maps each
    layer name to that layer's own output (spikes for spiking layers) for firing-rate statistics.

    The body is held as ``layers`` and the head as ``prediction``, so state-dict keys read
    ``layers.<layer name>.…`` and ``prediction.…`` (the keys of checkpoints from earlier runs).

    Args:
        body: the layers; it must end at the input resolution with ``head.in_channels`` channels.
        head: the prediction from the body's last features.
        mask_output: multiply the prediction by :func:`event_presence_mask` of the input.
    """

    def __init__(self, *, body: RecurrentBody, head: PredictionHead, mask_output: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if body.out_scale != 1:
            raise ValueError(
                f"{name}: the body ends at {body.out_scale} of the input resolution: expected the input "
                f"resolution (the head predicts per input pixel)"
            )
        if head.in_channels != body.out_channels:
            raise ValueError(
                f"{name}: {type(head).__name__} takes {head.in_channels} channels, the body gives "
                f"{body.out_channels}"
            )
        self.layers = body
        self.prediction = head
        self.mask_output = mask_output

    @property
    def num_bins(self) -> int:
        """Channels of the input."""
        return self.layers.in_channels

    @property
    def layer_names(self) -> list[str]:
        return self.layers.layer_names

    def forward(self, x: Tensor, state: NetworkState | None = None) -> tuple[dict[str, Any], NetworkState]:
        """One input window ``x [B, num_bins, H, W]``; returns ``({output_key, "activity"}, new_state)``."""
        name = type(self).__name__
        if x.ndim != 4 or x.shape[1] != self.num_bins:
            raise ValueError(f"{name}: input shape {tuple(x.shape)}: expected [B, {self.num_bins}, H, W]")
        if state is not None and len(state) != len(self.layers):
            raise ValueError(
                f"{name}: state has {len(state)} entries, expected {len(self.layers)} "
                f"(one per layer: {self.layer_names})"
            )
        features, activity, new_state = self.layers(x, state)
        if features.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"{name}: the body's output is {tuple(features.shape[-2:])} for an input of "
                f"{tuple(x.shape[-2:])}: expected the input's height and width to be divisible by the "
                f"body's total stride"
            )
        prediction = self.prediction(features)
        if self.mask_output:
            prediction = prediction * event_presence_mask(x)
        return {self.prediction.output_key: prediction, "activity": activity}, new_state


__all__ = ["NetworkState", "RecurrentNetwork", "event_presence_mask"]
