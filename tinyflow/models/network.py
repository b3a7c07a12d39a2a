"""A flow network as named layers run in order, optional skip connections and a flow prediction head."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from tinyflow.models.blocks import FlowPrediction

LayerState = Any  # None, a tensor, or a tuple of tensors, as the layer defines
NetworkState = list[LayerState]


def event_presence_mask(x: Tensor) -> Tensor:
    """``[B, 1, H, W]`` mask (dtype of ``x``): 1 where any input channel is nonzero (at least one event)."""
    return (x != 0).any(dim=1, keepdim=True).to(x.dtype)


class SequentialFlowNetwork(nn.Module):
    """Pure recurrent flow network: ``forward(x, state) -> (out, new_state)``.

    Each layer has the interface ``layer(h, layer_state) -> (y, new_layer_state)``. The state is a list
    with one entry per layer, in ``layer_names`` order (``None`` for stateless layers); ``state=None``
    means all-zero state. ``out["flow"]`` is ``[B, 2, H, W]``, the (x, y) displacement in pixels over the
    input window (channel 0 = x); ``out["activity"]`` maps each layer name to its output (spikes for
    spiking layers) for firing-rate statistics.

    Args:
        num_bins: input channels.
        layers: name -> layer, in execution order.
        skips: layer name -> name of an earlier layer whose output is added to this layer's output
            before it feeds the next layer (the activity entry stays the layer's own output).
        head_channels: channels of the last layer's output (input of the prediction conv).
        flow_scaling: pixels of displacement at ``tanh = 1``.
        mask_output: multiply the flow by :func:`event_presence_mask` of the input.
        pred_weight_scale: init of the prediction conv, see :class:`FlowPrediction`.
        prediction_bias: the prediction conv has a bias (see :class:`FlowPrediction`).
    """

    def __init__(
        self,
        num_bins: int,
        layers: dict[str, nn.Module],
        skips: dict[str, str],
        head_channels: int,
        flow_scaling: float,
        mask_output: bool,
        pred_weight_scale: float | None,
        prediction_bias: bool = True,
    ) -> None:
        super().__init__()
        names = list(layers)
        for target, source in skips.items():
            if target not in layers or source not in layers or names.index(source) >= names.index(target):
                raise ValueError(f"skip {source!r} -> {target!r}: expected an earlier layer into a later one")
        self.num_bins = num_bins
        self.layers = nn.ModuleDict(layers)
        self.skips = dict(skips)
        self.prediction = FlowPrediction(head_channels, flow_scaling, pred_weight_scale, prediction_bias)
        self.mask_output = mask_output

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def forward(self, x: Tensor, state: NetworkState | None = None) -> tuple[dict[str, Any], NetworkState]:
        """One input window ``x [B, num_bins, H, W]``; returns ``({"flow", "activity"}, new_state)``."""
        if x.ndim != 4 or x.shape[1] != self.num_bins:
            raise ValueError(
                f"{type(self).__name__}: input shape {tuple(x.shape)}: expected [B, {self.num_bins}, H, W]"
            )
        if state is None:
            state = [None] * len(self.layers)
        elif len(state) != len(self.layers):
            raise ValueError(
                f"{type(self).__name__}: state has {len(state)} entries, expected {len(self.layers)} "
                f"(one per layer: {self.layer_names})"
            )
        activity: dict[str, Tensor] = {}
        new_state: NetworkState = []
        features = x
        for (name, layer), layer_state in zip(self.layers.items(), state, strict=True):
            output, layer_state = layer(features, layer_state)
            activity[name] = output
            new_state.append(layer_state)
            features = output + activity[self.skips[name]] if name in self.skips else output
        flow = self.prediction(features)
        if self.mask_output:
            flow = flow * event_presence_mask(x)
        return {"flow": flow, "activity": activity}, new_state


__all__ = ["NetworkState", "SequentialFlowNetwork", "event_presence_mask"]
