"""One CPU window kernel alone on one draw of a corpus's windows: two versions interleaved batch by batch (what a
change bought, the slow spells of a shared machine falling on both sides alike), or one version with its bounds.

    .venv/bin/python prep.py --data-dir bench/work/wk-text8/data --dataset bench/work/text8.txt
    .venv/bin/python convert_to_int.py --data-dir bench/work/wk-text8/data
    (--corpus ru: the same two with bench/work/wk-ru/data and --dataset ../shared/data/corpus/ru_corpus.parquet)
    .venv/bin/python bench/kernel_versions.py --before 9b9a587 --kernel cbow --dim 100 --threads 1
    .venv/bin/python bench/kernel_versions.py --kernel cbow --dim 100 --threads 1 --hot-rows 2048
    .venv/bin/python bench/kernel_versions.py --corpus zipf --kernel sg --dim 300 --threads 2   # 2.35M words

The working tree's kernel is "after"; with --before, the same kernel as that commit had it is "before"
(benchlib.kernel finds it in whichever module held it there). One epoch's windows are drawn and shuffled as units
(benchlib.drawn_windows: sub-sampling 1e-4, dynamic window 5). --corpus zipf draws the token stream instead from
the Zipf-Mandelbrot law of bench/zipf_corpus.py restricted to the --vocab most frequent words (2,352,631: the
vocabulary of the billion-token corpus at min_count 5), in documents of DOC_TOKENS tokens, so the kernel meets
the rows of a billion-token vocabulary with their real frequencies without the stages before it.
Each side starts from the same tables and trains --pairs pairs in batches of 300,000, alternating which goes
first; the first batch (compilation) is not timed. Printed per side: pairs/s and windows/s by the wall clock, the
process's CPU time per window (its threads together: the figure that holds up best while other jobs share the
cores), and the corpus words/s those imply (windows/s times raw tokens per retained window, as bench/peers.py
counts training words); then after/before by wall and by CPU time, and the largest difference between the two
input tables (0 with --threads 1 when the change keeps the arithmetic; float rounding when it reorders sums).
--hot-rows N folds every row id into 0..N-1 (ns: targets, contexts and the negatives' alias table; hs: the contexts, the
paths staying real), so the same windows train on rows that stay in cache: the kernel's speed without its
memory misses, for the memory-bound share of its time.
"""
from __future__ import annotations

import argparse
import inspect
import time

import numba
import numpy as np
from benchlib import WORK, batch_window_starts, drawn_windows, kernel, machine_line, windows_of
from w2v.common import load_vocab
from unigram_table import build_alias
from w2v.huffman import build_huffman

BATCH_SIZE = 300_000
NEGATIVES = 5
LOSS_EVERY = 16
# --kernel: the window kernel it names
KERNELS = {"sg": "sg_window_step_cpu", "sg-hs": "sg_window_hs_step_cpu", "cbow": "cbow_step_cpu",
           "cbow-hs": "cbow_hs_step_cpu"}
ZIPF_VOCAB = 2_352_631  # the billion-token corpus's vocabulary at min_count 5 (bench/LOG.md, "A billion tokens")
ZIPF_TOKENS = 40_000_000  # raw tokens drawn for --corpus zipf
ZIPF_CORPUS_TOKENS = 1_007_169_119  # the billion-token corpus's tokens: the counts sub-sampling reads
DOC_TOKENS = 60  # --corpus zipf's document length (ru_corpus: 13.5M words in 226K texts)


def zipf_windows(vocab: int, tokens: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(counts, target, context, window_edges) of `tokens` tokens drawn from zipf_corpus's law over its `vocab`
    most frequent ranks, counts scaled to the billion-token corpus, shuffled windows as drawn_windows gives them."""
    from zipf_corpus import EXPONENT, SHIFT

    weights = (np.arange(1, vocab + 1, dtype=np.float64) + SHIFT) ** -EXPONENT
    weights /= weights.sum()
    counts = np.maximum(5, np.round(weights * ZIPF_CORPUS_TOKENS)).astype(np.int64)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(weights)
    ids = np.minimum(np.searchsorted(cumulative, rng.random(tokens) * cumulative[-1]), vocab - 1).astype(np.int32)
    slices = ((ids[a:a + 10_000_000], np.arange(a, min(tokens, a + 10_000_000)) // DOC_TOKENS)
              for a in range(0, tokens, 10_000_000))
    return (counts, *windows_of(slices, counts, seed))


def run_kernel(step, hs: bool, tables: tuple[np.ndarray, np.ndarray], batch: dict, lr: tuple[float, float],
               seed: int, threads: int, tree, table: np.ndarray) -> float:
    input_w, output_w = tables
    # today's kernels take one target per window; older commits' took the target of every pair
    per_pair = "target" in inspect.signature(getattr(step, "py_func", step)).parameters
    target = batch["target"] if per_pair else batch["target"][batch["starts"][:-1]]
    if hs:
        return step(input_w, output_w, target, batch["context"], batch["starts"], tree.paths, tree.codes,
                    tree.lengths, *lr, threads, LOSS_EVERY)
    return step(input_w, output_w, target, batch["context"], batch["starts"], table, NEGATIVES, *lr, seed,
                threads, LOSS_EVERY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="git commit (or ref) whose kernel is the baseline (none: one side)")
    parser.add_argument("--kernel", choices=list(KERNELS), default="sg")
    parser.add_argument("--corpus", choices=["text8", "ru", "zipf"], default="text8")
    parser.add_argument("--vocab", type=int, default=ZIPF_VOCAB, help="--corpus zipf: vocabulary size")
    parser.add_argument("--tokens", type=int, default=ZIPF_TOKENS, help="--corpus zipf: raw tokens drawn")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=9_000_000, help="pairs to train on (0: the epoch)")
    parser.add_argument("--hot-rows", type=int, default=0, help="fold row ids into this many (0: real rows)")
    parser.add_argument("--lr", type=float, default=0.025)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    if args.corpus == "zipf":
        counts, target, context, edges = zipf_windows(args.vocab, args.tokens, args.seed)
        raw_tokens = args.tokens
    else:
        _, counts = load_vocab(WORK / f"wk-{args.corpus}" / "data")
        target, context, edges = drawn_windows(WORK / f"wk-{args.corpus}" / "data", counts, args.seed)
        raw_tokens = int(counts.sum())
    n_pairs = len(target) if args.pairs <= 0 else min(args.pairs, len(target))
    hs = args.kernel.endswith("-hs")
    table = None if hs else build_alias(counts, 0.75)  # today's kernels' negatives (unigram_table.py)
    tree = build_huffman(counts) if hs else None
    if args.hot_rows:
        context = (context % args.hot_rows).astype(context.dtype)
        if not hs:
            target = (target % args.hot_rows).astype(target.dtype)
            # the same distribution folded: row r draws the weight of every word whose id folds to r
            folded = np.bincount(np.arange(len(counts)) % args.hot_rows, weights=counts ** 0.75)
            table = build_alias(folded, 1.0)
    words_per_window = raw_tokens / (len(edges) - 1)
    rng = np.random.default_rng(args.seed)
    init = rng.random((len(counts), args.dim), dtype=np.float32)
    init -= 0.5
    init /= args.dim
    sides = {"after": kernel(KERNELS[args.kernel])}
    if args.before:
        sides = {"before": kernel(KERNELS[args.kernel], args.before), **sides}
    state = {name: {"tables": (init if len(sides) == 1 else init.copy(),
                               np.zeros((len(counts) - hs, args.dim), np.float32)),
                    "seconds": 0.0, "cpu": 0.0, "loss": 0.0} for name in sides}
    timed_windows = 0
    for number, lo in enumerate(range(0, n_pairs, BATCH_SIZE)):
        hi = min(n_pairs, lo + BATCH_SIZE)
        batch = {"target": target[lo:hi], "context": context[lo:hi], "starts": batch_window_starts(edges, lo, hi)}
        if number > 0:
            timed_windows += len(batch["starts"]) - 1
        lr = (args.lr * (1 - lo / n_pairs), args.lr * (1 - hi / n_pairs))
        order = list(sides) if number % 2 == 0 else list(sides)[::-1]
        for name in order:
            run = state[name]
            started, started_cpu = time.perf_counter(), time.process_time()
            run["loss"] += run_kernel(sides[name], hs, run["tables"], batch, lr, args.seed * 1_000_003 + number,
                                      args.threads, tree, table)
            if number > 0:
                run["seconds"] += time.perf_counter() - started
                run["cpu"] += time.process_time() - started_cpu
    timed = n_pairs - min(n_pairs, BATCH_SIZE)
    vocab_note = f", vocab {len(counts):,}" + (f", rows folded into {args.hot_rows}" if args.hot_rows else "")
    print(f"{args.kernel}, {args.corpus}{vocab_note}, dim {args.dim}, {args.threads} threads, {n_pairs:,} pairs "
          f"({timed / max(1, timed_windows):.2f} per window, "
          f"{words_per_window:.2f} corpus words per window)" + (f"; before = {args.before}" if args.before else "")
          + f"; {machine_line()}")
    for name in sides:
        run = state[name]
        windows_s = timed_windows / run["seconds"]
        print(f"{name:>7}: {timed / run['seconds'] / 1e6:.3f}M pairs/s, {windows_s / 1e6:.3f}M windows/s, "
              f"{windows_s * words_per_window / 1e6:.3f}M words/s (wall); {run['cpu'] / timed_windows * 1e9:.0f} ns "
              f"CPU per window, {timed_windows * words_per_window / run['cpu'] / 1e6:.3f}M words per CPU-second; "
              f"loss per pair {run['loss'] / n_pairs:.4f}")
    if args.before:
        difference = np.abs(state["before"]["tables"][0] - state["after"]["tables"][0]).max()
        print(f"after/before: {state['before']['seconds'] / state['after']['seconds']:.3f}x (wall), "
              f"{state['before']['cpu'] / state['after']['cpu']:.3f}x (CPU); "
              f"largest input-table difference {difference:.2e}")


if __name__ == "__main__":
    main()
