"""The windows of one recording read and encoded in order, as a stream (inference, benchmarks).

Consecutive windows are read together (:meth:`~tinyflow.io.recording.Recording.window_events`) and each is
encoded into one reused array (:class:`~tinyflow.events.encodings.WindowEncoder`): the inputs equal
:func:`~tinyflow.events.encodings.encode` of each window, without per-window reads or full-sensor
allocations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from tinyflow.events.encodings import WindowEncoder
from tinyflow.events.windows import Window
from tinyflow.io.recording import READ_SPAN, Recording


def encoded_windows(
    recording: Recording,
    windows: Sequence[Window],
    encoding: str,
    num_bins: int,
    span: int = READ_SPAN,
) -> Iterator[tuple[Window, np.ndarray]]:
    """``(window, input)`` for each window in order; ``input`` float32 [C, H, W] is read-only and is
    overwritten by the next window's (copy it to keep it).

    Args:
        encoding, num_bins: as :func:`~tinyflow.events.encodings.encode`.
        span: events read at once (see :meth:`~tinyflow.io.recording.Recording.window_events`).
    """
    encoder = WindowEncoder(recording.sensor_size, encoding, num_bins)
    bounds = np.array([(w.start, w.stop) for w in windows], np.int64).reshape(-1, 2)
    for window, events in zip(windows, recording.window_events(bounds, span), strict=True):
        yield window, encoder(events, window.t_start_us, window.t_end_us)
