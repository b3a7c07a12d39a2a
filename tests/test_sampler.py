"""The sequential batch sampler: stream order, end-of-recording flags, coverage, determinism."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

import pytest
from lightning.fabric.utilities.data import _set_sampler_epoch
from torch.utils.data import DataLoader

from tinyflow.data.sampler import SequentialBatchSampler

COUNTS = [7, 3, 12, 5, 9]


def streams_of(sampler: SequentialBatchSampler) -> dict[int, list]:
    """Keys of each stream slot in time order."""
    per_slot: dict[int, list] = defaultdict(list)
    for batch in sampler:
        assert len(batch) == sampler.batch_size * sampler.seq_len
        for i, key in enumerate(batch):
            per_slot[i % sampler.batch_size].append(key)
    return per_slot


@pytest.mark.parametrize("batch_size,seq_len", [(1, 1), (2, 3), (3, 4)])
def test_validation_pass_covers_every_window_once_in_order(batch_size: int, seq_len: int) -> None:
    sampler = SequentialBatchSampler(COUNTS, batch_size, seq_len, shuffle=False)
    seen = []
    for keys in streams_of(sampler).values():
        active = [k for k in keys if k.active]
        seen += [(k.recording, k.window) for k in active]
        for prev, cur in pairwise(active):
            if cur.recording == prev.recording and cur.episode == prev.episode:
                assert cur.window == prev.window + 1 and not prev.end_of_recording
            else:
                assert prev.end_of_recording and cur.window == 0
        assert not active or active[-1].end_of_recording
    assert sorted(seen) == sorted((r, w) for r, c in enumerate(COUNTS) for w in range(c))
    assert len(sampler) == len(list(sampler))


def test_training_streams_are_contiguous_and_shuffled() -> None:
    sampler = SequentialBatchSampler(COUNTS * 4, batch_size=2, seq_len=3, shuffle=True, seed=1)
    keys_by_slot = streams_of(sampler)
    starts = set()
    for keys in keys_by_slot.values():
        assert all(k.active for k in keys)
        for prev, cur in pairwise(keys):
            if prev.end_of_recording:
                assert cur.episode != prev.episode
                starts.add(cur.window)
            else:
                assert (cur.recording, cur.episode, cur.window) == (
                    prev.recording,
                    prev.episode,
                    prev.window + 1,
                )
    assert len(starts) > 1, "random start offsets expected"
    sampler.set_epoch(1)
    first_epoch = [k.recording for k in keys_by_slot[0]]
    assert [k.recording for k in streams_of(sampler)[0]] != first_epoch
    sampler.set_epoch(0)
    assert [k.recording for k in streams_of(sampler)[0]] == first_epoch
    assert len(sampler) == len(list(sampler))


def test_ranks_share_recordings_disjointly() -> None:
    recs = []
    for rank in range(2):
        sampler = SequentialBatchSampler(COUNTS, 1, 2, shuffle=False, rank=rank, world_size=2)
        recs.append({k.recording for batch in sampler for k in batch if k.active})
    assert recs[0].isdisjoint(recs[1]) and recs[0] | recs[1] == set(range(len(COUNTS)))


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="batch_size and seq_len must be >= 1"):
        SequentialBatchSampler(COUNTS, 0, 1, shuffle=False)


def test_training_batches_never_change_recording_inside_a_stream() -> None:
    sampler = SequentialBatchSampler(COUNTS * 3, batch_size=2, seq_len=3, shuffle=True, seed=3)
    for batch in sampler:
        for b in range(2):
            stream = batch[b::2]
            assert len({(k.recording, k.episode) for k in stream}) == 1
            assert not any(k.end_of_recording for k in stream[:-1])


def test_a_training_epoch_has_a_fixed_length_and_ends_every_stream() -> None:
    sampler = SequentialBatchSampler(COUNTS * 3, batch_size=2, seq_len=3, shuffle=True, seed=3)
    chunks = sum((c - 3 + 1) // 3 for c in COUNTS * 3)  # 2 + 0 + 3 + 1 + 2 per copy
    assert sampler.training_batches_per_epoch() == chunks // 2 == len(sampler)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        plan = list(sampler)
        assert len(plan) == chunks // 2
        assert all(key.end_of_recording for key in plan[-1][-2:]), "every stream ends with the epoch"


def test_lightning_advances_the_epoch_and_a_resumed_pass_skips_what_was_trained() -> None:
    sampler = SequentialBatchSampler(COUNTS * 3, batch_size=2, seq_len=3, shuffle=True, seed=3)
    loader = DataLoader(range(100), batch_sampler=sampler)
    first = list(sampler)
    _set_sampler_epoch(loader, 1)  # what Lightning calls at every epoch start
    second = list(sampler)
    assert sampler.epoch == 1 and second != first
    sampler.resume_at(1, 4)
    assert list(sampler) == second[4:], "the resumed pass starts after the batches already trained on"
    assert list(sampler) == second, "the skip applies once"


def test_ranks_get_equal_training_epochs_of_disjoint_recordings() -> None:
    plans = [
        list(SequentialBatchSampler(COUNTS * 4, 2, 3, True, seed=0, rank=r, world_size=2)) for r in (0, 1)
    ]
    assert len(plans[0]) == len(plans[1]) > 0
    recordings = [{k.recording for batch in plan for k in batch} for plan in plans]
    assert recordings[0].isdisjoint(recordings[1])
