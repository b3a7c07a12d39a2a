"""The padded event list that the CMax losses and the focus metrics consume, and its input checks.

Layout: ``events`` FloatTensor[B, N, 4] with columns (x, y, t_norm, p_sign): x = pixel column and
y = pixel row (integers stored as float), t_norm in [0, 1] normalised over the window's own time span,
p_sign in {-1, +1}; ``mask`` BoolTensor[B, N], False marks padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tinyflow.events.core import EventDataError


@dataclass(frozen=True)
class EventsWithFlow:
    """A padded event list of one window with the flow associated to each event.

    Attributes:
        events: [B, N, 4] (x, y, t_norm, p_sign), t_norm normalised over the window.
        mask: [B, N] bool, False = padding.
        flow_at_events: [B, N, 2] (x, y) displacement in pixels over the whole window.
    """

    events: Tensor
    mask: Tensor
    flow_at_events: Tensor


def check_event_list(events: Tensor, mask: Tensor, sensor_size: tuple[int, int]) -> None:
    """Raise :class:`EventDataError` unless ``events``/``mask`` follow the layout of this module.

    Only unpadded events (mask True) are checked for values: integer x in [0, W-1], integer y in
    [0, H-1], t_norm in [0, 1], p_sign in {-1, +1}.
    """
    if events.ndim != 3 or events.shape[-1] != 4 or not events.is_floating_point():
        raise EventDataError(
            f"events: expected a float tensor [B, N, 4] with columns (x, y, t_norm, p_sign); "
            f"got {events.dtype} {tuple(events.shape)}"
        )
    if mask.dtype != torch.bool or mask.shape != events.shape[:2]:
        raise EventDataError(
            f"events: expected a bool mask of shape {tuple(events.shape[:2])}; "
            f"got {mask.dtype} {tuple(mask.shape)}"
        )
    height, width = sensor_size
    if _all_valid(events, mask, sensor_size):
        return
    x, y, t_norm, p_sign = events.unbind(-1)
    failures = (
        ("x (pixel column)", x, f"an integer in [0, {width - 1}]", _is_integer_in(x, width)),
        ("y (pixel row)", y, f"an integer in [0, {height - 1}]", _is_integer_in(y, height)),
        ("t_norm", t_norm, "in [0, 1]", (t_norm >= 0) & (t_norm <= 1)),
        ("p_sign", p_sign, "-1 or +1", (p_sign == 1) | (p_sign == -1)),
    )
    for column, values, expected, ok in failures:
        column_bad = mask & ~ok
        if bool(column_bad.any()):
            batch, index = (int(i) for i in column_bad.nonzero()[0])
            raise EventDataError(
                f"events: column {column} must be {expected} for unpadded events; "
                f"got {float(values[batch, index])} at batch element {batch}, event {index}"
            )


def _is_integer_in(values: Tensor, size: int) -> Tensor:
    return (values >= 0) & (values <= size - 1) & (values == torch.round(values))


def _all_valid(events: Tensor, mask: Tensor, sensor_size: tuple[int, int]) -> bool:
    """Whether every unpadded event is valid, from a few whole-tensor reductions (the per-column checks
    find the culprit).

    Padding is replaced by a valid event first. Scaled and shifted, every column of a valid event lies in
    [0, 1] (x / (W - 1), y / (H - 1), t_norm, (p_sign + 1) / 2); x, y and p_sign equal their floor and
    p_sign is not 0.
    """
    if events.numel() == 0:
        return True
    if not bool(mask.all()):
        events = torch.where(mask.unsqueeze(-1), events, events.new_tensor([0.0, 0.0, 0.0, 1.0]))
    height, width = sensor_size
    divisor = events.new_tensor([max(width - 1, 0.5), max(height - 1, 0.5), 1.0, 2.0])  # exact at the ends
    lowest, highest = torch.aminmax((events + events.new_tensor([0.0, 0.0, 0.0, 1.0])).div_(divisor))
    if not (float(lowest) >= 0 and float(highest) <= 1):  # False for NaN too
        return False
    fractions = torch.frac(events)
    fractions[..., 2] = 0  # t_norm may be fractional
    return not bool(fractions.any()) and not bool((events[..., 3] == 0).any())
