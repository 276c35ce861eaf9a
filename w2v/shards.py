"""The pair shards' one reader: pairs_dataset.py's kept-stream shards of a draw, turned back into windows and cut
into batches of whole windows (batch.WindowBatch). dataset.py (a DataLoader's worker processes) and feed.py (reader
threads) both read through here; they differ only in where a batch's buffers come from. The layout's shared
pieces (the reach of each kept token, the units of a shard) live here too, so the writer (pairs_dataset.py) and
the readers cannot disagree.

The layout (meta.json "layout" LAYOUT). A shard is a slice of a draw's kept stream (the ids left after
sub-sampling, in text order) in two non-nullable columns: `id` (int32) and `window` (uint8: bits 0-5 the window b
the token drew, 1..63; bit 7 set on the first kept token of a document). Its targets are the rows
meta.json's shard entry names ("targets": [first, end)); up to WINDOW rows on either side are their context
only (the halo). A target's window is its contexts at offsets -b..-1, 1..b that lie in its document, in that order
(pairs_dataset.window_pairs's order): its left reach (how many tokens back before b or its document's first) and
right reach are worked out from the `window` column alone (`stream_windows`). Targets whose window is empty (alone
in their document) are no window. A shard ends after the window that reaches PAIRS_PER_SHARD pairs: no window is
cut by a shard's edge.

Units: a shard's windows (in text order, numbered 0..W-1) are split into units of about ROW_GROUP_PAIRS pairs
(`shard_units`). Shuffled shards (the default): U = ceil(pairs / ROW_GROUP_PAIRS) units, unit u holding windows u,
u+U, u+2U, ... (a sample spread over the whole shard), read in an order drawn for that unit alone (`unit_order`:
blocks of UNIT_BLOCK consecutive windows of the unit, each in text order, the blocks permuted, seeded by the draw's
seed, the shard's place in its draw and u). Blocks of 8 rather than single windows cost a reader 3/4 of the CPU of a
per-window order, and score as well on text8; blocks of 64 cost less still but lost 0.4 points of analogy accuracy
(bench/RESULTS.md, "Kept-stream shards"). Text order
(--no-shuffle): unit u is a run of consecutive windows, the window that reaches a multiple of ROW_GROUP_PAIRS
ending it, read in text order. meta.json lists each unit's pairs ("units"), so the reader plan needs no shard.

Reads DATA_DIR/pairs/meta.json and the shards it lists. One epoch reads every pair of its draw exactly once: the
draw's shards in an order shuffled by (seed, epoch) (`pairs_meta.epoch_shards`; file order for a draw written with
--no-shuffle), each shard's units in order. The unit of work is one unit: reader w of n reads units w, w+n, w+2n,
... so the readers' streams are disjoint. A window is cut only by a batch's edge (the piece after it is a window
of its own). Every batch holds exactly batch_size pairs except the last one of each reader's stream.

What a reader holds per shard: the shard's ids (4 bytes a kept token) and its windows' places and reaches
(8 bytes a window), ~0.7 + 1.3 = ~2.0 bytes a pair at WINDOW 5, ~100 MB for a shard of 50M pairs; the threads
of one process (feed.py) share it (`SHARD_CACHE` shards at most are kept), each DataLoader worker process holds its
own. Per unit: its pairs rebuilt (4 bytes a pair) and its windows' places, offsets and targets (32 bytes a window),
~9 bytes a pair, ~9 MB for a unit of 1M pairs, in buffers each reader keeps from one unit to the next (`UnitScratch`).

The stream: batches are taken from each reader in turn, skipping the readers whose stream has ended (a DataLoader's
order), so batch b of an epoch is known from the readers' batch counts alone (`stream_workers`). `start_batch=k`
starts the stream at batch k as if the first k had been read: each reader skips the pairs of its batches already
taken (whole units without reading them) and the readers are renumbered so the turn falls where it fell. That
is how train.py --resume continues inside a shard.

A damaged shard stops the reader with one line that says to run pairs_dataset.py again; a pairs/ in a retired
layout is refused by `PairsMeta.read`.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from w2v.batch import WindowBatch
from w2v.common import fail, require
from w2v.layout import (DOC_START, READ_COLUMNS, SCHEMA, UNIT_BLOCK, WINDOW_BITS, shard_units,  # noqa: F401
                        stream_windows, strided_unit_pairs, total_pairs, unit_order, unit_pairs, window_sizes)
from w2v.pairs_meta import PairsMeta, epoch_shards

SHARD_CACHE = 2  # shards one process keeps decoded (its reader threads share them)
PREFETCH_AHEAD = 32  # windows ahead whose ids build_unit asks the CPU to fetch (measured: 16-32 best)
Unit = tuple[int, int, int]  # (shard index in meta.json's list, unit, pairs)


def reader_bytes(meta: PairsMeta) -> int:
    """Bytes one reader (a process) holds at most of the shards it rebuilds windows from: `SHARD_CACHE` shards
    (5 bytes a row while decoding, then 4, and 8 a window: 12 a row at most) and a unit's pairs (4 bytes a pair,
    ~10 more a window: ~14 a pair at most)."""
    shards = sorted((12 * int(s.get("tokens", 0)) for s in meta.shards), reverse=True)
    largest_unit = max((int(p) for s in meta.shards for p in s.get("units", [])), default=0)
    return sum(shards[:SHARD_CACHE]) + 14 * largest_unit


class ShardStream:
    """One shard decoded: its ids and its windows (packed row, left and right reach, in text order) and units."""

    def __init__(self, ids: np.ndarray, code: np.ndarray, entry: dict, row_group_pairs: int, shuffle: bool,
                 seed: int):
        self.ids = ids
        first, end = entry["targets"]
        self.windows = stream_windows(code, int(first), int(end))
        self.shuffle, self.seed, self.draw, self.part = shuffle, seed, int(entry["draw"]), int(entry.get("part", 0))
        n = len(self.windows)
        if shuffle and n:
            # shard_units' strided units, counted without a sizes array (a shard's is tens of MB to fault in)
            count = max(1, min(n, -(-int(total_pairs(self.windows)) // max(1, int(row_group_pairs)))))
            self.units = [slice(u, n, count) for u in range(count)]
            self.unit_pairs = strided_unit_pairs(self.windows, count).tolist()
        else:
            sizes = window_sizes(self.windows)
            self.units = shard_units(sizes, row_group_pairs, shuffle)
            self.unit_pairs = unit_pairs(sizes, self.units)

    def nbytes(self) -> int:
        return self.ids.nbytes + self.windows.nbytes

    def unit(self, u: int, scratch: "UnitScratch | None" = None) -> "UnitWindows":
        """Unit u's pairs rebuilt, in reading order (`build_unit`), in `scratch`'s buffers (valid until its next
        unit) or in new ones."""
        windows = self.windows[self.units[u]]
        order = unit_order(self.seed, self.draw, self.part, u, len(windows)) if self.shuffle else \
            np.empty(0, dtype=np.int64)
        n, pairs = len(windows), self.unit_pairs[u]
        wide, narrow, context = (scratch or UnitScratch()).take(n, pairs)
        first = wide[2 * n:3 * n + 1]
        target = build_unit(self.ids, windows, order, wide[:n], wide[n:2 * n], first, narrow[:n], narrow[n:2 * n],
                            context)
        return UnitWindows(context, target, first)


class UnitScratch:
    """A reader's buffers for its units, kept from one unit to the next: fresh ones of a few MB per unit cost more
    in page faults than the rebuild itself."""

    def __init__(self):
        self.wide = np.empty(0, dtype=np.int64)
        self.narrow = np.empty(0, dtype=np.int32)
        self.context = np.empty(0, dtype=np.int32)

    def take(self, windows: int, pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(self.wide) < 3 * windows + 1:
            self.wide = np.empty(int(1.25 * (3 * windows + 1)), dtype=np.int64)
            self.narrow = np.empty(int(1.25 * 2 * windows), dtype=np.int32)
        if len(self.context) < pairs:
            self.context = np.empty(int(1.25 * pairs), dtype=np.int32)
        return self.wide, self.narrow, self.context[:pairs]


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring array[index]'s cache line in (llvm.prefetch: a hint, never a fault)."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        pointer = cgutils.get_item_pointer(context, builder, array_type,
                                           context.make_array(array_type)(context, builder, args[0]), [args[1]],
                                           wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer] + [ir.IntType(32)] * 3), "llvm.prefetch.p0i8")
        # read, keep in every cache level, data
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(ir.IntType(32), 0),
                                ir.Constant(ir.IntType(32), 3), ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return types.void(array, index), codegen


@numba.njit(nogil=True, cache=True)
def build_unit(ids, windows, order, packed, place, first, text_target, target, context):
    """A unit's pairs: its packed windows (`stream_windows`, rows rising: a strided view of the shard's) read in
    `order` (indices into windows; empty: text order), into `context` (int32 [pairs]), `first` (int64
    [windows + 1]) and the returned targets (int32 [windows]), in reading order; packed, place and text_target are
    scratch of the windows' size. The windows are visited in text order, so the shard's ids are read forward, and
    each one's contexts written where the order puts it (offsets -left..-1, then 1..right)."""
    n = len(windows)
    for j in range(n):  # the strided view read once, forward
        packed[j] = windows[j]
    shuffled = len(order) == n and n > 0
    first[0] = 0
    for k in range(n):
        j = order[k] if shuffled else k
        place[j] = first[k]
        first[k + 1] = first[k] + ((packed[j] >> 8) & 0xFF) + (packed[j] & 0xFF)
    for j in range(n):
        if j + PREFETCH_AHEAD < n:  # a unit's windows are ~U windows apart in the shard: no stride to guess
            ahead = packed[j + PREFETCH_AHEAD]
            prefetch(ids, max(np.int64(0), (ahead >> 16) - 8))
            prefetch(ids, min(np.int64(len(ids) - 1), (ahead >> 16) + 8))
            prefetch(context, place[j + PREFETCH_AHEAD])
        w = packed[j]
        row, lo, hi, at = w >> 16, (w >> 8) & 0xFF, w & 0xFF, place[j]
        text_target[j] = ids[row]
        for k in range(lo):
            context[at + k] = ids[row - lo + k]
        for k in range(hi):
            context[at + lo + k] = ids[row + 1 + k]
    if not shuffled:
        return text_target
    for k in range(n):
        target[k] = text_target[order[k]]
    return target


class UnitWindows:
    """A unit's pairs in reading order: `context` (int32 [pairs]), each window's `target` (int32 [windows]) and
    first pair (`first`, int64 [windows + 1])."""

    def __init__(self, context: np.ndarray, target: np.ndarray, first: np.ndarray):
        self.context, self.target, self.first = context, target, first
        self.pairs = int(first[-1])


class WindowShards:
    """The units of one epoch's draw and the plan that splits them among readers.

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
            entry = self.meta.shards[shard]
            rows = self.open(shard).metadata.num_rows
            if rows != entry["tokens"]:
                fail(f"{self.files[shard]} holds {rows} tokens, meta.json says {entry['tokens']}: "
                     f"run pairs_dataset.py again")
            self.units += [(shard, u, int(pairs)) for u, pairs in enumerate(entry["units"])]
        self.num_pairs = sum(rows for _, _, rows in self.units)
        self._init_cache()

    def _init_cache(self) -> None:
        self._cache: OrderedDict[int, ShardStream] = OrderedDict()
        self._loading: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:  # a DataLoader worker gets its own cache
        state = dict(self.__dict__)
        for key in ("_cache", "_loading", "_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_cache()

    def open(self, shard: int) -> pq.ParquetFile:
        path = self.files[shard]
        if not path.exists():
            fail(f"{path} not found: run pairs_dataset.py again")
        try:
            file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as error:
            fail(f"{path} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
        if file.schema_arrow.names[:2] != READ_COLUMNS:
            fail(f"{path} has columns {file.schema_arrow.names}, not {READ_COLUMNS}: run pairs_dataset.py again")
        return file

    def read_shard(self, shard: int) -> ShardStream:
        """The shard decoded (its ids and window bytes) and its windows worked out."""
        path = self.files[shard]
        try:
            table = self.open(shard).read(columns=READ_COLUMNS, use_threads=False)
            ids, code = [table.column(name).combine_chunks() if table.column(name).num_chunks != 1
                         else table.column(name).chunk(0) for name in READ_COLUMNS]
        except (OSError, pa.ArrowException, KeyError) as error:
            fail(f"{path} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
        if ids.type != pa.int32() or code.type != pa.uint8():
            fail(f"{path}: id/window are not int32/uint8: run pairs_dataset.py again")
        if ids.null_count or code.null_count:
            fail(f"{path} has missing values: run pairs_dataset.py again")
        entry = self.meta.shards[shard]
        stream = ShardStream(ids.to_numpy(), code.to_numpy(), entry, self.meta.row_group_pairs, self.meta.shuffle,
                             self.meta.seed)
        if stream.unit_pairs != [int(p) for p in entry["units"]]:
            fail(f"{path} does not hold the windows meta.json lists: run pairs_dataset.py again")
        return stream

    def shard_stream(self, shard: int) -> ShardStream:
        """The shard decoded, once per process: reader threads share the last `SHARD_CACHE` shards."""
        with self._lock:
            if shard in self._cache:
                self._cache.move_to_end(shard)
                return self._cache[shard]
            loading = self._loading.setdefault(shard, threading.Lock())
        with loading:
            with self._lock:
                if shard in self._cache:
                    return self._cache[shard]
            stream = self.read_shard(shard)
            with self._lock:
                self._cache[shard] = stream
                while len(self._cache) > SHARD_CACHE:
                    self._cache.popitem(last=False)
                self._loading.pop(shard, None)
            return stream

    def read_unit(self, shard: int, unit: int, scratch: UnitScratch | None = None) -> UnitWindows:
        """Unit `unit` of a shard: its pairs and windows in reading order (in `scratch`'s buffers if given)."""
        return self.shard_stream(shard).unit(unit, scratch)

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
        scratch = UnitScratch()
        for shard, unit, rows in units:
            if skip_pairs >= rows:  # wholly trained: not even opened
                skip_pairs -= rows
                continue
            windows = self.read_unit(shard, unit, scratch)
            if windows.pairs != rows:
                fail(f"{self.files[shard]} unit {unit} holds {windows.pairs} pairs, meta.json says {rows}: "
                     f"run pairs_dataset.py again")
            done, skip_pairs = skip_pairs, 0
            while done < rows:
                if buffer is None:
                    buffer = next_buffer()
                    if buffer is None:
                        return
                    buffer.n_pairs = buffer.n_windows = 0
                take = min(self.batch_size - buffer.n_pairs, rows - done)
                buffer.add(windows, done, done + take)
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

    def add(self, unit: UnitWindows, begin: int, end: int) -> None:
        """Pairs begin:end of a unit's pair stream appended: their contexts, rebuilt from the kept stream, and their
        windows (a window cut by begin or end is a window of its own)."""
        np.copyto(self.context_np[self.n_pairs:self.n_pairs + end - begin], unit.context[begin:end])
        self.n_windows = cut_unit(unit.first, unit.target, begin, end, self.n_pairs, self.target_np, self.starts_np,
                                  self.n_windows)
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


@numba.njit(nogil=True, cache=True)
def cut_unit(first, target, begin, end, base, out_target, out_starts, windows):
    """The windows of pairs begin:end of a unit (window w: pairs first[w]:first[w + 1]) appended to a batch whose
    pair `begin` lands at `base`: each window's (or, cut by begin, its piece's) start to out_starts and target to
    out_target from index `windows`. Returns the windows written."""
    if end <= begin:
        return windows
    lo, hi = 0, len(target) - 1  # the window holding pair `begin`: the last w with first[w] <= begin
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if first[mid] <= begin:
            lo = mid
        else:
            hi = mid - 1
    w = lo
    out_starts[windows] = base
    out_target[windows] = target[w]
    windows += 1
    w += 1
    while w < len(target) and first[w] < end:
        out_starts[windows] = base + first[w] - begin
        out_target[windows] = target[w]
        windows += 1
        w += 1
    return windows


@numba.njit(nogil=True, cache=True)
def _longest(starts, windows):
    longest = 0
    for w in range(windows):
        longest = max(longest, starts[w + 1] - starts[w])
    return longest


def shard_pairs(data_dir: str | Path, shard: int, meta: PairsMeta | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One shard's pairs in reading order, units in order: (target, context, window_start bool) per pair. For tests
    and tools; training reads batches."""
    plan = WindowShards(data_dir, batch_size=1, seed=0, shards=[shard])
    n = plan.num_pairs
    buffer = BatchBuffer(max(1, n))
    buffer.n_pairs = buffer.n_windows = 0
    stream = plan.shard_stream(shard)
    for u in range(len(stream.units)):
        unit = stream.unit(u)
        buffer.add(unit, 0, unit.pairs)
    buffer.finish()
    batch = buffer.batch()
    starts = np.zeros(n, dtype=bool)
    starts[batch.window_starts[:-1].numpy()] = True
    return batch.pair_targets().numpy().copy(), batch.context.numpy().copy(), starts
