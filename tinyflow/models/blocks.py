"""Non-spiking layers of the flow networks, with the spiking layers' ``(x, state) -> (y, state)`` API."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvReLU(nn.Module):
    """Stateless ``relu(conv(x))`` (conv with bias, ``padding = kernel_size // 2``); state stays ``None``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        return torch.relu(self.conv(x)), None


class ConvGRU(nn.Module):
    """Convolutional GRU cell; the output is the new hidden state ``h [B, hidden, H, W]``.

    ``u = sigmoid(W_u [x, h])``, ``r = sigmoid(W_r [x, h])``, ``c = tanh(W_c [x, r * h])``,
    ``h' = (1 - u) * h + u * c``. Orthogonal weights and zero biases at init (as in event_flow).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        gate_in = in_channels + hidden_channels
        padding = kernel_size // 2
        self.update_gate = nn.Conv2d(gate_in, hidden_channels, kernel_size, padding=padding)
        self.reset_gate = nn.Conv2d(gate_in, hidden_channels, kernel_size, padding=padding)
        self.candidate = nn.Conv2d(gate_in, hidden_channels, kernel_size, padding=padding)
        for conv in (self.update_gate, self.reset_gate, self.candidate):
            nn.init.orthogonal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step; ``state=None`` means a zero hidden state. Returns ``(h', h')``."""
        if state is None:
            state = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        stacked = torch.cat([x, state], dim=1)
        update = torch.sigmoid(self.update_gate(stacked))
        reset = torch.sigmoid(self.reset_gate(stacked))
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * state], dim=1)))
        hidden = (1 - update) * state + update * candidate
        return hidden, hidden


class FlowPrediction(nn.Module):
    """``flow = flow_scaling * tanh(conv1x1(h))`` [B, 2, H, W]: (x, y) displacement in pixels over the window.

    Args:
        in_channels: channels of the last feature map.
        flow_scaling: pixels of displacement at ``tanh = 1``.
        weight_scale: if set, weights start uniform in ``+-weight_scale`` and biases at zero
            (event_flow uses 0.01 for its spiking and feed-forward nets); else PyTorch's default init.
        bias: give the conv a bias. Without one the flow can only come from the features: a bias
            lets a network lower the CMax loss with one flow for the whole batch and ignore its input.
    """

    def __init__(
        self, in_channels: int, flow_scaling: float, weight_scale: float | None = None, bias: bool = True
    ) -> None:
        super().__init__()
        if not flow_scaling > 0:
            raise ValueError(f"flow_scaling={flow_scaling!r}: expected a positive number of pixels")
        self.conv = nn.Conv2d(in_channels, 2, kernel_size=1, bias=bias)
        self.flow_scaling = float(flow_scaling)
        if weight_scale is not None:
            nn.init.uniform_(self.conv.weight, -weight_scale, weight_scale)
            if bias:
                nn.init.zeros_(self.conv.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.flow_scaling * torch.tanh(self.conv(features))
