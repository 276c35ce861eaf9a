"""The skip-gram kernels alone, on the same draw of a real corpus: today's pair-by-pair kernels (pairs shuffled
one by one) against the window kernels (issue 12; windows shuffled as units), negative sampling and hierarchical
softmax. Kernel time only: no loader, no process start, so it isolates what the kernel order changes.

    .venv/bin/python prep.py --data-dir bench/work/wk-text8/data --dataset bench/work/text8.txt
    .venv/bin/python convert_to_int.py --data-dir bench/work/wk-text8/data
    .venv/bin/python bench/window_kernels.py --corpus text8 --dim 300

One epoch's pairs are drawn as pairs_dataset.py draws them (sub-sampling at 1e-4, dynamic window 5, pairs never
across a document), then ordered twice: windows shuffled as units (window_starts from the window edges, a window
cut by a batch edge split in two, as dataset.py does) and pairs shuffled one by one. Each kernel trains one epoch
in batches of 300,000 pairs from the same initial tables (SkipGram's: input uniform +-0.5/dim, output zeros) with
the learning rate decayed linearly from --lr to 0 over the epoch. The pair kernels get negatives drawn from the
unigram table ahead of time (the loader draws them in its own process in train.py), outside the timed part.
Figures: pairs/s and corpus words/s of the kernel time (corpus tokens / seconds, bench/peers.py's numerator).
--save DIR writes each kernel's input vectors (DIR/<kernel>.npy) for scoring afterwards (--score DIR, niced).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import load_vocab  # noqa: E402
from machine_facts import machine_line  # noqa: E402
from pairs_dataset import draw_windows, keep_probabilities, subsample, window_pairs  # noqa: E402
from unigram_table import build_table  # noqa: E402
from word2vec import (build_huffman, hs_step_cpu, sg_window_hs_step_cpu, sg_window_step_cpu,  # noqa: E402
                      sgns_step_cpu)

WORK = ROOT / "bench" / "work"
SHARED = ROOT.parent / "shared" / "data"
BATCH_SIZE = 300_000
KERNELS = ["numba", "window", "numba-hs", "window-hs"]


def load_ids(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The id stream of convert_to_int.py and each token's document number."""
    ids, docs, n_docs = [], [], 0
    for part in sorted((data_dir / "ids").glob("part-*.parquet")):
        column = pq.read_table(part, columns=["ids"]).column("ids").combine_chunks()
        lengths = np.diff(column.offsets.to_numpy())
        ids.append(column.values.to_numpy().astype(np.int32))
        docs.append(np.repeat(np.arange(n_docs, n_docs + len(lengths), dtype=np.int64), lengths))
        n_docs += len(lengths)
    return np.concatenate(ids), np.concatenate(docs)


def draw_epoch(ids: np.ndarray, docs: np.ndarray, counts: np.ndarray, seed: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, context, window lengths) of one draw, windows in corpus order."""
    rng = np.random.default_rng(seed)
    kept = subsample(ids, keep_probabilities(counts, 1e-4, len(ids)), rng)
    ids, docs = ids[kept], docs[kept]
    windows = draw_windows(len(ids), 5, rng)
    positions = np.arange(len(ids), dtype=np.int32)
    target_at, context_at = window_pairs(positions, docs, windows, window=5)
    edges = np.flatnonzero(np.diff(target_at)) + 1
    lengths = np.diff(np.concatenate([[0], edges, [len(target_at)]]))
    return ids[target_at], ids[context_at], lengths


def windows_shuffled(target, context, lengths, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    order = rng.permutation(len(lengths))
    new_lengths = lengths[order]
    new_starts = np.concatenate([[0], np.cumsum(new_lengths)[:-1]])
    index = np.repeat(starts[order] - new_starts, new_lengths) + np.arange(new_lengths.sum())
    return target[index], context[index], new_lengths


def batch_window_starts(all_starts: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Offsets of the windows of pairs lo..hi-1 into the batch; a window cut at lo or hi becomes its own window."""
    inside = all_starts[(all_starts > lo) & (all_starts < hi)]
    return np.concatenate([[0], inside - lo, [hi - lo]]).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=["text8", "ru"], default="text8")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--kernels", default=",".join(KERNELS), help=f"comma-separated, of {KERNELS}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.025)
    parser.add_argument("--pairs", type=int, default=0, help="train on the first PAIRS pairs only (0: the epoch)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, help="write each kernel's input vectors here as <kernel>.npy")
    parser.add_argument("--score", type=Path, help="score the vectors saved in this folder, train nothing")
    args = parser.parse_args()
    data_dir = WORK / f"wk-{args.corpus}" / "data"
    words, counts = load_vocab(data_dir)
    if args.score:
        score(args.corpus, words, args.score)
        return
    numba.set_num_threads(args.threads)
    ids, docs = load_ids(data_dir)
    # bench/peers.py's numerator: the raw corpus's tokens (before min_count), as gensim counts them
    corpus_tokens = json.loads((data_dir / "stats" / "convert_to_int.json").read_text())["corpus_tokens"]
    target, context, lengths = draw_epoch(ids, docs, counts, args.seed)
    rng = np.random.default_rng([args.seed, 1])
    w_target, w_context, w_lengths = windows_shuffled(target, context, lengths, rng)
    window_edges = np.concatenate([[0], np.cumsum(w_lengths)])
    shuffled = rng.permutation(len(target))
    p_target, p_context = target[shuffled], context[shuffled]
    del target, context, shuffled
    n_pairs = len(p_target) if args.pairs <= 0 else min(args.pairs, len(p_target))
    table = build_table(counts, 100_000_000, 0.75)
    tree = build_huffman(counts)
    print(f"{args.corpus}: {corpus_tokens:,} corpus tokens, {len(w_target):,} pairs in {len(w_lengths):,} windows "
          f"({len(w_target) / len(w_lengths):.2f} pairs per window), training on {n_pairs:,}; dim {args.dim}, "
          f"{args.threads} threads", flush=True)
    init = ((np.random.default_rng(args.seed).random((len(counts), args.dim), dtype=np.float32) - 0.5)
            / args.dim).astype(np.float32)
    results = {"corpus": args.corpus, "dim": args.dim, "threads": args.threads, "pairs": n_pairs,
               "corpus_tokens": int(corpus_tokens), "epoch_pairs": int(len(w_target)), "machine": machine_line(),
               "date": datetime.date.today().isoformat(), "kernels": {}}
    batches = [(lo, min(n_pairs, lo + BATCH_SIZE)) for lo in range(0, n_pairs, BATCH_SIZE)]
    kernels = args.kernels.split(",")
    state = {}
    for kernel in kernels:
        hs = kernel.endswith("-hs")
        state[kernel] = {"input": init.copy(), "draws": np.random.default_rng([args.seed, 2]),
                         "output": np.zeros((len(counts) - 1 if hs else len(counts), args.dim), np.float32),
                         "seconds": 0.0, "cpu_seconds": 0.0, "loss": 0.0}
    # Batch after batch, each kernel in turn on its own tables: a slow spell of the shared machine falls on all.
    for number, (lo, hi) in enumerate(batches):
        lr_start, lr_end = args.lr * (1 - lo / n_pairs), args.lr * (1 - hi / n_pairs)
        starts = batch_window_starts(window_edges, lo, hi)
        for kernel in kernels:
            run = state[kernel]
            input_w, output_w = run["input"], run["output"]
            negatives = (table[run["draws"].integers(0, len(table), (hi - lo, 5))] if kernel == "numba" else None)
            started, cpu_started = time.perf_counter(), time.process_time()
            if kernel == "numba":
                loss = sgns_step_cpu(input_w, output_w, p_target[lo:hi], p_context[lo:hi], negatives, lr_start,
                                     lr_end, args.threads, 16)
            elif kernel == "numba-hs":
                loss = hs_step_cpu(input_w, output_w, p_target[lo:hi], p_context[lo:hi], tree.paths, tree.codes,
                                   tree.lengths, lr_start, lr_end, args.threads, 16)
            elif kernel == "window":
                loss = sg_window_step_cpu(input_w, output_w, w_target[lo:hi], w_context[lo:hi], starts, table, 5,
                                          lr_start, lr_end, args.seed * 1_000_003 + number, args.threads, 16)
            else:
                loss = sg_window_hs_step_cpu(input_w, output_w, w_target[lo:hi], w_context[lo:hi], starts,
                                             tree.paths, tree.codes, tree.lengths, lr_start, lr_end, args.threads, 16)
            run["loss"] += loss
            if number > 0:  # the first batch compiles (or loads the cache): not timed
                run["seconds"] += time.perf_counter() - started
                run["cpu_seconds"] += time.process_time() - cpu_started
    timed_pairs = n_pairs - (batches[0][1] - batches[0][0])
    for kernel in kernels:
        run = state[kernel]
        seconds = run["seconds"]
        figures = {"seconds": seconds, "cpu_share": run["cpu_seconds"] / seconds / args.threads,
                   "pairs_per_s": timed_pairs / seconds,
                   "words_per_s": corpus_tokens * timed_pairs / len(w_target) / seconds,
                   "loss_per_pair": run["loss"] / n_pairs}
        results["kernels"][kernel] = figures
        print(f"{kernel:>10}: {figures['pairs_per_s'] / 1e6:.2f}M pairs/s, {figures['words_per_s'] / 1e3:,.0f}K "
              f"corpus words/s, loss per pair {figures['loss_per_pair']:.3f}, CPU {figures['cpu_share']:.0%} of "
              f"{args.threads} threads' wall time", flush=True)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.save(args.save / f"{kernel}.npy", run["input"])
    with open(WORK / "window_kernels.jsonl", "a") as handle:
        handle.write(json.dumps(results) + "\n")


def score(corpus: str, words: list[str], folder: Path) -> None:
    from evaluate import evaluate_analogies, evaluate_similarity
    sets = {"text8": (["eval_en/questions-words.txt"], ["eval_en/wordsim353.tsv", "eval_en/simlex999.txt"]),
            "ru": ([], ["eval/ru_simlex965.tsv", "eval/hj.csv"])}[corpus]
    for path in sorted(folder.glob("*.npy")):
        vectors = np.load(path)
        shown = [f"{Path(n).stem} {evaluate_analogies(words, vectors, SHARED / n)['total']['accuracy']:.4f}"
                 for n in sets[0]]
        shown += [f"{Path(n).stem} {evaluate_similarity(words, vectors, SHARED / n)['spearman']:.4f}"
                  for n in sets[1]]
        print(f"{path.stem:>10}: " + ", ".join(shown))


if __name__ == "__main__":
    main()
