"""Non-spiking layers of the network bodies, with the spiking layers' ``(x, state) -> (y, state)`` API."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ConvReLU(nn.Module):
    """Stateless ``relu(conv(x))`` (conv with bias, ``padding = kernel_size // 2``); state stays ``None``.

    With ``stride`` s the output has ``1 / s`` of the input resolution (a strided encoder layer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        return torch.relu(self.conv(x)), None


class ConvGRU(nn.Module):
    """Convolutional GRU cell; the output is the new hidden state ``h [B, hidden, H, W]``.

    ``u = sigmoid(W_u [x, h])``, ``r = sigmoid(W_r [x, h])``, ``c = tanh(W_c [x, r * h])``,
    ``h' = (1 - u) * h + u * c``. Orthogonal weights and zero biases at init (as in event_flow).
    The hidden state has the input's resolution: ``stride`` must be 1 (it is an argument so that a
    network body can ask every layer for its stride).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        if stride != 1:
            raise ValueError(
                f"ConvGRU: stride={stride!r}: expected 1 (the hidden state keeps the resolution)"
            )
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
