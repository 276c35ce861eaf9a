"""Tallies of the Triton hs kernels on real windows: bytes per pair, launches and the hottest rows'
atomic adds per loader batch, from a corpus's windows drawn as pairs_dataset.py draws them. Counts, not timings.

    python bench/hs_tally.py --data-dir bench/work/text8-e1-hs/ours/data     # text8 (ids/, vocab.json needed)

A batch is --batch-pairs consecutive pairs of the shuffled windows, cut as the loader cuts them. Per batch:
its windows and pairs a window; the mean path length of a window's target; the bytes per pair of the hs kernels at
--dim (gpu_check.hs_window_bytes, window by window); the atomic adds of the hottest inner rows, at --triton-group 1
(one per window whose target's path passes the row: the root takes every window) and at --group (the top
SHARED_LEVELS levels one per distinct row per program, deeper rows one per window), and of the hottest input row
(one per context slot naming it). Imports w2v.kernels.triton_steps (for SHARED_LEVELS), so it needs triton.
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

from benchlib import batch_window_starts, windows_of

# 70% of the nominal bandwidth (bytes/s): what a well-fed streaming kernel reaches on these cards
BANDWIDTH_70 = {"T4": 0.7 * 320e9, "H100": 0.7 * 3.35e12}
TAIGA_EPOCH_PAIRS = 16e9


def main(argv: list[str] | None = None) -> dict:
    import numpy as np

    from w2v.common import load_vocab
    from gpu_check import hs_window_bytes
    from w2v.kernels.triton_steps import SHARED_LEVELS
    from pairs_dataset import read_id_slices
    from w2v.huffman import huffman_for

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-pairs", type=int, default=300_000)
    parser.add_argument("--tokens", type=int, default=3_000_000, help="the first N tokens' windows, shuffled")
    parser.add_argument("--sample", type=float, default=1e-4)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--group", type=int, default=64, help="windows per program (train.py --triton-group)")
    args = parser.parse_args(argv)

    counts = load_vocab(args.data_dir, with_words=False)[1]
    tree = huffman_for(args.data_dir, counts)
    root = len(counts) - 2
    chunk = 1_000_000
    files = sorted((args.data_dir / "ids").glob("part-*.parquet"))
    slices = itertools.islice(read_id_slices(files, len(counts), chunk), max(1, args.tokens // chunk))
    target, context, edges = windows_of(slices, counts, seed=1, sample=args.sample, chunk_tokens=chunk)
    batches = []
    for b in range(args.batches):
        lo, hi = b * args.batch_pairs, (b + 1) * args.batch_pairs
        if hi > len(target):
            break
        starts = batch_window_starts(edges, lo, hi)
        sizes = np.diff(starts)
        window_target = target[lo + starts[:-1]]
        lengths = tree.lengths[window_target].astype(np.int64)
        nodes = np.concatenate([tree.paths[t, :n] for t, n in zip(window_target, lengths)]).astype(np.int64)
        window_of_node = np.repeat(np.arange(len(sizes)), lengths)
        depth = np.arange(len(nodes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        adds_1 = np.bincount(nodes, minlength=len(counts) - 1)  # --triton-group 1: an add per window on its path
        assert adds_1[root] == len(sizes), "every path starts at the root"
        # --group G: the top SHARED_LEVELS levels take an add per distinct row per program, deeper nodes per window
        shallow = depth < SHARED_LEVELS
        distinct = np.unique((window_of_node[shallow] // args.group) * len(counts) + nodes[shallow]) % len(counts)
        adds_g = np.bincount(distinct, minlength=len(counts) - 1) + np.bincount(nodes[~shallow],
                                                                                 minlength=len(counts) - 1)
        others = adds_1.copy()
        others[root] = 0
        deep = np.bincount(nodes[depth >= SHARED_LEVELS], minlength=len(counts) - 1)
        window_bytes = sum(hs_window_bytes(int(k), float(n), args.dim) for k, n in zip(sizes, lengths))
        batches.append({
            "windows": len(sizes), "pairs_per_window": round(float(sizes.mean()), 3),
            "mean_path_length": round(float(lengths.mean()), 3), "bytes_per_pair": round(window_bytes / len(target[lo:hi])),
            "bytes_per_cbow_window": round(window_bytes / len(sizes)),
            "group_1": {"root_adds": int(adds_1[root]), "hottest_other_node_adds": int(others.max()),
                        "hottest_other_node_depth": int(depth[nodes == others.argmax()][0])},
            f"group_{args.group}": {"hottest_node_adds": int(adds_g.max()),
                                    "hottest_node_depth": int(depth[nodes == adds_g.argmax()][0]),
                                    "root_adds": int(adds_g[root]),
                                    f"hottest_node_below_level_{SHARED_LEVELS}_adds": int(deep.max())},
            "hottest_input_row_adds": int(np.bincount(context[lo:hi]).max())})
    per_pair = float(np.mean([b["bytes_per_pair"] for b in batches]))
    projected = {card: {"pairs_per_s": bandwidth / per_pair,
                        "taiga_epoch_s": TAIGA_EPOCH_PAIRS / (bandwidth / per_pair)}
                 for card, bandwidth in BANDWIDTH_70.items()}
    found = {"data_dir": str(args.data_dir), "vocab_size": len(counts), "longest_path": tree.max_len,
             "dim": args.dim, "batch_pairs": args.batch_pairs, "batches": batches, "launches_per_batch": 2,
             "projected_at_70_percent_bandwidth": projected}
    print(json.dumps(found, indent=1))
    return found


if __name__ == "__main__":
    main()
