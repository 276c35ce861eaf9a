"""One CPU kernel at two commits, interleaved batch by batch on the same draw of a real corpus: what a change
to a kernel bought, with the slow spells of a shared machine falling on both sides alike.

    .venv/bin/python prep.py --data-dir bench/work/wk-text8/data --dataset bench/work/text8.txt
    .venv/bin/python convert_to_int.py --data-dir bench/work/wk-text8/data
    .venv/bin/python bench/kernel_versions.py --before 3844a9d --kernel sg --dim 300 --threads 2

The working tree's kernels_cpu.py is "after"; `git show BEFORE:kernels_cpu.py` (word2vec.py before the split)
is loaded as "before". One epoch's
windows are drawn and shuffled as bench/window_kernels.py does (sub-sampling 1e-4, dynamic window 5); the pair
kernels get the same pairs shuffled one by one and negatives drawn ahead from the unigram table. Both sides start
from the same tables and train --pairs pairs in batches of 300,000, alternating which goes first; the first batch
(compilation) is not timed. Prints pairs/s of each side, after/before, and the largest difference between the two
input tables (0 with --threads 1 when the change keeps the arithmetic; float rounding when it reorders sums).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import kernels_cpu  # noqa: E402
import word2vec  # noqa: E402
from common import load_vocab  # noqa: E402
from machine_facts import machine_line  # noqa: E402
from unigram_table import build_table  # noqa: E402
from window_kernels import WORK, batch_window_starts, draw_epoch, load_ids, windows_shuffled  # noqa: E402

BATCH_SIZE = 300_000
KERNELS = ["sg", "sg-hs", "cbow", "cbow-hs"]


def load_before(ref: str, folder: Path):
    """The CPU kernels as they were at `ref` (kernels_cpu.py, or word2vec.py before the split), imported under
    another name (its numba cache stays in `folder`)."""
    shown = subprocess.run(["git", "show", f"{ref}:kernels_cpu.py"], cwd=ROOT, capture_output=True, text=True)
    source = shown.stdout if shown.returncode == 0 else subprocess.run(
        ["git", "show", f"{ref}:word2vec.py"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = folder / "word2vec_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("word2vec_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_kernel(module, kernel: str, tables: tuple[np.ndarray, np.ndarray], batch: dict, lr: tuple[float, float],
               seed: int, threads: int, tree, table: np.ndarray) -> float:
    input_w, output_w = tables
    if kernel == "sg":
        return module.sg_window_step_cpu(input_w, output_w, batch["target"], batch["context"], batch["starts"], table,
                                         5, *lr, seed, threads, 16)
    if kernel == "sg-hs":
        return module.sg_window_hs_step_cpu(input_w, output_w, batch["target"], batch["context"], batch["starts"],
                                            tree.paths, tree.codes, tree.lengths, *lr, threads, 16)
    if kernel == "cbow":
        return module.cbow_step_cpu(input_w, output_w, batch["target"], batch["context"], batch["starts"], table, 5,
                                    *lr, seed, threads, 16)
    return module.cbow_hs_step_cpu(input_w, output_w, batch["target"], batch["context"], batch["starts"],
                                   tree.paths, tree.codes, tree.lengths, *lr, threads, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git commit (or ref) whose word2vec.py is the baseline")
    parser.add_argument("--kernel", choices=KERNELS, default="sg")
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
    ids, docs = load_ids(data_dir)
    target, context, lengths = draw_epoch(ids, docs, counts, args.seed)
    rng = np.random.default_rng([args.seed, 1])
    w_target, w_context, w_lengths = windows_shuffled(target, context, lengths, rng)
    edges = np.concatenate([[0], np.cumsum(w_lengths)])
    n_pairs = len(w_target) if args.pairs <= 0 else min(args.pairs, len(w_target))
    shuffled = rng.permutation(len(target))[:n_pairs]
    p_target, p_context = target[shuffled], context[shuffled]
    table = build_table(counts, 100_000_000, 0.75)
    negatives = table[np.random.default_rng([args.seed, 2]).integers(0, len(table), (n_pairs, 5))]
    tree = word2vec.build_huffman(counts)
    hs = args.kernel.endswith("-hs")
    init = ((np.random.default_rng(args.seed).random((len(counts), args.dim), dtype=np.float32) - 0.5)
            / args.dim).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        sides = {"before": load_before(args.before, Path(folder)), "after": kernels_cpu}
        state = {name: {"tables": (init.copy(), np.zeros((len(counts) - hs, args.dim), np.float32)),
                        "seconds": 0.0, "loss": 0.0} for name in sides}
        for number, lo in enumerate(range(0, n_pairs, BATCH_SIZE)):
            hi = min(n_pairs, lo + BATCH_SIZE)
            batch = {"target": w_target[lo:hi], "context": w_context[lo:hi],
                     "starts": batch_window_starts(edges, lo, hi), "pair_target": p_target[lo:hi],
                     "pair_context": p_context[lo:hi], "negatives": negatives[lo:hi]}
            lr = (args.lr * (1 - lo / n_pairs), args.lr * (1 - hi / n_pairs))
            order = list(sides) if number % 2 == 0 else list(sides)[::-1]
            for name in order:
                run = state[name]
                started = time.perf_counter()
                run["loss"] += run_kernel(sides[name], args.kernel, run["tables"], batch, lr,
                                          args.seed * 1_000_003 + number, args.threads, tree, table)
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
