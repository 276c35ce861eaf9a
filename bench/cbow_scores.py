"""CBOW's scores on text8 under variants of what the reference trainers might do differently: score-only runs of the
CPU kernels on one draw of windows held in memory, then the text8 evaluation sets.

    nice -n 15 .venv/bin/python bench/cbow_scores.py --data-dir bench/work/text8-e1-cbow-hs/ours/data --loss hs \\
        --lr 0.025 --seeds 1,2,3 --init-scale 1,2 --order shuffled,text

--init-scale s: input rows uniform in +-s * 0.5 / dim (1: word2vec.c's and our SkipGram's; 2: gensim 4's
prep_vectors, uniform in [-1/dim, 1/dim)). --order shuffled: the windows of each 50M-pair stretch shuffled as
pairs_dataset.py shuffles a shard (train.py's order); text: in text order (gensim's and word2vec.c's); blocks:N:
blocks of N consecutive windows shuffled as units, text order inside a block.
Each variant x seed prints one line and appends a JSON line to bench/work/cbow_scores.jsonl.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cbow_kernel import batches, kernel_parser  # noqa: E402
from common import load_vocab  # noqa: E402
from evaluate import evaluate_analogies, evaluate_similarity  # noqa: E402
from pairs_dataset import iter_pairs, keep_probabilities, read_id_slices  # noqa: E402
from kernels_cpu import cbow_hs_step_cpu, cbow_step_cpu  # noqa: E402
from word2vec import SkipGram, build_huffman  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SHARD_PAIRS = 50_000_000  # pairs_dataset.py's PAIRS_PER_SHARD: the stretch whose windows are shuffled together


def draw_windows(data_dir: Path, counts: np.ndarray, seed: int, block_windows: int, window: int = 5,
                 sample: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target, context, window_starts) of one draw; blocks of block_windows consecutive windows shuffled inside
    each SHARD_PAIRS stretch (1: every window alone, train.py's order), or text order (block_windows 0)."""
    files = sorted((data_dir / "ids").glob("*.parquet"))
    pieces = list(iter_pairs(read_id_slices(files, len(counts), 1_000_000),
                             keep_probabilities(counts, sample, int(counts.sum())), window, sample, True, 1_000_000,
                             seed, with_sizes=True))
    target = np.concatenate([p[0] for p in pieces])
    context = np.concatenate([p[1] for p in pieces])
    sizes = np.concatenate([p[2] for p in pieces])
    sizes = sizes[sizes > 0]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    if block_windows == 0:
        return target, context, starts
    rng = np.random.default_rng(seed)
    order_parts = []
    first = 0
    while first < len(sizes):  # whole windows per stretch of about SHARD_PAIRS pairs
        last = int(np.searchsorted(starts, starts[first] + SHARD_PAIRS, side="left"))
        last = min(max(last, first + 1), len(sizes))
        blocks = -(-(last - first) // block_windows)
        block_order = rng.permutation(blocks)
        windows = (block_order[:, None] * block_windows + np.arange(block_windows)).reshape(-1)
        order_parts.append(first + windows[windows < last - first])
        first = last
    order = np.concatenate(order_parts)
    new_sizes = sizes[order]
    new_starts = np.concatenate([[0], np.cumsum(new_sizes)])
    source = np.repeat(starts[order] - new_starts[:-1], new_sizes) + np.arange(len(target))
    return target[source], context[source], new_starts


def scores(words: list[str], vectors: np.ndarray) -> dict:
    analogy = evaluate_analogies(words, vectors, SHARED / "eval_en" / "questions-words.txt")["total"]["accuracy"]
    ws = evaluate_similarity(words, vectors, SHARED / "eval_en" / "wordsim353.tsv")["spearman"]
    simlex = evaluate_similarity(words, vectors, SHARED / "eval_en" / "simlex999.txt")["spearman"]
    return {"analogy": analogy, "ws353": ws, "simlex999": simlex}


def main() -> None:
    parser = kernel_parser(__doc__)
    parser.add_argument("--epochs", type=int, default=1, help="each epoch a fresh draw (seed * 1000 + epoch)")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--init-scale", default="1", help="comma-separated multipliers of +-0.5/dim")
    parser.add_argument("--order", default="shuffled",
                        help="comma-separated: shuffled, text, blocks:N (blocks of N windows shuffled)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    words, counts = load_vocab(args.data_dir)
    counts = np.asarray(counts, dtype=np.int64)
    table = np.load(args.data_dir / "unigram_table.npy") if args.loss == "ns" else None
    tree = build_huffman(counts) if args.loss == "hs" else None
    for seed in [int(s) for s in args.seeds.split(",")]:
        for order in args.order.split(","):
            block_windows = {"shuffled": 1, "text": 0}[order] if ":" not in order else int(order.split(":")[1])
            draws = [draw_windows(args.data_dir, counts, seed * 1000 + e, block_windows)
                     for e in range(args.epochs)]
            total_pairs = sum(int(d[2][-1]) for d in draws)
            for scale in [float(s) for s in args.init_scale.split(",")]:
                model = SkipGram(len(words), args.dim, seed=seed, loss=args.loss)
                input_w = model.input.weight.data.numpy()
                input_w *= scale
                output_w = (model.output if args.loss == "ns" else model.inner).weight.data.numpy()
                started, done, batch_index = time.perf_counter(), 0, 0
                for target, context, window_starts in draws:
                    for p0, p1, starts in batches(window_starts, args.batch_size):
                        lr_start = args.lr * max(1e-4, 1 - (done + p0) / total_pairs)
                        lr_end = args.lr * max(1e-4, 1 - (done + p1) / total_pairs)
                        t, c = target[p0:p1], context[p0:p1]
                        if args.loss == "ns":
                            cbow_step_cpu(input_w, output_w, t, c, starts, table, 5, lr_start, lr_end,
                                          seed * 1_000_003 + batch_index, args.threads, 16)
                        else:
                            cbow_hs_step_cpu(input_w, output_w, t, c, starts, tree.paths, tree.codes, tree.lengths,
                                             lr_start, lr_end, args.threads, 16)
                        batch_index += 1
                    done += int(window_starts[-1])
                found = scores(words, input_w)
                line = {"loss": args.loss, "lr": args.lr, "epochs": args.epochs, "seed": seed, "order": order,
                        "init_scale": scale, "train_s": round(time.perf_counter() - started, 1), **found}
                print(f"{args.loss} lr {args.lr} epochs {args.epochs} seed {seed} {order:>8} init x{scale:g}: "
                      f"analogy {found['analogy'] * 100:.2f}%  WS353 {found['ws353']:.4f}  "
                      f"SimLex999 {found['simlex999']:.4f}", flush=True)
                with open(ROOT / "bench" / "work" / "cbow_scores.jsonl", "a") as handle:
                    handle.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
