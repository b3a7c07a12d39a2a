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
        shuffle: training mode: streams take recordings from an endless queue of random permutations,
            each visit from a random start offset in ``[0, seq_len)`` windows and of whole chunks of
            ``seq_len`` windows only, so a stream never changes recording inside a batch (its tail is
            dropped). An epoch has :meth:`training_batches_per_epoch` batches (fixed: Lightning counts
            epochs by it, and a resumed run finds its place by it), and every stream ends with it (its
            state is reset). Otherwise a deterministic full pass: every window exactly once, idle
            streams padded with inactive keys until all streams are done.
        seed: base seed; the plan of epoch e is a pure function of (seed, e).
        rank, world_size: for distributed training, each rank walks a disjoint share of recordings (each
            rank needs at least one); every rank gets the same number of batches (DDP synchronises every
            optimiser step).
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
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Set the epoch, and start the next pass after its first ``batches_done`` batches (a resumed run:
        those were trained on before the checkpoint). ``len()`` stays the epoch's full length.

        The epoch is set here, not only by ``set_epoch``: a loader with workers draws its first batches
        from the sampler as soon as its iterator exists, before Lightning sets the epoch.
        """
        if epoch < 0 or batches_done < 0:
            raise ValueError(
                f"resume_at: expected epoch >= 0 and batches_done >= 0; got {epoch}, {batches_done}"
            )
        self.epoch, self._skip = epoch, batches_done

    @property
    def sampler(self) -> SequentialBatchSampler:
        """This batch sampler itself: Lightning advances epochs through ``loader.batch_sampler.sampler``."""
        return self

    def training_batches_per_epoch(self) -> int:
        """Batches of a training epoch: every recording's whole chunks of ``seq_len`` windows (counted for
        the largest start offset, ``seq_len - 1``), shared by the ``batch_size`` streams of every rank.
        The same on every rank and in every epoch, whatever the random order and offsets."""
        chunks = sum(max(0, (count - self.seq_len + 1) // self.seq_len) for count in self.window_counts)
        return chunks // (self.batch_size * self.world_size)

    def _plan(self) -> list[list[WindowKey]]:
        if self._plan_cache is None or self._plan_cache[0] != self.epoch:
            plan = self._training_plan() if self.shuffle else self._validation_plan()
            self._plan_cache = (self.epoch, plan)
        return self._plan_cache[1]

    def _training_plan(self) -> list[list[WindowKey]]:
        """:meth:`training_batches_per_epoch` batches; streams take recordings from an endless queue of
        permutations (this rank's share of each), and every stream ends with the epoch."""
        rng = np.random.default_rng((self.seed, self.epoch))
        queue: list[int] = []
        next_episode = self.epoch * EPISODES_PER_EPOCH

        def start_visit() -> list[int]:
            nonlocal next_episode
            while True:
                if not queue:
                    order = rng.permutation(len(self.window_counts))[self.rank :: self.world_size]
                    queue.extend(int(r) for r in order if self.window_counts[r] >= self.seq_len)
                rec = queue.pop(0)
                start = int(rng.integers(0, self.seq_len))
                stop = start + (self.window_counts[rec] - start) // self.seq_len * self.seq_len
                if stop > start:
                    next_episode += 1
                    return [rec, start, stop, next_episode]

        num_batches = self.training_batches_per_epoch()
        streams: list[list[int] | None] = [None] * self.batch_size  # [recording, window, stop, episode]
        batches: list[list[WindowKey]] = []
        for index in range(num_batches):
            batch: list[WindowKey] = []
            for t in range(self.seq_len):
                for b in range(self.batch_size):
                    if streams[b] is None or streams[b][1] >= streams[b][2]:
                        streams[b] = start_visit()
                    rec, win, stop, episode = streams[b]
                    last = win == stop - 1 or (index == num_batches - 1 and t == self.seq_len - 1)
                    batch.append(WindowKey(rec, win, episode, end_of_recording=last))
                    streams[b][1] += 1
            batches.append(batch)
        return batches

    def _validation_plan(self) -> list[list[WindowKey]]:
        """Every window of this rank's recordings once, in order; idle streams padded."""
        queue = [
            r for r in range(self.rank, len(self.window_counts), self.world_size) if self.window_counts[r]
        ]
        streams: list[list[int] | None] = [None] * self.batch_size  # [recording, window, stop, episode]
        next_episode = 0
        batches: list[list[WindowKey]] = []
        while True:
            batch: list[WindowKey] = []
            for _ in range(self.seq_len):
                for b in range(self.batch_size):
                    if (streams[b] is None or streams[b][1] >= streams[b][2]) and queue:
                        next_episode += 1
                        rec = queue.pop(0)
                        streams[b] = [rec, 0, self.window_counts[rec], next_episode]
                    stream = streams[b]
                    if stream is None or stream[1] >= stream[2]:
                        batch.append(PADDING)
                        continue
                    rec, win, stop, episode = stream
                    batch.append(WindowKey(rec, win, episode, end_of_recording=win == stop - 1))
                    stream[1] += 1
            if all(not key.active for key in batch):
                return batches
            batches.append(batch)

    def __iter__(self) -> Iterator[list[WindowKey]]:
        skip, self._skip = self._skip, 0  # a resumed pass skips once
        yield from self._plan()[skip:]

    def __len__(self) -> int:
        """Batches per epoch; a training epoch's count needs no plan (see :meth:`training_batches_per_epoch`)."""
        return self.training_batches_per_epoch() if self.shuffle else len(self._plan())
