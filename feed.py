"""The lean feed of the fused Triton kernels: what kernels_triton.py reads of a batch, and nothing else, cut from
the pair shards by reader threads straight into reused (pinned, on CUDA) buffers.

    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --feed lean --num-workers 2

A `WindowBatch` holds the contexts (int32, one per pair), one target per window (int32) and the window offsets
(int32 [W + 1]: window w is contexts window_starts[w]:window_starts[w + 1]), plus the longest window's length, which
the kernel's launch needs and which is known here without reading the offsets back from the device. That is
4 + 8 / (pairs per window) bytes a pair (5.33 on text8's 6.0 pairs a window) against dataset.py's 16 + 4 x
negatives: neither the target column nor the negatives (the kernel draws its own) leave the reader.

Batches are dataset.py's: the same units (row groups), the same worker plan (`PairsDataset.worker_plan`, so
`start_batch` resumes inside an epoch as there), the same cuts (a row group's or batch's edge inside a window cuts
it in two) and the same stream order (a batch from each reader in turn, skipping readers whose stream has ended),
so batch b of an epoch holds the same windows as the DataLoader's batch b with as many workers. The tests check
the contents against dataset.py's batches and the kernel's tables after a lean batch against an old one.

Why threads and not DataLoader worker processes: pyarrow's parquet decode, numpy's copies and the numba cut
(`_cut`, nogil) all run without the GIL, so threads read in parallel, and their batches need no pickling, no
shared-memory file per batch (a fresh one per batch costs page faults on both sides) and no pin_memory thread
copying them again. Each reader owns FEED_SLOTS buffers: it fills a free one, hands it over, and waits for a
free one when all are handed over, so memory is bounded (FEED_SLOTS x 12 bytes x batch size a reader). On CUDA
the buffers are pinned and `WindowFeed` copies each batch with non-blocking copies, giving a buffer back only when
its copy has completed (a CUDA event); on the CPU the batch's tensors are views of the buffer, valid until the
next batch is asked for.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numba
import numpy as np
import pyarrow as pa
import torch

from common import fail
from dataset import PairsDataset

FEED_SLOTS = 3  # buffers per reader: one being filled, and up to two batches waiting (the DataLoader's prefetch 2)
READ_COLUMNS = ["target", "context", "window_start"]


@dataclass
class WindowBatch:
    """What the fused kernels read of a batch (see the module docstring)."""

    context: torch.Tensor  # int32 [n_pairs]
    window_target: torch.Tensor  # int32 [n_windows]
    window_starts: torch.Tensor  # int32 [n_windows + 1], window_starts[0] == 0, window_starts[-1] == n_pairs
    longest: int  # pairs in the longest window

    @property
    def n_pairs(self) -> int:
        return int(self.context.shape[0])

    @property
    def n_windows(self) -> int:
        return int(self.window_starts.shape[0]) - 1

    def nbytes(self) -> int:
        """Bytes shipped to the device for this batch."""
        return self.context.nbytes + self.window_target.nbytes + self.window_starts.nbytes


# TRAILING[b] for b a power of two below 256: its bit's number (the lowest set bit of a byte, b & -b, looked up)
TRAILING = np.zeros(256, dtype=np.int64)
TRAILING[1 << np.arange(8)] = np.arange(8)


@numba.njit(nogil=True, cache=True)
def _cut(bits, bit_offset, target, begin, end, base, out_target, out_starts, windows):
    """Windows of pairs begin:end of a row group: for each pair that starts one (its window_start bit, or the
    piece's first pair, which always starts one), its position in the batch (base + i - begin) goes to
    out_starts[windows] and its target to out_target[windows]. Returns the windows written so far.

    Whole bytes of the bitmap go by their set bits alone (a window starts at ~1 pair in 6, so most pairs cost
    nothing: 2.4x faster than a test per pair); the bits before the first whole byte and after the last are
    taken one by one, branch-free (every pair writes, only a start advances the count)."""
    out_starts[windows] = base
    out_target[windows] = target[begin]
    windows += 1
    shift = base - begin
    i = begin + 1
    while i < end and (i + bit_offset) & 7:
        bit = i + bit_offset
        out_starts[windows] = shift + i
        out_target[windows] = target[i]
        windows += (bits[bit >> 3] >> (bit & 7)) & 1
        i += 1
    while i + 8 <= end:
        byte = np.int32(bits[(i + bit_offset) >> 3])
        while byte:
            low = byte & -byte
            j = i + TRAILING[low]
            out_starts[windows] = shift + j
            out_target[windows] = target[j]
            windows += 1
            byte ^= low
        i += 8
    while i < end:
        bit = i + bit_offset
        out_starts[windows] = shift + i
        out_target[windows] = target[i]
        windows += (bits[bit >> 3] >> (bit & 7)) & 1
        i += 1
    return windows


@numba.njit(nogil=True, cache=True)
def _longest(starts, windows):
    longest = 0
    for w in range(windows):
        longest = max(longest, starts[w + 1] - starts[w])
    return longest


class _Slot:
    """One reader's buffer: a batch's contexts, window targets and offsets at their largest (one window a pair)."""

    def __init__(self, batch_size: int, pin: bool):
        self.context = torch.empty(batch_size, dtype=torch.int32, pin_memory=pin)
        self.window_target = torch.empty(batch_size, dtype=torch.int32, pin_memory=pin)
        self.window_starts = torch.empty(batch_size + 1, dtype=torch.int32, pin_memory=pin)
        # numpy views for the readers (numpy and numba write through them without the GIL)
        self.context_np = self.context.numpy()
        self.target_np = self.window_target.numpy()
        self.starts_np = self.window_starts.numpy()
        self.n_pairs = self.n_windows = self.longest = 0

    def batch(self) -> WindowBatch:
        n, w = self.n_pairs, self.n_windows
        return WindowBatch(self.context[:n], self.window_target[:w], self.window_starts[:w + 1], self.longest)


def read_unit(dataset: PairsDataset, file, shard: int, row_group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                                int]:
    """target, context (int32, views of the decoded row group) and window_start as arrow's bitmap (uint8, with its
    bit offset): the bool column is not unpacked to bytes, `_cut` reads its bits."""
    try:
        table = file.read_row_group(row_group, columns=READ_COLUMNS, use_threads=False)
        columns = [table.column(name) for name in READ_COLUMNS]
        target, context, starts = [column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
                                   for column in columns]
    except (OSError, pa.ArrowException, KeyError) as error:
        fail(f"{dataset.files[shard]} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
    if target.type != pa.int32() or context.type != pa.int32():
        fail(f"{dataset.files[shard]}: target/context are not int32: run pairs_dataset.py again")
    if starts.type != pa.bool_():
        fail(f"{dataset.files[shard]}: window_start is not bool: run pairs_dataset.py again")
    if target.null_count or context.null_count or starts.null_count:
        fail(f"{dataset.files[shard]} has missing values: run pairs_dataset.py again")
    bits = np.frombuffer(starts.buffers()[1], dtype=np.uint8)
    return target.to_numpy(), context.to_numpy(), bits, starts.offset


def _fill(dataset: PairsDataset, units: list[tuple[int, int, int]], skip_pairs: int, free: queue.Queue,
          ready: queue.Queue, stop: threading.Event) -> None:
    """A reader: dataset.iterate's batches of `units` after `skip_pairs` pairs, cut into free slots and handed
    to `ready` (None after the last; the exception instead when reading failed)."""
    try:
        slot, filled, windows = None, 0, 0
        open_shard, file = -1, None
        for shard, row_group, rows in units:
            if skip_pairs >= rows:  # wholly trained: not even opened
                skip_pairs -= rows
                continue
            if shard != open_shard:
                open_shard, file = shard, dataset._open(shard)
            target, context, bits, bit_offset = read_unit(dataset, file, shard, row_group)
            done, skip_pairs = skip_pairs, 0
            while done < rows:
                if slot is None:
                    slot = free.get()
                    if slot is None or stop.is_set():
                        return
                take = min(dataset.batch_size - filled, rows - done)
                np.copyto(slot.context_np[filled:filled + take], context[done:done + take])
                windows = _cut(bits, bit_offset, target, done, done + take, filled, slot.target_np, slot.starts_np,
                               windows)
                filled += take
                done += take
                if filled == dataset.batch_size:
                    _hand_over(slot, filled, windows, ready)
                    slot, filled, windows = None, 0, 0
        if filled:
            _hand_over(slot, filled, windows, ready)
        ready.put(None)
    except BaseException as error:  # the consumer raises it in the training thread
        ready.put(error)


def _hand_over(slot: _Slot, filled: int, windows: int, ready: queue.Queue) -> None:
    slot.starts_np[windows] = filled
    slot.n_pairs, slot.n_windows = filled, windows
    slot.longest = int(_longest(slot.starts_np, windows))
    ready.put(slot)


class WindowFeed:
    """The lean batches of `dataset`'s epoch stream (from its start_batch on), read by `num_workers` threads (0
    reads as 1: the stream is the same), on `device`. Iterate it once; close() (or the iteration's end) stops the
    readers. See the module docstring."""

    def __init__(self, dataset: PairsDataset, num_workers: int = 1, device: torch.device | str = "cpu"):
        self.dataset, self.device = dataset, torch.device(device)
        self.streams = max(1, int(num_workers))
        self.on_cuda = self.device.type == "cuda"
        self._stop = threading.Event()
        self._free: list[queue.Queue] = []
        self._ready: list[queue.Queue] = []
        self._threads: list[threading.Thread] = []
        self._started = False

    def _start(self) -> None:
        self._started = True
        for units, skip_pairs in self.dataset.worker_plan(self.streams):
            free, ready = queue.Queue(), queue.Queue()
            for _ in range(FEED_SLOTS):
                free.put(_Slot(self.dataset.batch_size, pin=self.on_cuda))
            thread = threading.Thread(target=_fill, args=(self.dataset, units, skip_pairs, free, ready, self._stop),
                                      daemon=True, name=f"feed-reader-{len(self._threads)}")
            self._free.append(free)
            self._ready.append(ready)
            self._threads.append(thread)
            thread.start()

    def __iter__(self) -> Iterator[WindowBatch]:
        if self._started:
            fail("a WindowFeed is iterated once: make a new one for the next pass")
        self._start()
        live = list(range(self.streams))
        held: deque = deque()  # (reader, slot, copy-done event or None) of batches handed out, oldest first
        try:
            while live:
                for reader in list(live):
                    got = self._ready[reader].get()
                    if isinstance(got, BaseException):
                        raise got
                    if got is None:
                        live.remove(reader)
                        continue
                    if self.on_cuda:
                        batch = got.batch()
                        shipped = WindowBatch(batch.context.to(self.device, non_blocking=True),
                                              batch.window_target.to(self.device, non_blocking=True),
                                              batch.window_starts.to(self.device, non_blocking=True), batch.longest)
                        event = torch.cuda.Event()
                        event.record()
                        held.append((reader, got, event))
                        yield shipped
                    else:
                        held.append((reader, got, None))
                        yield got.batch()
                    # The consumer asks for the next batch: it is done with this one's buffer (on CUDA, with the
                    # buffer of the batch before, whose copy has surely completed).
                    self._release(held, keep=1 if self.on_cuda else 0)
        finally:
            self.close()

    def _release(self, held: deque, keep: int) -> None:
        """Give back the buffers of batches handed out, all but the newest `keep`; on CUDA once their copies are
        done (the copy of the batch before last has long finished: waiting for it rarely waits)."""
        while len(held) > keep:
            reader, slot, event = held.popleft()
            if event is not None:
                event.synchronize()
            self._free[reader].put(slot)

    def close(self) -> None:
        """Stop the readers (each waits for a free buffer at most; it gets None instead) and join them."""
        self._stop.set()
        for free in self._free:
            free.put(None)
        for thread in self._threads:
            thread.join()
