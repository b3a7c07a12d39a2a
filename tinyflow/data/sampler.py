"""Sequential batch sampling for recurrent networks.

B parallel streams each walk the windows of one recording in order and move on to a new
recording when their own ends. A batch holds ``seq_len`` consecutive windows of each stream,
time-major: ``[t0 b0, t0 b1, ..., t1 b0, ...]``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler

EPISODES_PER_EPOCH = 1_000_000


@dataclass(frozen=True)
class WindowKey:
    """What a dataset needs to load one window of a stream.

    Attributes:
        recording: index of the recording.
        window: index of the window inside the recording.
        episode: id of this visit of the recording by a stream (seeds per-episode augmentation).
        end_of_recording: True for the last window of the visit (state is reset after it).
        active: False for padding slots of idle streams (validation tail); their content is zero.
    """

    recording: int
    window: int
    episode: int
    end_of_recording: bool
    active: bool = True


PADDING = WindowKey(recording=-1, window=-1, episode=-1, end_of_recording=True, active=False)


class SequentialBatchSampler(Sampler[list[WindowKey]]):
    """Batches of ``batch_size`` streams x ``seq_len`` consecutive windows.

    Args:
        window_counts: number of windows of each recording.
        batch_size: number of parallel streams B.
        seq_len: windows per stream in one batch (T).
        shuffle: training mode: recordings in random order and a random start offset in
            ``[0, seq_len)`` windows for each visit; a visit holds whole chunks of ``seq_len``
            windows only, so a stream never changes recording inside a batch (its tail is
            dropped); the epoch ends when a stream runs out of recordings (with fewer recordings
            than streams, the recordings are visited several times per epoch). Otherwise a deterministic full pass: every window exactly once, idle
            streams padded with inactive keys until all streams are done.
        seed: base seed; the plan of epoch e is a pure function of (seed, e).
        rank, world_size: for distributed training, each rank walks a disjoint share of recordings; in
            training every rank gets as many batches as the rank with the fewest (DDP synchronises every
            optimiser step), so each rank needs at least one recording.
    """

    def __init__(
        self,
        window_counts: Sequence[int],
        batch_size: int,
        seq_len: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of world_size {world_size}: expected 0 <= rank < world_size")
        recordings = sum(int(c) > 0 for c in window_counts)
        if shuffle and world_size > 1 and recordings < world_size:
            raise ValueError(
                f"{recordings} recordings with windows cannot be shared by {world_size} ranks: "
                "each rank needs at least one"
            )
        self.window_counts = [int(c) for c in window_counts]
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._plan_cache: tuple[int, list[list[WindowKey]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _recording_queue(self, rng: np.random.Generator, rank: int) -> list[int]:
        """A rank's recordings in visiting order; in training, repeated until every stream gets one."""
        queue: list[int] = []
        while True:
            order = (
                rng.permutation(len(self.window_counts))
                if self.shuffle
                else np.arange(len(self.window_counts))
            )
            mine = [int(r) for r in order[rank :: self.world_size] if self.window_counts[r] > 0]
            queue += mine
            if not self.shuffle or not mine or len(queue) >= self.batch_size:
                return queue

    def _plan(self) -> list[list[WindowKey]]:
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        batches = self._rank_plan(self.rank)
        if self.shuffle and self.world_size > 1:  # the plans of all ranks are pure functions of the seed
            batches = batches[: min(len(self._rank_plan(r)) for r in range(self.world_size))]
        self._plan_cache = (self.epoch, batches)
        return batches

    def _rank_plan(self, rank: int) -> list[list[WindowKey]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        queue = self._recording_queue(rng, rank)
        episode_base = self.epoch * EPISODES_PER_EPOCH
        next_episode = 0
        # Per stream: [recording, next window, last window + 1, episode] or None when idle.
        streams: list[list[int] | None] = [None] * self.batch_size

        def start_visit() -> list[int] | None:
            nonlocal next_episode
            while queue:
                rec = queue.pop(0)
                start, stop = 0, self.window_counts[rec]
                if self.shuffle:
                    start = int(rng.integers(0, self.seq_len))
                    stop = start + (stop - start) // self.seq_len * self.seq_len
                if stop > start:
                    next_episode += 1
                    return [rec, start, stop, episode_base + next_episode]
            return None

        batches: list[list[WindowKey]] = []
        while True:
            batch: list[WindowKey] = []
            for _ in range(self.seq_len):
                for b in range(self.batch_size):
                    if streams[b] is None or streams[b][1] >= streams[b][2]:
                        streams[b] = start_visit()
                    stream = streams[b]
                    if stream is None:
                        if self.shuffle:
                            return batches
                        batch.append(PADDING)
                        continue
                    rec, win, stop, episode = stream
                    batch.append(WindowKey(rec, win, episode, end_of_recording=win == stop - 1))
                    stream[1] += 1
            if all(not key.active for key in batch):
                break
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[WindowKey]]:
        yield from self._plan()

    def __len__(self) -> int:
        return len(self._plan())
