"""Which images of warped events a CMax loss builds: reference times, reach and temporal scales.

Time is counted in passes over an accumulation window of P passes; references are pass boundaries
(0 = start of the first pass, P = end of the last). At scale s the window is cut into 2**s sub-windows
of about P / 2**s passes (boundaries ``j * P // 2**s``; scales with more sub-windows than passes are
skipped); the events of a sub-window are imaged at its references only: every boundary inside it
(``"all"``) or its two ends (``"ends"``). An event of pass k reaches the boundaries
``[k - reach + 1, k + reach]`` (it is carried through at most ``reach`` flow maps, its own included).
Each (sub-window, reference) pair is one image slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor

ReferenceMode = Literal["all", "ends"]
REFERENCE_MODES = ("all", "ends")


@dataclass(frozen=True)
class ScalePlan:
    """The image slots of one temporal scale.

    Attributes:
        slots: [P, U] long, the slot where an event of pass k is imaged at ``references[u]``, -1 where it
            is not (boundary outside the event's sub-window, not a reference, or beyond its reach).
        normaliser: [P] float, passes: an event of pass k at time tau gets the timestamp weight
            ``1 - |t_ref - tau| / normaliser[k]`` at reference t_ref (its sub-window's length, capped by
            the reach), in [0, 1] at every reference it reaches.
        num_slots: number of slots (images per polarity) of this scale.
    """

    slots: Tensor
    normaliser: Tensor
    num_slots: int


@dataclass(frozen=True)
class ReferencePlan:
    """The references of all scales: ``references`` [U] (float, passes, sorted) and one plan per scale."""

    references: Tensor
    scales: tuple[ScalePlan, ...]

    def to(self, device: torch.device) -> ReferencePlan:
        """The same plan with its tensors on ``device``."""
        scales = tuple(
            ScalePlan(s.slots.to(device), s.normaliser.to(device), s.num_slots) for s in self.scales
        )
        return ReferencePlan(self.references.to(device), scales)


@lru_cache(maxsize=64)
def plan_references(
    num_passes: int, references: ReferenceMode = "all", num_scales: int = 1, reach: int | None = None
) -> ReferencePlan:
    """The image slots of an accumulation window of ``num_passes`` passes (CPU tensors; see the module)."""
    if num_passes < 1:
        raise ValueError(f"num_passes: expected at least 1 pass; got {num_passes}")
    if references not in REFERENCE_MODES:
        raise ValueError(f"references: expected one of {', '.join(REFERENCE_MODES)}; got {references!r}")
    if num_scales < 1:
        raise ValueError(f"scales: expected at least 1 temporal scale; got {num_scales}")
    if reach is not None and reach < 1:
        raise ValueError(f"reach: expected None or at least 1 pass; got {reach}")
    sub_windows = []
    for scale in range(num_scales):
        parts = 2**scale
        if parts > num_passes:
            break
        edges = [j * num_passes // parts for j in range(parts + 1)]
        sub_windows.append(list(pairwise(edges)))
    boundaries = sorted(
        {b for windows in sub_windows for lo, hi in windows for b in _refs(lo, hi, references)}
    )
    column = {boundary: u for u, boundary in enumerate(boundaries)}
    scales = []
    for windows in sub_windows:
        slots = torch.full((num_passes, len(boundaries)), -1, dtype=torch.long)
        normaliser = torch.zeros(num_passes, dtype=torch.float64)
        num_slots = 0
        for lo, hi in windows:
            normaliser[lo:hi] = hi - lo if reach is None else min(reach, hi - lo)
            for boundary in _refs(lo, hi, references):
                for k in range(lo, hi):
                    if reach is None or k - reach < boundary <= k + reach:
                        slots[k, column[boundary]] = num_slots
                num_slots += 1
        scales.append(ScalePlan(slots, normaliser, num_slots))
    return ReferencePlan(torch.tensor(boundaries, dtype=torch.float64), tuple(scales))


def _refs(lo: int, hi: int, references: ReferenceMode) -> list[int]:
    return list(range(lo, hi + 1)) if references == "all" else [lo, hi]
