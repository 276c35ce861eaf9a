"""word2vec.c's skip-gram inner loops written plainly, pair after pair, in float64: the oracle the window kernels
are checked against (a window of one pair is one step of word2vec.c's loop).

Roles as in the project's kernels: `inputs[p]` owns the input row, `outputs[p]` the output side (its output row
and negatives, or its Huffman path). Each pair sees the updates of the pairs before it; within a pair every row is
scored against the input row as it was, as word2vec.c accumulates neu1e and adds it at the pair's end.
"""
from __future__ import annotations

import numpy as np

from w2v.kernels import MAX_SCORE

from w2v.huffman import HuffmanTree


def _sigma(score: float) -> float:
    return 1.0 / (1.0 + np.exp(-score))


def sgns_pairs(input_w: np.ndarray, output_w: np.ndarray, inputs: np.ndarray, outputs: np.ndarray,
               negatives: np.ndarray, lr_start: float, lr_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """word2vec.c's `if (negative > 0)` loop: (input table, output table, loss of each pair).

    A negative equal to the pair's output word is skipped; outside +-MAX_SCORE sigma is exactly 0 or 1.
    The learning rate of pair p is lr_start + (lr_end - lr_start) * p / n_pairs.
    """
    input_w, output_w = input_w.astype(np.float64), output_w.astype(np.float64)
    n_pairs = len(inputs)
    pair_losses = np.zeros(n_pairs)
    for p, (i, o) in enumerate(zip(inputs, outputs)):
        lr = lr_start + (lr_end - lr_start) * p / n_pairs
        u, grad_u = input_w[i].copy(), np.zeros(input_w.shape[1])
        for row, label in [(o, 1.0)] + [(n, 0.0) for n in negatives[p] if n != o]:
            v = output_w[row].copy()
            score = u @ v
            pair_losses[p] += np.log1p(np.exp(-score if label else score))
            sigma = 1.0 if score > MAX_SCORE else 0.0 if score < -MAX_SCORE else _sigma(score)
            g = (label - sigma) * lr
            grad_u += g * v
            output_w[row] = v + g * u
        input_w[i] = u + grad_u
    return input_w, output_w, pair_losses


def hs_pairs(input_w: np.ndarray, inner_w: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, tree: HuffmanTree,
             lr_start: float, lr_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """word2vec.c's `if (hs)` loop: (input table, inner-node table, loss of each pair).

    Along the output word's path, node n with bit b has label 1 - b; a node scored outside +-MAX_SCORE is
    skipped (the loss still counts it). Learning rate as in sgns_pairs.
    """
    input_w, inner_w = input_w.astype(np.float64), inner_w.astype(np.float64)
    n_pairs = len(inputs)
    pair_losses = np.zeros(n_pairs)
    for p, (i, o) in enumerate(zip(inputs, outputs)):
        lr = lr_start + (lr_end - lr_start) * p / n_pairs
        u, grad_u = input_w[i].copy(), np.zeros(input_w.shape[1])
        for node, code in zip(tree.paths[o, :tree.lengths[o]], tree.codes[o, :tree.lengths[o]]):
            v = inner_w[node].copy()
            score = u @ v
            pair_losses[p] += np.log1p(np.exp(score if code else -score))
            if abs(score) >= MAX_SCORE:
                continue
            g = (1 - code - _sigma(score)) * lr
            grad_u += g * v
            inner_w[node] = v + g * u
        input_w[i] = u + grad_u
    return input_w, inner_w, pair_losses


def one_pair_windows(n_pairs: int) -> np.ndarray:
    """window_starts of a batch whose every pair is a window of its own."""
    return np.arange(n_pairs + 1, dtype=np.int64)
