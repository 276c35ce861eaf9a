"""One CPU kernel at two commits, interleaved batch by batch on the same draw of a real corpus: what a change
to a kernel bought, with the slow spells of a shared machine falling on both sides alike.

    .venv/bin/python prep.py --data-dir bench/work/wk-text8/data --dataset bench/work/text8.txt
    .venv/bin/python convert_to_int.py --data-dir bench/work/wk-text8/data
    .venv/bin/python bench/kernel_versions.py --before 3844a9d --kernel sg --dim 300 --threads 2

The working tree's kernel is "after"; the same kernel as the commit --before had it is "before" (benchlib.kernel
finds it in whichever module held it there). One epoch's windows are drawn and shuffled as units
(benchlib.drawn_windows: sub-sampling 1e-4, dynamic window 5). Both sides start from the same tables and train
--pairs pairs in batches of 300,000, alternating which goes first; the first batch (compilation) is not timed.
Prints pairs/s of each side, after/before, and the largest difference between the two input tables (0 with
--threads 1 when the change keeps the arithmetic; float rounding when it reorders sums).
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from benchlib import WORK, batch_window_starts, drawn_windows, kernel, machine_line
from common import load_vocab
from unigram_table import build_table
from word2vec import build_huffman

BATCH_SIZE = 300_000
NEGATIVES = 5
LOSS_EVERY = 16
# --kernel: the window kernel it names
KERNELS = {"sg": "sg_window_step_cpu", "sg-hs": "sg_window_hs_step_cpu", "cbow": "cbow_step_cpu",
           "cbow-hs": "cbow_hs_step_cpu"}


def run_kernel(step, hs: bool, tables: tuple[np.ndarray, np.ndarray], batch: dict, lr: tuple[float, float],
               seed: int, threads: int, tree, table: np.ndarray) -> float:
    input_w, output_w = tables
    if hs:
        return step(input_w, output_w, batch["target"], batch["context"], batch["starts"], tree.paths, tree.codes,
                    tree.lengths, *lr, threads, LOSS_EVERY)
    return step(input_w, output_w, batch["target"], batch["context"], batch["starts"], table, NEGATIVES, *lr, seed,
                threads, LOSS_EVERY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git commit (or ref) whose kernel is the baseline")
    parser.add_argument("--kernel", choices=list(KERNELS), default="sg")
    parser.add_argument("--corpus", choices=["text8", "ru"], default="text8")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=9_000_000, help="pairs to train on (0: the epoch)")
    parser.add_argument("--lr", type=float, default=0.025)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    data_dir = WORK / f"wk-{args.corpus}" / "data"
    words, counts = load_vocab(data_dir)
    target, context, edges = drawn_windows(data_dir, counts, args.seed)
    n_pairs = len(target) if args.pairs <= 0 else min(args.pairs, len(target))
    table = build_table(counts, 100_000_000, 0.75)
    tree = build_huffman(counts)
    hs = args.kernel.endswith("-hs")
    init = ((np.random.default_rng(args.seed).random((len(counts), args.dim), dtype=np.float32) - 0.5)
            / args.dim).astype(np.float32)
    sides = {"before": kernel(KERNELS[args.kernel], args.before), "after": kernel(KERNELS[args.kernel])}
    state = {name: {"tables": (init.copy(), np.zeros((len(counts) - hs, args.dim), np.float32)),
                    "seconds": 0.0, "loss": 0.0} for name in sides}
    for number, lo in enumerate(range(0, n_pairs, BATCH_SIZE)):
        hi = min(n_pairs, lo + BATCH_SIZE)
        batch = {"target": target[lo:hi], "context": context[lo:hi], "starts": batch_window_starts(edges, lo, hi)}
        lr = (args.lr * (1 - lo / n_pairs), args.lr * (1 - hi / n_pairs))
        order = list(sides) if number % 2 == 0 else list(sides)[::-1]
        for name in order:
            run = state[name]
            started = time.perf_counter()
            run["loss"] += run_kernel(sides[name], hs, run["tables"], batch, lr, args.seed * 1_000_003 + number,
                                      args.threads, tree, table)
            if number > 0:
                run["seconds"] += time.perf_counter() - started
    timed = n_pairs - min(n_pairs, BATCH_SIZE)
    print(f"{args.kernel}, {args.corpus}, dim {args.dim}, {args.threads} threads, {n_pairs:,} pairs; "
          f"before = {args.before}; {machine_line()}")
    for name in sides:
        run = state[name]
        print(f"{name:>7}: {timed / run['seconds'] / 1e6:.3f}M pairs/s, loss per pair {run['loss'] / n_pairs:.4f}")
    difference = np.abs(state["before"]["tables"][0] - state["after"]["tables"][0]).max()
    print(f"after/before: {state['before']['seconds'] / state['after']['seconds']:.3f}x; "
          f"largest input-table difference {difference:.2e}")


if __name__ == "__main__":
    main()
