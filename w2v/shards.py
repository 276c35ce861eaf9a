"""The window shards' reader: pairs_dataset.py's shards of a draw, cut into batches of whole windows
(batch.WindowBatch). dataset.py (a DataLoader's worker processes) and feed.py (reader threads) both read through
here; they differ only in where a batch's buffers come from.

Reads DATA_DIR/pairs/meta.json and the shards it lists. One epoch reads every pair of its draw exactly once: the
draw's shards in an order shuffled by (seed, epoch) (`pairs_meta.epoch_shards`; file order for a draw written with
--no-shuffle), each shard's row groups in file order. The unit of work is one row group: reader w of n reads units
w, w+n, w+2n, ... so the readers' streams are disjoint. A window cut by a row group's or a batch's edge is two
windows here (a batch's first pair always starts one). Every batch holds exactly batch_size pairs except the last
one of each reader's stream.

The stream: batches are taken from each reader in turn, skipping the readers whose stream has ended (a DataLoader's
order), so batch b of an epoch is known from the readers' batch counts alone (`stream_workers`). `start_batch=k`
starts the stream at batch k as if the first k had been read: each reader skips the pairs of its batches already
taken (whole row groups without reading them) and the readers are renumbered so the turn falls where it fell. That
is how train.py --resume continues inside a shard.

A damaged shard stops the reader with one line that says to run pairs_dataset.py again; a pairs/ in a retired
layout is refused by `PairsMeta.read`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from w2v.batch import WindowBatch
from w2v.common import fail, require
from w2v.pairs_meta import PairsMeta, epoch_shards

READ_COLUMNS = ["target", "context", "window_start"]
Unit = tuple[int, int, int]  # (shard index in meta.json's list, row group, pairs)


class WindowShards:
    """The units (row groups) of one epoch's draw and the plan that splits them among readers.

    shards: indices into meta.json's shard list, in the order to read them (default: `epoch_shards`, the shards of
    draw epoch % draws in their epoch order). start_batch: batches of the stream to leave out, as if already read.
    Opens every shard's footer once, so a missing or damaged shard fails here, in the process that plans.
    """

    def __init__(self, data_dir: str | Path, batch_size: int, seed: int, epoch: int = 0,
                 shards: list[int] | None = None, start_batch: int = 0):
        if batch_size < 1:
            fail(f"batch size must be at least 1, got {batch_size}")
        if start_batch < 0:
            fail(f"start batch must be at least 0, got {start_batch}")
        self.data_dir = Path(data_dir)
        self.batch_size, self.seed, self.epoch, self.start_batch = int(batch_size), seed, epoch, int(start_batch)
        pairs_dir = require(self.data_dir / "pairs", "pairs_dataset.py")
        self.meta = PairsMeta.read(pairs_dir)
        self.files = [pairs_dir / shard["file"] for shard in self.meta.shards]
        order = epoch_shards(self.meta, seed, epoch) if shards is None else [int(s) for s in shards]
        bad = [s for s in order if not 0 <= s < len(self.files)]
        if bad:
            fail(f"shard index {bad[0]} out of range: pairs/meta.json lists {len(self.files)} shards")
        self.shards = order
        self.units: list[Unit] = []
        for shard in order:
            metadata = self.open(shard).metadata
            if metadata.num_rows != self.meta.shards[shard]["pairs"]:
                fail(f"{self.files[shard]} holds {metadata.num_rows} pairs, meta.json says "
                     f"{self.meta.shards[shard]['pairs']}: run pairs_dataset.py again")
            self.units += [(shard, rg, metadata.row_group(rg).num_rows) for rg in range(metadata.num_row_groups)]
        self.num_pairs = sum(rows for _, _, rows in self.units)

    def open(self, shard: int) -> pq.ParquetFile:
        path = self.files[shard]
        if not path.exists():
            fail(f"{path} not found: run pairs_dataset.py again")
        try:
            file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as error:
            fail(f"{path} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
        if file.schema_arrow.names[:3] != READ_COLUMNS:
            fail(f"{path} has columns {file.schema_arrow.names}, not {READ_COLUMNS}: run pairs_dataset.py again")
        return file

    def read_unit(self, file: pq.ParquetFile, shard: int, row_group: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """target, context (int32, views of the decoded row group) and window_start as arrow's bitmap (uint8, with
        its bit offset): the bool column is not unpacked to bytes, `cut_windows` reads its bits."""
        try:
            table = file.read_row_group(row_group, columns=READ_COLUMNS, use_threads=False)
            columns = [table.column(name) for name in READ_COLUMNS]
            target, context, starts = [column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
                                       for column in columns]
        except (OSError, pa.ArrowException, KeyError) as error:
            fail(f"{self.files[shard]} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
        if target.type != pa.int32() or context.type != pa.int32():
            fail(f"{self.files[shard]}: target/context are not int32: run pairs_dataset.py again")
        if starts.type != pa.bool_():
            fail(f"{self.files[shard]}: window_start is not bool: run pairs_dataset.py again")
        if target.null_count or context.null_count or starts.null_count:
            fail(f"{self.files[shard]} has missing values: run pairs_dataset.py again")
        bits = np.frombuffer(starts.buffers()[1], dtype=np.uint8)
        return target.to_numpy(), context.to_numpy(), bits, starts.offset

    def worker_units(self, worker: int = 0, num_workers: int = 1) -> list[Unit]:
        """The units that reader `worker` of `num_workers` reads."""
        return self.units[worker::num_workers]

    def worker_batches(self, num_workers: int = 1) -> list[int]:
        """Batches in the stream of each reader of `num_workers` (0 readers read as 1)."""
        streams = max(1, num_workers)
        return [-(-sum(rows for _, _, rows in self.worker_units(w, streams)) // self.batch_size)
                for w in range(streams)]

    def stream_workers(self, num_workers: int = 1) -> np.ndarray:
        """The reader each batch of the stream comes from, in stream order."""
        counts = np.asarray(self.worker_batches(num_workers))
        rounds, workers = np.meshgrid(np.arange(counts.max(initial=0)), np.arange(len(counts)), indexing="ij")
        # Round r takes batch r of every reader that still has one, in reader order.
        return workers[rounds < counts[None, :]]

    def worker_plan(self, num_workers: int = 1) -> list[tuple[list[Unit], int]]:
        """For each reader, in the order the stream takes them: the units it reads and the pairs it skips first, so
        that the stream is the full stream from batch `start_batch` on."""
        streams = max(1, num_workers)
        owners = self.stream_workers(streams)
        if self.start_batch > len(owners):
            fail(f"start batch {self.start_batch} is past the end of epoch {self.epoch}'s {len(owners)} batches "
                 f"(batch size {self.batch_size}, {streams} readers)")
        taken = np.bincount(owners[:self.start_batch], minlength=streams)
        # The stream starts its turn at reader 0: that must be the reader after the one that gave batch k - 1.
        first = int(owners[self.start_batch - 1]) + 1 if self.start_batch else 0
        logical = [(first + i) % streams for i in range(streams)]
        return [(self.worker_units(w, streams), int(taken[w]) * self.batch_size) for w in logical]

    def batches(self, units: list[Unit], skip_pairs: int, next_buffer: Callable[[], "BatchBuffer | None"]
                ) -> Iterator["BatchBuffer"]:
        """The batches of `units`, in order, after the first `skip_pairs` pairs, each cut into a buffer from
        `next_buffer` (None from it ends the stream early). All full but the last."""
        buffer = None
        open_shard, file = -1, None
        for shard, row_group, rows in units:
            if skip_pairs >= rows:  # wholly trained: not even opened
                skip_pairs -= rows
                continue
            if shard != open_shard:
                open_shard, file = shard, self.open(shard)
            target, context, bits, bit_offset = self.read_unit(file, shard, row_group)
            done, skip_pairs = skip_pairs, 0
            while done < rows:
                if buffer is None:
                    buffer = next_buffer()
                    if buffer is None:
                        return
                    buffer.n_pairs = buffer.n_windows = 0
                take = min(self.batch_size - buffer.n_pairs, rows - done)
                buffer.add(target, context, bits, bit_offset, done, done + take)
                done += take
                if buffer.n_pairs == self.batch_size:
                    yield buffer.finish()
                    buffer = None
        if buffer is not None and buffer.n_pairs:
            yield buffer.finish()


class BatchBuffer:
    """One batch's arrays at their largest (one window a pair), filled by `WindowShards.batches`; `pin` pins them
    for non-blocking copies to a GPU. `batch()` gives views, valid until the buffer is filled again."""

    def __init__(self, batch_size: int, pin: bool = False):
        self.context = torch.empty(batch_size, dtype=torch.int32, pin_memory=pin)
        self.window_target = torch.empty(batch_size, dtype=torch.int32, pin_memory=pin)
        self.window_starts = torch.empty(batch_size + 1, dtype=torch.int32, pin_memory=pin)
        # numpy views for the readers (numpy and numba write through them without the GIL)
        self.context_np = self.context.numpy()
        self.target_np = self.window_target.numpy()
        self.starts_np = self.window_starts.numpy()
        self.n_pairs = self.n_windows = self.longest = 0

    def add(self, target: np.ndarray, context: np.ndarray, bits: np.ndarray, bit_offset: int, begin: int,
            end: int) -> None:
        """Pairs begin:end of a row group appended: their contexts, and their windows cut from the bitmap."""
        np.copyto(self.context_np[self.n_pairs:self.n_pairs + end - begin], context[begin:end])
        self.n_windows = cut_windows(bits, bit_offset, target, begin, end, self.n_pairs, self.target_np,
                                     self.starts_np, self.n_windows)
        self.n_pairs += end - begin

    def finish(self) -> "BatchBuffer":
        self.starts_np[self.n_windows] = self.n_pairs
        self.longest = int(_longest(self.starts_np, self.n_windows))
        return self

    def batch(self) -> WindowBatch:
        n, w = self.n_pairs, self.n_windows
        return WindowBatch(self.context[:n], self.window_target[:w], self.window_starts[:w + 1], self.longest)

    def compact(self) -> WindowBatch:
        """A copy of the batch in tensors of its own size (for shipping between processes)."""
        batch = self.batch()
        return WindowBatch(batch.context.clone(), batch.window_target.clone(), batch.window_starts.clone(),
                           batch.longest)


# TRAILING[b] for b a power of two below 256: its bit's number (the lowest set bit of a byte, b & -b, looked up)
TRAILING = np.zeros(256, dtype=np.int64)
TRAILING[1 << np.arange(8)] = np.arange(8)


@numba.njit(nogil=True, cache=True)
def cut_windows(bits, bit_offset, target, begin, end, base, out_target, out_starts, windows):
    """Windows of pairs begin:end of a row group: for each pair that starts one (its window_start bit, or the
    piece's first pair, which always starts one), its position in the batch (base + i - begin) goes to
    out_starts[windows] and its target to out_target[windows]. Returns the windows written so far.

    Whole bytes of the bitmap go by their set bits alone (a window starts at ~1 pair in 6, so most pairs cost
    nothing); the bits before the first whole byte and after the last are taken one by one, branch-free (every
    pair writes, only a start advances the count)."""
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
