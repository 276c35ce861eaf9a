"""w2v/feed.py, the reader threads of the GPU kernels: its batches are exactly dataset.py's (contexts, one target
per window, int32 offsets), in the same stream order with any number of readers and from any start batch; its
buffers are reused and bounded; a corrupt shard is one line; stopping early ends the readers. Also w2v/shards.py's
window cut on arrow bitmaps at any bit offset."""
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
from w2v.shards import cut_windows
from helpers import TOTAL, expected_window_starts


def lean_batches(data_dir, batch_size: int, num_workers: int, start_batch: int = 0) -> list[tuple]:
    """The feed's batches, copied out of its buffers (which the next batch may reuse)."""
    dataset = PairsDataset(data_dir, batch_size=batch_size, start_batch=start_batch)
    return [(b.context.clone(), b.window_target.clone(), b.window_starts.clone(), b.longest)
            for b in WindowFeed(dataset.plan, num_workers)]


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size, start_batch", [(333, 0), (1000, 0), (333, 4)])
def test_lean_batches_are_the_loaders_batches_cut_down(windows_dir, num_workers, batch_size, start_batch):
    # batches of 1,000 span row groups (of 400 pairs); 333 cut windows at both edges; start_batch 4 resumes inside
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
    # From the fixture's pairs alone (pair k is (k, k + 1), flagged by window_flag), not from dataset.py: a window
    # starts at a flagged pair, a batch's first pair and a row group's first pair; its target is its first pair's.
    got = lean_batches(windows_dir, 333, num_workers)
    seen = np.concatenate([context.numpy() - 1 for context, _, _, _ in got])
    assert np.array_equal(np.sort(seen), np.arange(TOTAL))  # every pair once
    for context, window_target, window_starts, longest in got:
        target = context.numpy() - 1
        starts = expected_window_starts(target)
        assert np.array_equal(window_starts.numpy(), starts)
        assert np.array_equal(window_target.numpy(), target[starts[:-1]])
        assert longest == np.diff(starts).max() <= 7


def test_buffers_are_reused_and_bounded(windows_dir):
    dataset = PairsDataset(windows_dir, batch_size=50)
    buffers, batches = set(), 0
    for batch in WindowFeed(dataset.plan, num_workers=2):
        buffers.add(batch.context.data_ptr())
        target = batch.context.numpy() - 1  # checked now: the buffer is refilled once the next batch is asked for
        assert np.array_equal(batch.window_starts.numpy(), expected_window_starts(target))
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


def test_cut_reads_arrow_bits_at_any_offset():
    # a row group's window_start bitmap read from a bit offset (a sliced arrow array) and from inside a byte
    rng = np.random.default_rng(0)
    flags = rng.random(203) < 0.3
    target = np.arange(203, dtype=np.int32) * 7
    for offset in (0, 3, 8, 13):
        bits = np.packbits(np.concatenate([np.zeros(offset, bool), flags]), bitorder="little")
        for begin, end in ((0, 203), (5, 150), (17, 18)):
            starts, window_target = np.empty(204, np.int32), np.empty(203, np.int32)
            windows = cut_windows(bits, offset, target, begin, end, 40, window_target, starts, 0)
            piece = flags[begin:end].copy()
            piece[0] = True
            assert np.array_equal(starts[:windows], 40 + np.flatnonzero(piece))
            assert np.array_equal(window_target[:windows], target[begin:end][piece])
