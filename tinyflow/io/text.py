"""Whitespace-separated text tables (the RPG layouts of ECD and UZH-FPV), read in chunks with clear errors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tinyflow.events.core import EventDataError, Events
from tinyflow.io.checks import EventKeys, EventStreamCheck
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


def _iter_blocks(
    path: Path, columns: Sequence[str], chunk_lines: int | None = None
) -> Iterator[tuple[np.ndarray, list[str], int]]:
    """``(block, lines, first line number)`` per chunk of lines; ``block`` is float64 [n, len(columns)], maybe empty."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a text table '{' '.join(columns)}')")
    with path.open("r") as file:
        first_line = 1
        while lines := list(itertools.islice(file, chunk_lines or TEXT_CHUNK_LINES)):
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
            yield block.reshape(-1, len(columns)), lines, first_line
            first_line += len(lines)


def iter_table(path: Path, columns: Sequence[str], chunk_lines: int | None = None) -> Iterator[np.ndarray]:
    """float64 [n, len(columns)] blocks of a text table; ``#`` starts a comment, blank lines are skipped.

    Raises:
        FileNotFoundError: no such file.
        EventDataError: a line is not ``len(columns)`` numbers; names the file, line and columns.
    """
    for block, _, _ in _iter_blocks(path, columns, chunk_lines):
        if block.size:
            yield block


def read_table(path: Path, columns: Sequence[str]) -> np.ndarray:
    """The whole table, float64 [N, len(columns)] (see :func:`iter_table`); empty tables are an error."""
    blocks = list(iter_table(path, columns))
    if not blocks:
        raise EventDataError(f"{path}: no data lines; expected '{' '.join(columns)}' per line")
    return np.concatenate(blocks)


EVENT_COLUMNS = ("t", "x", "y", "p")
TEXT_KEYS = EventKeys("column x", "column y", "column t", "column p", t_unit="s")


def data_line_number(path: Path, index: int) -> int:
    """1-based line of the ``index``-th data line (not blank, not a ``#`` comment) of a text table."""
    count = -1
    with path.open("r") as file:
        for number, line in enumerate(file, start=1):
            if line.split("#", 1)[0].strip():
                count += 1
                if count == index:
                    return number
    raise IndexError(f"{path}: has {count + 1} data lines, asked for data line {index}")


def _first_line(lines: list[str], bad: np.ndarray, first_line: int) -> int:
    """Line number of the first data row flagged in ``bad`` among ``lines`` (which start at ``first_line``)."""
    rows = [first_line + i for i, line in enumerate(lines) if line.split("#", 1)[0].strip()]
    return rows[int(np.argmax(bad))]


def read_events_txt(path: Path, sensor_size: tuple[int, int] | None = None) -> tuple[Events, float]:
    """Events of an ``events.txt`` (``t[s] x y p`` per line, p in {0, 1}) and its first timestamp in s.

    Times become µs since the first event. Checked as the lines are parsed: coordinates must be whole
    pixels (inside ``sensor_size`` when given) and timestamps non-decreasing; errors quote the line.
    """
    path = Path(path)
    height, width = sensor_size if sensor_size is not None else (2**16, 2**16)
    check = EventStreamCheck(
        str(path),
        TEXT_KEYS,
        (height, width),
        min_t_us=None,
        position=lambda i: f"line {data_line_number(path, i)} of the file",
    )
    parts, t0_s = [], None
    for block, lines, first_line in _iter_blocks(path, EVENT_COLUMNS):
        if not block.size:
            continue
        t0_s = float(block[0, 0]) if t0_s is None else t0_s
        xy = block[:, 1:3]
        bad_xy = np.any((xy != np.round(xy)) | (xy < 0), axis=1)
        if bad_xy.any():
            i = int(np.argmax(bad_xy))
            raise EventDataError(
                f"{path}: columns x, y must be whole non-negative pixel coordinates, got x={xy[i, 0]:g} "
                f"y={xy[i, 1]:g} at line {_first_line(lines, bad_xy, first_line)}"
            )
        p = block[:, 3]
        bad_p = (p != 0) & (p != 1)
        if bad_p.any():
            raise EventDataError(
                f"{path}: column p must be 0 (OFF) or 1 (ON), got {p[bad_p][0]:g} at line "
                f"{_first_line(lines, bad_p, first_line)}"
            )
        events = Events(
            xy[:, 0].astype(np.uint16),
            xy[:, 1].astype(np.uint16),
            seconds_to_us(block[:, 0], t0_s),
            p.astype(np.uint8),
        )
        check.add(xy[:, 0], xy[:, 1], events.t_us, events.p, block[:, 0])
        parts.append(events)
    if t0_s is None:
        raise EventDataError(f"{path}: no events; expected lines 't x y p'")
    return Events.concatenate(parts), t0_s
