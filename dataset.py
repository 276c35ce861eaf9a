"""Stage 5: `PairsDataset`, batches of (target, context, negatives, window_starts) streamed from the pair shards.

    python dataset.py --batch-size 300000 --batches 20      # a quick look: a few batches and the read rate

Reads DATA_DIR/pairs/ (pairs_dataset.py) and DATA_DIR/unigram_table.npy (unigram_table.py). pairs_dataset.py
writes several independent pair sets, "draws" (sub-sampling and windows redrawn, as word2vec.c and gensim do every
epoch); epoch e reads draw e % draws. One epoch reads every pair of its draw exactly once: the draw's shards in an
order shuffled by (seed, epoch) (`pairs_meta.epoch_shards`), each shard's row groups in file order (the shards were
shuffled when written; pairs_dataset.py --no-shuffle leaves them in text order, and then the shards are read in
file order too). The unit of work is one row group:
with a DataLoader (batch_size=None, num_workers=n) worker w reads units w, w+n, w+2n, ... so the workers' streams
are disjoint.

Batches are tuples (target, context, negatives, window_starts): int32 tensors (int32 halves host memory and
host-to-device traffic; index with .long() or let the GPU upcast) target [b], context [b], negatives [b, NEGATIVES],
and window_starts, int64 [W + 1], the offsets of the batch's W windows: window w is pairs
window_starts[w]:window_starts[w + 1], window_starts[0] == 0, window_starts[-1] == b. A window is one target
occurrence's pairs, flagged by the shards' window_start column; a window cut by a row group's or the batch's edge
is two windows here (a batch's first pair always starts one). A pairs/ written in the retired pair order is
refused with one line (`PairsMeta.read`): rebuild it with pairs_dataset.py. Every batch holds
exactly batch_size pairs except the last one of each worker's stream. A unit's negatives come from a torch.Generator
seeded by (seed, epoch, shard, row group): the same arguments give the same batches, whichever worker reads a unit.
The shard is its file's number (shard-NNNNN), not its place in meta.json's list, which shifts when train.py
--rolling-draws deletes an earlier draw; in a full pairs/ the two are equal.

The loader's stream: a DataLoader takes one batch from each worker in turn, skipping the workers whose stream has
ended, so batch b of an epoch is known from the workers' batch counts alone (`stream_workers`). `start_batch=k`
starts the stream at batch k as if the first k had been read: each worker skips the pairs of its batches already
taken (whole row groups without reading them) and the workers are renumbered so the turn falls where it fell.
That is how train.py --resume continues inside a shard.

The fused Triton kernels do not read these batches: feed.py's WindowFeed cuts the same batches, from the same
worker plan, down to what they read (contexts, one target per window, int32 offsets), in reader threads.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from common import StageReport, at_least, check_flags, fail, load_vocab, parse_config, require, run
from workers import die_with_parent
from pairs_meta import PairsMeta, epoch_shards, shard_number

DATA_DIR = "data"  # where stage outputs live
BATCH_SIZE = 300_000  # pairs per batch
NEGATIVES = 5  # negatives drawn per pair from the unigram table
SEED = 1  # seed of the shard order and of the negatives
EPOCH = 0  # epoch to read (changes the shard order and the negatives)
NUM_WORKERS = 0  # DataLoader worker processes of the quick look
BATCHES = 20  # batches to read in the quick look (0: the whole epoch)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def unit_seed(seed: int, epoch: int, shard: int, row_group: int) -> int:
    """Seed of the negatives of one row group: independent of the worker that reads it."""
    state = np.random.SeedSequence([seed, epoch, shard, row_group]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)


class PairsDataset(IterableDataset):
    """Batches (target, context, negatives, window_starts) from DATA_DIR/pairs; see the module docstring.

    shards: indices into meta.json's shard list, in the order to read them (default: `epoch_shards`, the
    shards of draw epoch % draws in `shard_order`).
    table: the unigram table (default: DATA_DIR/unigram_table.npy, memory-mapped, shared by workers).
    draw_negatives=False: negatives is an empty [b, 0] tensor (the trainer draws them on the device).
    start_batch: batches of the loader's stream to leave out, as if already read (see the module docstring).
    """

    def __init__(self, data_dir: str | Path, batch_size: int = BATCH_SIZE, negatives: int = NEGATIVES,
                 seed: int = SEED, epoch: int = 0, shards: list[int] | None = None,
                 table: np.ndarray | torch.Tensor | None = None, draw_negatives: bool = True,
                 start_batch: int = 0):
        super().__init__()
        if batch_size < 1:
            fail(f"batch size must be at least 1, got {batch_size}")
        if start_batch < 0:
            fail(f"start batch must be at least 0, got {start_batch}")
        self.start_batch = int(start_batch)
        if negatives < 0:
            fail(f"negatives must be at least 0, got {negatives}")
        self.data_dir = Path(data_dir)
        # DataLoader workers die with this process (see __iter__): the loader is made where the dataset is.
        self._owner_pid = os.getpid()
        self.batch_size, self.negatives, self.seed, self.epoch = int(batch_size), int(negatives), seed, epoch
        self.draw_negatives = draw_negatives and negatives > 0
        pairs_dir = require(self.data_dir / "pairs", "pairs_dataset.py")
        meta = PairsMeta.read(pairs_dir)
        self.meta = meta
        self.files = [pairs_dir / shard["file"] for shard in meta.shards]
        self.file_numbers = [shard_number(shard["file"], index) for index, shard in enumerate(meta.shards)]
        order = epoch_shards(meta, seed, epoch) if shards is None else [int(s) for s in shards]
        bad = [s for s in order if not 0 <= s < len(self.files)]
        if bad:
            fail(f"shard index {bad[0]} out of range: pairs/meta.json lists {len(self.files)} shards")
        self.shards = order
        # (shard, row group, pairs): row group counts come from the footers, which also checks every shard opens.
        self.units: list[tuple[int, int, int]] = []
        for shard in order:
            file = self._open(shard)
            metadata = file.metadata
            if "window_start" not in file.schema_arrow.names:
                fail(f"{self.files[shard]} has no window_start column, but pairs/meta.json says order windows: "
                     f"run pairs_dataset.py again")
            if metadata.num_rows != meta.shards[shard]["pairs"]:
                fail(f"{self.files[shard]} holds {metadata.num_rows} pairs, meta.json says "
                     f"{meta.shards[shard]['pairs']}: run pairs_dataset.py again")
            self.units += [(shard, rg, metadata.row_group(rg).num_rows) for rg in range(metadata.num_row_groups)]
        self.num_pairs = sum(rows for _, _, rows in self.units)
        self._table_path = self.data_dir / "unigram_table.npy"
        self._table: torch.Tensor | None = None
        if self.draw_negatives and table is not None:
            self._table = torch.as_tensor(table)
            if self._table.ndim != 1 or len(self._table) == 0 or self._table.is_floating_point():
                fail("the unigram table must be a non-empty 1-d integer array")
        elif self.draw_negatives:
            self._load_table()  # fail now, in the main process, rather than in a worker
            self._table = None  # each worker maps the file itself: nothing big to copy into workers

    def _open(self, shard: int) -> pq.ParquetFile:
        path = self.files[shard]
        if not path.exists():
            fail(f"{path} not found: run pairs_dataset.py again")
        try:
            return pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as error:
            fail(f"{path} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")

    def _load_table(self) -> torch.Tensor:
        if self._table is None:
            require(self._table_path, "unigram_table.py")
            try:
                # copy-on-write map: pages shared between workers and with the page cache, and writable for torch
                table = np.load(self._table_path, mmap_mode="c")
            except (OSError, ValueError) as error:
                fail(f"{self._table_path} is unreadable ({error}): run unigram_table.py again")
            if table.ndim != 1 or table.dtype.kind not in "iu" or len(table) == 0:
                fail(f"{self._table_path} is not a 1-d integer table: run unigram_table.py again")
            self._table = torch.from_numpy(table)
        return self._table

    def _read_unit(self, file: pq.ParquetFile, shard: int, row_group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """target, context and window_start of one row group."""
        try:
            table = file.read_row_group(row_group, columns=["target", "context", "window_start"])
            target = table.column("target").to_numpy()
            context = table.column("context").to_numpy()
            starts = table.column("window_start").to_numpy(zero_copy_only=False)
        except (OSError, pa.ArrowException, KeyError) as error:
            fail(f"{self.files[shard]} is corrupt ({str(error).splitlines()[0]}): run pairs_dataset.py again")
        if target.dtype != np.int32 or context.dtype != np.int32:
            fail(f"{self.files[shard]}: target/context are not int32: run pairs_dataset.py again")
        if starts.dtype != np.bool_:
            fail(f"{self.files[shard]}: window_start is not bool: run pairs_dataset.py again")
        return target, context, starts

    def _draw(self, shard: int, row_group: int, n: int) -> torch.Tensor:
        if not self.draw_negatives:
            return torch.empty((n, 0), dtype=torch.int32)
        table = self._load_table()
        seed = unit_seed(self.seed, self.epoch, self.file_numbers[shard], row_group)
        generator = torch.Generator().manual_seed(seed)
        # A whole row group at once, so the draws do not depend on where batches start. index_select: the
        # gather is bound by cache misses in the big table, and it is ~3x faster than table[picks] here.
        picks = torch.randint(len(table), (n * self.negatives,), generator=generator)
        return table.index_select(0, picks).view(n, self.negatives).to(torch.int32)

    def worker_units(self, worker: int = 0, num_workers: int = 1) -> list[tuple[int, int, int]]:
        """The (shard, row group, pairs) units that worker `worker` of `num_workers` reads."""
        return self.units[worker::num_workers]

    def worker_batches(self, num_workers: int = 1) -> list[int]:
        """Batches in the stream of each worker of `num_workers` (0 workers read as one)."""
        streams = max(1, num_workers)
        return [-(-sum(rows for _, _, rows in self.worker_units(w, streams)) // self.batch_size)
                for w in range(streams)]

    def stream_workers(self, num_workers: int = 1) -> np.ndarray:
        """The worker each batch of the loader's stream comes from, in stream order."""
        counts = np.asarray(self.worker_batches(num_workers))
        rounds, workers = np.meshgrid(np.arange(counts.max(initial=0)), np.arange(len(counts)), indexing="ij")
        # Round r takes batch r of every worker that still has one, in worker order.
        return workers[rounds < counts[None, :]]

    def worker_plan(self, num_workers: int = 1) -> list[tuple[list[tuple[int, int, int]], int]]:
        """For each DataLoader worker: the units it reads and the pairs it skips first, so that the loader's
        stream is the full stream from batch `start_batch` on."""
        streams = max(1, num_workers)
        owners = self.stream_workers(streams)
        if self.start_batch > len(owners):
            fail(f"start batch {self.start_batch} is past the end of epoch {self.epoch}'s {len(owners)} batches "
                 f"(batch size {self.batch_size}, {streams} workers)")
        taken = np.bincount(owners[:self.start_batch], minlength=streams)
        # The loader starts its turn at its worker 0: that must be the worker after the one that gave batch k - 1.
        first = int(owners[self.start_batch - 1]) + 1 if self.start_batch else 0
        logical = [(first + i) % streams for i in range(streams)]
        return [(self.worker_units(w, streams), int(taken[w]) * self.batch_size) for w in logical]

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        if info is not None:
            # A DataLoader worker outlives a SIGKILLed trainer by up to torch's 5 s watchdog period, reading on.
            die_with_parent(self._owner_pid)
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        units, skip_pairs = self.worker_plan(num_workers)[worker]
        return self.iterate(units, skip_pairs)

    def iterate(self, units: list[tuple[int, int, int]], skip_pairs: int = 0) -> Iterator[Batch]:
        """Batches of the given units, in order, after the first `skip_pairs` pairs; all full but the last."""
        pending: list[tuple[np.ndarray, np.ndarray, torch.Tensor, np.ndarray]] = []
        filled = 0
        open_shard, file = -1, None
        for shard, row_group, rows in units:
            if skip_pairs >= rows:  # wholly trained: not even opened
                skip_pairs -= rows
                continue
            if shard != open_shard:
                open_shard, file = shard, self._open(shard)
            target, context, starts = self._read_unit(file, shard, row_group)
            # The whole unit's negatives are drawn before the skip, so they are the ones an unbroken read gets.
            negatives = self._draw(shard, row_group, len(target))
            done, skip_pairs = skip_pairs, 0
            while done < len(target):
                take = min(self.batch_size - filled, len(target) - done)
                pending.append((target[done:done + take], context[done:done + take], negatives[done:done + take],
                                starts[done:done + take]))
                filled += take
                done += take
                if filled == self.batch_size:
                    yield _collate(pending)
                    pending, filled = [], 0
        if filled:
            yield _collate(pending)


def window_offsets(pieces: list[np.ndarray], n_pairs: int) -> torch.Tensor:
    """window_starts of a batch made of `pieces` (each piece's window_start flags)."""
    if not pieces:
        return torch.zeros(1, dtype=torch.int64)
    flags = np.concatenate(pieces)  # a copy: the row group's own flags stay as they were read
    # Every piece starts a window: a row group or batch edge inside a window cuts it in two.
    flags[np.cumsum([0] + [len(piece) for piece in pieces[:-1]])] = True
    return torch.from_numpy(np.append(np.flatnonzero(flags), n_pairs).astype(np.int64))


def _collate(pieces: list[tuple[np.ndarray, np.ndarray, torch.Tensor, np.ndarray]]) -> Batch:
    # Always a fresh compact tensor: a view would keep (and, across workers, ship) the whole row group.
    target = torch.from_numpy(np.concatenate([p[0] for p in pieces]))
    return (target, torch.from_numpy(np.concatenate([p[1] for p in pieces])), torch.cat([p[2] for p in pieces]),
            window_offsets([p[3] for p in pieces], len(target)))


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, batch_size=at_least(1), negatives=at_least(0), seed=at_least(0), epoch=at_least(0),
                num_workers=at_least(0), batches=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("dataset", data_dir)
    dataset = PairsDataset(data_dir, cfg.batch_size, cfg.negatives, cfg.seed, cfg.epoch)
    words, _ = load_vocab(data_dir)
    loader = DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers)
    draws = dataset.meta.draws
    print(f"epoch {cfg.epoch}: draw {cfg.epoch % draws} of {draws}, {dataset.num_pairs:,} pairs in "
          f"{len(dataset.shards)} shards, {len(dataset.units)} row groups; "
          f"shard order {dataset.shards[:10]}{' ...' if len(dataset.shards) > 10 else ''}")
    started = time.perf_counter()
    pairs = batches = windows = 0
    for target, context, negatives, window_starts in loader:
        if batches < 3:
            shown = "; ".join(f"{words[t]} -> {words[c]} (not {', '.join(words[n] for n in neg)})"
                              for t, c, neg in zip(target[:3].tolist(), context[:3].tolist(), negatives[:3].tolist()))
            print(f"batch {batches}: {len(target):,} pairs: {shown}")
        pairs += len(target)
        windows += len(window_starts) - 1
        batches += 1
        if batches == cfg.batches:
            break
    elapsed = time.perf_counter() - started
    return report.finish(batches=batches, pairs=pairs, windows=windows,
                         pairs_per_s=round(pairs / max(elapsed, 1e-9)), num_workers=cfg.num_workers)


if __name__ == "__main__":
    run(main)
