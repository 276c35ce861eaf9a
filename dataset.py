"""Stage 5: `PairsDataset`, a torch IterableDataset of window batches streamed from the pair shards.

    python dataset.py --batch-size 300000 --batches 20      # a quick look: a few batches and the read rate

Reads DATA_DIR/pairs/ (pairs_dataset.py). pairs_dataset.py writes several independent pair sets, "draws"
(sub-sampling and windows redrawn, as word2vec.c and gensim do every epoch); epoch e reads draw e % draws, every
pair of it exactly once, in the order w2v/shards.py describes. Each batch is a batch.WindowBatch of BATCH_SIZE
pairs in whole windows (contexts, one target per window, window offsets; no negatives: every training step draws
its own). With a DataLoader (batch_size=None, num_workers=n) worker w reads units w, w+n, ... of the epoch's plan,
so the loader's stream is the same whatever n, and `start_batch=k` resumes it at batch k (train.py --resume).

BATCH_SIZE and NUM_WORKERS here are the ones training uses: train.py takes its --batch-size and --num-workers
defaults from them. The fused GPU kernels read the same batches through feed.py's reader threads instead.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from w2v.batch import WindowBatch
from w2v import common
from w2v.common import StageReport, at_least, check_flags, load_vocab, parse_config, run
from w2v.shards import BatchBuffer, WindowShards
from w2v.workers import die_with_parent

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
BATCH_SIZE = 300_000  # pairs per batch, the batch training reads (train.py --batch-size defaults to it)
SEED = common.SEED  # seed of the shard order (the pipeline's, set in w2v/common.py; train.py --seed too)
EPOCH = 0  # epoch to read (changes the shard order)
NUM_WORKERS = 1  # DataLoader worker processes reading the shards (train.py --num-workers defaults to it)
BATCHES = 20  # batches to read in the quick look (0: the whole epoch)


class PairsDataset(IterableDataset):
    """Window batches of one epoch's draw in DATA_DIR/pairs; see the module docstring and w2v/shards.py.

    shards: indices into meta.json's shard list, in the order to read them (default: the epoch's order).
    start_batch: batches of the loader's stream to leave out, as if already read.
    """

    def __init__(self, data_dir: str | Path, batch_size: int = BATCH_SIZE, seed: int = SEED, epoch: int = 0,
                 shards: list[int] | None = None, start_batch: int = 0):
        super().__init__()
        self.plan = WindowShards(data_dir, batch_size, seed, epoch, shards, start_batch)
        self.data_dir, self.batch_size, self.seed, self.epoch = self.plan.data_dir, int(batch_size), seed, epoch
        self.start_batch, self.meta, self.shards = self.plan.start_batch, self.plan.meta, self.plan.shards
        self.units, self.num_pairs = self.plan.units, self.plan.num_pairs
        # DataLoader workers die with this process (see __iter__): the loader is made where the dataset is.
        self._owner_pid = os.getpid()

    def worker_plan(self, num_workers: int = 1):
        return self.plan.worker_plan(num_workers)

    def __iter__(self) -> Iterator[WindowBatch]:
        info = get_worker_info()
        if info is not None:
            # A DataLoader worker outlives a SIGKILLed trainer by up to torch's 5 s watchdog period, reading on.
            die_with_parent(self._owner_pid)
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        units, skip_pairs = self.plan.worker_plan(num_workers)[worker]
        return self.iterate(units, skip_pairs)

    def iterate(self, units: list[tuple[int, int, int]], skip_pairs: int = 0) -> Iterator[WindowBatch]:
        """Batches of the given units, in order, after the first `skip_pairs` pairs; all full but the last. Each
        one in tensors of its own size (a worker ships it to the trainer)."""
        buffer = BatchBuffer(self.batch_size)
        for filled in self.plan.batches(units, skip_pairs, lambda: buffer):
            yield filled.compact()


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, batch_size=at_least(1), seed=at_least(0), epoch=at_least(0),
                num_workers=at_least(0), batches=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("dataset", data_dir)
    dataset = PairsDataset(data_dir, cfg.batch_size, cfg.seed, cfg.epoch)
    words, _ = load_vocab(data_dir)
    loader = DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers)
    draws = dataset.meta.draws
    print(f"epoch {cfg.epoch}: draw {cfg.epoch % draws} of {draws}, {dataset.num_pairs:,} pairs in "
          f"{len(dataset.shards)} shards, {len(dataset.units)} row groups; "
          f"shard order {dataset.shards[:10]}{' ...' if len(dataset.shards) > 10 else ''}")
    started = time.perf_counter()
    pairs = batches = windows = 0
    for batch in loader:
        if batches < 3:
            starts = batch.window_starts.tolist()
            shown = "; ".join(f"{words[batch.window_target[w]]} -> "
                              f"{' '.join(words[c] for c in batch.context[starts[w]:starts[w + 1]].tolist())}"
                              for w in range(min(3, batch.n_windows)))
            print(f"batch {batches}: {batch.n_pairs:,} pairs in {batch.n_windows:,} windows: {shown}")
        pairs += batch.n_pairs
        windows += batch.n_windows
        batches += 1
        if batches == cfg.batches:
            break
    elapsed = time.perf_counter() - started
    return report.finish(batches=batches, pairs=pairs, windows=windows,
                         pairs_per_s=round(pairs / max(elapsed, 1e-9)), num_workers=cfg.num_workers)


if __name__ == "__main__":
    run(main)
