"""w2v/feed.py, the reader threads of the GPU kernels: its batches are exactly dataset.py's (contexts, one target
per window, int32 offsets), in the same stream order with any number of readers and from any start batch; its
buffers are reused and bounded; a corrupt shard is one line; stopping early ends the readers. Also w2v/shards.py's
unit rebuild (build_unit) and window cut (cut_unit) from any pair of a unit to any other."""
import threading

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from w2v import feed
from w2v.kernels import steps
from w2v.common import StageError
from dataset import PairsDataset
from w2v.feed import WindowFeed
from w2v.shards import WindowShards, cut_unit
from helpers import assert_windows_whole_but_at_batch_edges, reference_windows


def lean_batches(data_dir, batch_size: int, num_workers: int, start_batch: int = 0) -> list[tuple]:
    """The feed's batches, copied out of its buffers (which the next batch may reuse)."""
    dataset = PairsDataset(data_dir, batch_size=batch_size, start_batch=start_batch)
    return [(b.context.clone(), b.window_target.clone(), b.window_starts.clone(), b.longest)
            for b in WindowFeed(dataset.plan, num_workers)]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size, start_batch", [(333, 0), (1000, 0), (333, 4)])
def test_lean_batches_are_the_loaders_batches_cut_down(windows_dir, num_workers, batch_size, start_batch):
    # batches of 1,000 span units (of ~400 pairs); 333 cut windows at both edges; start_batch 4 resumes inside
    # a worker's unit
    dataset = PairsDataset(windows_dir, batch_size=batch_size, start_batch=start_batch)
    expected = list(DataLoader(dataset, batch_size=None, num_workers=num_workers))
    got = lean_batches(windows_dir, batch_size, num_workers, start_batch)
    assert len(got) == len(expected) > 3
    for (context, window_target, window_starts, longest), batch in zip(got, expected):
        assert context.dtype == window_target.dtype == window_starts.dtype == torch.int32
        assert torch.equal(context, batch.context)
        assert torch.equal(window_starts, batch.window_starts)
        assert torch.equal(window_target, batch.window_target)
        assert longest == batch.longest


@pytest.mark.parametrize("num_workers", [1, 3])
def test_lean_windows_are_the_shards_windows(windows_dir, num_workers):
    # From the shards' columns alone (reference_windows, plain loops), not from dataset.py: every window whole
    # but where a batch's edge cuts it, every one once.
    got = lean_batches(windows_dir, 333, num_workers)
    assert_windows_whole_but_at_batch_edges(got, reference_windows(windows_dir))
    assert max(longest for *_, longest in got) <= 14


def test_buffers_are_reused_and_bounded(windows_dir):
    dataset = PairsDataset(windows_dir, batch_size=50)
    reference = reference_windows(windows_dir)
    buffers, batches = set(), 0
    for batch in WindowFeed(dataset.plan, num_workers=2):
        buffers.add(batch.context.data_ptr())
        # checked now: the buffer is refilled once the next batch is asked for
        starts, context = batch.window_starts.numpy(), batch.context.numpy().tolist()
        for w, target in enumerate(batch.window_target.tolist()):
            piece, whole = context[starts[w]:starts[w + 1]], list(reference[target])
            assert piece == whole or (w in (0, batch.n_windows - 1) and (
                whole[:len(piece)] == piece or whole[-len(piece):] == piece))
        batches += 1
    assert batches == len(dataset.plan.stream_workers(2)) > 50
    assert len(buffers) <= 2 * feed.FEED_SLOTS


def test_a_corrupt_shard_is_one_line_and_the_readers_end(windows_dir):
    dataset = PairsDataset(windows_dir, batch_size=300)
    path = windows_dir / "pairs" / "shard-00001.parquet"
    path.write_bytes(path.read_bytes()[:200] + b"\0" * 100)  # the footer read at open is gone too
    before = threading.active_count()
    with pytest.raises(StageError, match=f"^{path} is corrupt"):
        list(WindowFeed(dataset.plan, num_workers=2))
    assert threading.active_count() == before


def test_stopping_early_ends_the_readers(windows_dir):
    before = threading.active_count()
    dataset = PairsDataset(windows_dir, batch_size=100)
    lean_feed = WindowFeed(dataset.plan, num_workers=2)
    for _ in lean_feed:
        break
    lean_feed.close()
    assert threading.active_count() == before
    with pytest.raises(StageError, match="^a WindowFeed is iterated once"):
        next(iter(lean_feed))


def test_train_reads_through_the_feed_for_the_triton_steps_only():
    assert steps.reads_feed("sg", "ns", "triton") == ("triton" in steps.kernel_names())
    assert not any(steps.reads_feed(model, loss, kernel) for model in ("sg", "cbow")
                   for loss in ("ns", "hs") for kernel in ("window", "torch"))


def test_units_rebuilt_and_cut_from_any_pair_to_any_other(windows_dir):
    # a unit's windows are the shards' windows (reference_windows: plain loops over the columns), each once
    shards = WindowShards(windows_dir, batch_size=1, seed=3)
    reference = reference_windows(windows_dir)
    seen = []
    for shard, u, rows in shards.units:
        unit = shards.read_unit(shard, u)
        assert unit.pairs == rows == len(unit.context)
        for w, target in enumerate(unit.target.tolist()):
            assert tuple(unit.context[unit.first[w]:unit.first[w + 1]].tolist()) == reference[target]
            seen.append(target)
    assert sorted(seen) == sorted(reference)
    # pairs begin:end of a unit cut into a batch at an offset: a window cut by begin starts at the batch's offset
    unit = shards.read_unit(1, 0)
    n = unit.pairs
    target_of_pair = np.repeat(unit.target, np.diff(unit.first))
    for begin, end in ((0, n), (5, n - 3), (17, 18), (n - 1, n), (100, 100)):
        target, starts = np.empty(n, np.int32), np.empty(n + 1, np.int32)
        got = cut_unit(unit.first, unit.target, begin, end, 40, target, starts, 0)
        first = np.unique(np.concatenate([[begin], unit.first[(unit.first > begin) & (unit.first < end)]]))
        assert got == (len(first) if end > begin else 0)
        assert np.array_equal(starts[:got], 40 + first[:got] - begin)
        assert np.array_equal(target[:got], target_of_pair[first[:got]])
