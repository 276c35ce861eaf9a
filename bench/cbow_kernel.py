"""The CBOW kernels alone on one draw of a real corpus's windows, held in memory: how fast they train without the
loader, in corpus words/s (as bench/peers.py counts them), and the loss they reach.

    .venv/bin/python bench/cbow_kernel.py --data-dir bench/work/cbow/text8 --dim 100

The data dir needs convert_to_int.py's ids/ and vocab.json (and unigram_table.py's table for ns). The windows are
made as pairs_dataset.py makes them (sub-sampling, reduced windows; pairs_dataset.iter_pairs), then shuffled as
whole windows, then fed to the kernel in batches of --batch-size pairs cut into window_starts as the loader does.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load_vocab  # noqa: E402
from pairs_dataset import iter_pairs, keep_probabilities, read_id_slices  # noqa: E402
from kernels_cpu import cbow_hs_step_cpu, cbow_step_cpu  # noqa: E402
from word2vec import SkipGram, build_huffman  # noqa: E402


def shuffled_windows(data_dir: Path, counts: np.ndarray, seed: int, window: int = 5, sample: float = 1e-4,
                     shuffle: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, context, window_starts) of one draw with its windows in a random order (or in text order).

    A window is a run of pairs with one target position; two neighbouring positions holding the same word merge
    into one window here (rare; enough for a speed measurement).
    """
    files = sorted((data_dir / "ids").glob("*.parquet"))
    pieces = list(iter_pairs(read_id_slices(files, len(counts), 1_000_000), keep_probabilities(counts, sample),
                             window, sample, True, 1_000_000, seed))
    target = np.concatenate([t for t, _ in pieces])
    context = np.concatenate([c for _, c in pieces])
    starts = np.flatnonzero(np.concatenate([[True], target[1:] != target[:-1]]))
    sizes = np.diff(np.append(starts, len(target)))
    order = np.random.default_rng(seed).permutation(len(starts)) if shuffle else np.arange(len(starts))
    new_sizes = sizes[order]
    new_starts = np.concatenate([[0], np.cumsum(new_sizes)])
    # pair i of shuffled window k comes from old position starts[order[k]] + i
    source = np.repeat(starts[order] - new_starts[:-1], new_sizes) + np.arange(len(target))
    return target[source], context[source], new_starts


def batches(window_starts: np.ndarray, batch_size: int):
    """(pair range, window_starts of the batch) with windows cut at batch edges, as dataset.py cuts them."""
    n_pairs = int(window_starts[-1])
    for p0 in range(0, n_pairs, batch_size):
        p1 = min(n_pairs, p0 + batch_size)
        a, b = np.searchsorted(window_starts, [p0, p1], side="right")
        inner = window_starts[a:b]
        yield p0, p1, np.concatenate([[p0], inner[inner < p1], [p1]]) - p0


def kernel_parser(description: str) -> argparse.ArgumentParser:
    """The flags of a run of the CPU CBOW kernels over windows drawn in memory (this script and cbow_scores.py)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--loss", choices=["ns", "hs"], default="ns")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=300_000)
    return parser


def main() -> None:
    parser = kernel_parser(__doc__)
    parser.add_argument("--threads", default="2", help="thread counts to time in turn, comma-separated")
    parser.add_argument("--text-order", action="store_true",
                        help="windows in text order, not shuffled (gensim's and word2vec.c's order)")
    parser.add_argument("--loss-every", type=int, default=16)
    args = parser.parse_args()

    words, counts = load_vocab(args.data_dir)
    made = time.perf_counter()
    target, context, window_starts = shuffled_windows(args.data_dir, np.asarray(counts), seed=1,
                                                      shuffle=not args.text_order)
    corpus_tokens = int(np.asarray(counts).sum())
    print(f"{len(window_starts) - 1:,} windows, {len(target):,} pairs of {corpus_tokens:,} kept tokens "
          f"({time.perf_counter() - made:.1f} s to make)")
    table = np.load(args.data_dir / "unigram_table.npy") if args.loss == "ns" else None
    tree = build_huffman(np.asarray(counts)) if args.loss == "hs" else None

    def step(p0: int, p1: int, starts: np.ndarray, lr_start: float, lr_end: float, seed: int, threads: int) -> float:
        t, c = target[p0:p1], context[p0:p1]
        if args.loss == "ns":
            return cbow_step_cpu(input_w, output_w, t, c, starts, table, 5, lr_start, lr_end, seed, threads,
                                 args.loss_every)
        return cbow_hs_step_cpu(input_w, output_w, t, c, starts, tree.paths, tree.codes, tree.lengths, lr_start,
                                lr_end, threads, args.loss_every)

    n_pairs = len(target)
    for threads in [int(t) for t in args.threads.split(",")]:
        model = SkipGram(len(words), args.dim, seed=1, loss=args.loss)
        input_w = model.input.weight.data.numpy()
        output_w = (model.output if args.loss == "ns" else model.inner).weight.data.numpy()
        first = next(batches(window_starts, 1000))
        step(*first, 0.0, 0.0, 0, threads)  # compile (or load the cache) outside the timing; lr 0 changes nothing
        started = time.perf_counter()
        losses, windows = 0.0, 0
        for i, (p0, p1, starts) in enumerate(batches(window_starts, args.batch_size)):
            lr_start = args.lr * max(1e-4, 1 - p0 / n_pairs)
            lr_end = args.lr * max(1e-4, 1 - p1 / n_pairs)
            losses += step(p0, p1, starts, lr_start, lr_end, i, threads)
            windows += len(starts) - 1
        seconds = time.perf_counter() - started
        print(f"cbow {args.loss} dim {args.dim}, {'text order' if args.text_order else 'shuffled'}, {threads} "
              f"thread(s): {seconds:.2f} s, {n_pairs / seconds / 1e6:.2f}M pairs/s, {windows / seconds / 1e6:.2f}M "
              f"windows/s, {corpus_tokens / seconds / 1e6:.2f}M kept corpus words/s; mean loss per window "
              f"{losses / windows:.3f}", flush=True)

if __name__ == "__main__":
    main()
