"""Non-spiking layers of the network bodies, with the spiking layers' ``(x, state) -> (y, state)`` API."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "tanh", None)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def check_padding_mode(layer: str, padding_mode: str) -> None:
    """``ValueError`` naming ``layer`` unless ``padding_mode`` is one of :data:`PADDING_MODES`."""
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{layer}: padding_mode={padding_mode!r}: expected one of {PADDING_MODES}")


class ConvLayer(nn.Module):
    """Stateless ``activation(conv(x))`` (``padding = kernel_size // 2``); state stays ``None``.

    With ``stride`` s the output has ``1 / s`` of the input resolution (a strided encoder layer).

    Args:
        activation: ``"relu"``, ``"tanh"`` or None (linear).
        bias: the conv has a bias.
        padding_mode: of the conv (``"zeros"``; TinyCMax: ``"reflect"``).
        weight_init_scale: if set, the weights start uniform in ``+-weight_init_scale`` and the bias at zero
            (event_flow's ``w_scale`` of its prediction layers); None = PyTorch's default init.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: Literal["relu", "tanh"] | None = "relu",
        bias: bool = True,
        padding_mode: str = "zeros",
        weight_init_scale: float | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if activation not in ACTIVATIONS:
            raise ValueError(f"{name}: activation={activation!r}: expected one of {ACTIVATIONS}")
        check_padding_mode(name, padding_mode)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.activation = activation
        if weight_init_scale is not None:
            nn.init.uniform_(self.conv.weight, -weight_init_scale, weight_init_scale)
            if bias:
                nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        y = self.conv(x)
        if self.activation == "relu":
            y = torch.relu(y)
        elif self.activation == "tanh":
            y = torch.tanh(y)
        return y, None


class ConvReLU(ConvLayer):
    """Stateless ``relu(conv(x))`` (conv with bias); see :class:`ConvLayer`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, "relu", padding_mode=padding_mode)


class ResidualBlock(nn.Module):
    """Stateless ``relu(conv2(relu(conv1(x))) + shortcut(x))``, both convs with bias, ``conv1`` strided.

    The shortcut is the identity, or (where ``stride != 1`` or the channels change) a strided conv
    without activation. event_flow's ``ResidualBlock`` (models/submodules.py; 3x3, stride 1, identity
    shortcut) and TinyCMax's ``res_block`` (tinycmax/blocks.py; stride 2, conv shortcut) are both this.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        check_padding_mode(type(self).__name__, padding_mode)
        padding = kernel_size // 2
        conv = dict(padding=padding, padding_mode=padding_mode)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, **conv)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, **conv)
        self.shortcut: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, **conv)

    def forward(self, x: Tensor, state: None = None) -> tuple[Tensor, None]:
        residual = x if self.shortcut is None else self.shortcut(x)
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + residual), None


def _check_unit_stride(layer: str, stride: int) -> None:
    if stride != 1:
        raise ValueError(f"{layer}: stride={stride!r}: expected 1 (the hidden state keeps the resolution)")


class ConvGRU(nn.Module):
    """Convolutional GRU cell (event_flow's ``ConvGRU``); the output is the new hidden state ``h [B, hidden, H, W]``.

    ``u = sigmoid(W_u [x, h])``, ``r = sigmoid(W_r [x, h])``, ``c = tanh(W_c [x, r * h])``,
    ``h' = (1 - u) * h + u * c``. Orthogonal weights and zero biases at init (as in event_flow).
    The hidden state has the input's resolution: ``stride`` must be 1 (it is an argument so that a
    network body can ask every layer for its stride).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        _check_unit_stride("ConvGRU", stride)
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


class TorchStyleConvGRU(nn.Module):
    """Convolutional GRU with ``torch.nn.GRU``'s gate layout (TinyCMax's ``LazyConvGru``): separate input
    and hidden convs, each to the three gates (r, z, n), each with a bias.

    ``[r_i, z_i, n_i] = W_i x``, ``[r_h, z_h, n_h] = W_h h``, ``r = sigmoid(r_i + r_h)``,
    ``z = sigmoid(z_i + z_h)``, ``n = tanh(n_i + r * n_h)``, ``h' = (1 - z) * h + z * n`` (TinyCMax's
    update; ``nn.GRU`` has ``(1 - z) * n + z * h``, the same cell with ``z`` negated); the output is
    ``h'``. PyTorch's default init. ``stride`` must be 1 (see :class:`ConvGRU`).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        _check_unit_stride("TorchStyleConvGRU", stride)
        check_padding_mode("TorchStyleConvGRU", padding_mode)
        self.hidden_channels = hidden_channels
        conv = dict(padding=kernel_size // 2, padding_mode=padding_mode)
        self.input_gates = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, **conv)
        self.hidden_gates = nn.Conv2d(hidden_channels, 3 * hidden_channels, kernel_size, **conv)

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step; ``state=None`` means a zero hidden state. Returns ``(h', h')``."""
        if state is None:
            state = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        reset_i, update_i, new_i = self.input_gates(x).chunk(3, dim=1)
        reset_h, update_h, new_h = self.hidden_gates(state).chunk(3, dim=1)
        reset = torch.sigmoid(reset_i + reset_h)
        update = torch.sigmoid(update_i + update_h)
        candidate = torch.tanh(new_i + reset * new_h)
        hidden = (1 - update) * state + update * candidate
        return hidden, hidden


class ConvLSTM(nn.Module):
    """Convolutional LSTM cell (event_flow's ``ConvLSTM``); the output is the hidden state ``h``.

    One conv of ``[x, h]`` gives the input, forget ("remember"), output and cell gates (in that order):
    ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)``, ``h' = sigmoid(o) * tanh(c')``. State ``(h, c)``;
    ``state=None`` means zeros. PyTorch's default init. ``stride`` must be 1 (see :class:`ConvGRU`).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        _check_unit_stride("ConvLSTM", stride)
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2
        )

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One step; returns ``(h', (h', c'))``."""
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
            state = (zeros, zeros)
        if len(state) != 2:
            raise ValueError(f"ConvLSTM: state has {len(state)} tensors, expected 2 (h, c)")
        hidden, cell = state
        in_gate, forget_gate, out_gate, cell_gate = self.gates(torch.cat([x, hidden], dim=1)).chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        return hidden, (hidden, cell)
