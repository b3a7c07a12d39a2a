"""Whitespace-separated text tables (the RPG layouts of ECD and UZH-FPV), read in chunks with clear errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.io.recording import seconds_to_us

TEXT_CHUNK_LINES = 1_000_000


def _bad_line(lines: list[str], columns: Sequence[str]) -> tuple[int, str]:
    """Offset and a description of the first line that is not ``len(columns)`` numbers."""
    for offset, line in enumerate(lines):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != len(columns):
            return offset, f"has {len(fields)} fields"
        try:
            [float(field) for field in fields]
        except ValueError:
            return offset, "has a field that is not a number"
    return 0, "could not be parsed"


def iter_table(
    path: Path, columns: Sequence[str], chunk_lines: int = TEXT_CHUNK_LINES
) -> Iterator[np.ndarray]:
    """float64 [n, len(columns)] blocks of a text table; ``#`` starts a comment, blank lines are skipped.

    Raises:
        FileNotFoundError: no such file.
        EventDataError: a line is not ``len(columns)`` numbers; names the file, line and columns.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a text table '{' '.join(columns)}')")
    with path.open("r") as file:
        first_line = 1
        while lines := list(itertools.islice(file, chunk_lines)):
            try:
                block = np.loadtxt(lines, dtype=np.float64, comments="#", ndmin=2)
                if block.size and block.shape[1] != len(columns):
                    raise ValueError
            except ValueError:
                offset, problem = _bad_line(lines, columns)
                raise EventDataError(
                    f"{path}: line {first_line + offset} {problem}; expected {len(columns)} numbers "
                    f"'{' '.join(columns)}' per line (a truncated or corrupted file?)"
                ) from None
            first_line += len(lines)
            if block.size:
                yield block


def read_table(path: Path, columns: Sequence[str]) -> np.ndarray:
    """The whole table, float64 [N, len(columns)] (see :func:`iter_table`); empty tables are an error."""
    blocks = list(iter_table(path, columns))
    if not blocks:
        raise EventDataError(f"{path}: no data lines; expected '{' '.join(columns)}' per line")
    return np.concatenate(blocks)


EVENT_COLUMNS = ("t", "x", "y", "p")


def read_events_txt(path: Path) -> tuple[Events, float]:
    """Events of an ``events.txt`` (``t[s] x y p`` per line, p in {0, 1}) and its first timestamp in s.

    Times become µs since the first event. Coordinates must be whole pixels.
    """
    parts, t0_s = [], None
    for block in iter_table(path, EVENT_COLUMNS):
        t0_s = float(block[0, 0]) if t0_s is None else t0_s
        xy = block[:, 1:3]
        if np.any(xy != np.round(xy)) or np.any(xy < 0):
            raise EventDataError(f"{path}: columns x, y must be whole non-negative pixel coordinates")
        p = block[:, 3]
        if np.any((p != 0) & (p != 1)):
            raise EventDataError(
                f"{path}: column p must be 0 (OFF) or 1 (ON), got {p[(p != 0) & (p != 1)][0]}"
            )
        parts.append(
            Events(
                xy[:, 0].astype(np.uint16),
                xy[:, 1].astype(np.uint16),
                seconds_to_us(block[:, 0], t0_s),
                p.astype(np.uint8),
            )
        )
    if t0_s is None:
        raise EventDataError(f"{path}: no events; expected lines 't x y p'")
    return Events.concatenate(parts).validate(source=str(path)), t0_s
