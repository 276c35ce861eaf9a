"""Stage 6: the skip-gram model with negative sampling, its training steps, and k-nearest neighbours.

Run as a script it loads trained vectors and prints the nearest neighbours of words:
    python word2vec.py --words москва король

The loss for a pair (t, c) with negatives n_1..n_K, input vector u = in[t] and output vectors v = out[.]:
    L = -log sigma(u.v_c) - sum_k log sigma(-u.v_nk)
Its gradient is known in closed form (g = sigma(score) - label):
    dL/du = sum_j g_j v_j,   dL/dv_j = g_j u
so the training steps below apply it directly instead of asking autograd for it. `SkipGram.forward` keeps the
autograd form as the reference the tests check the steps against.

Two steps, same update rule as word2vec.c (plain SGD, learning rate decayed linearly by the caller):
- `sgns_step_cpu`: one fused numba kernel, pair by pair, threads sharing the tables without locks (Hogwild, as
  word2vec.c and gensim do). Measured on 2 CPU cores it is ~4x faster than the batched torch step, and each pair
  sees the updates of the pairs before it, as in word2vec.c.
- `sgns_step_torch`: batched torch ops for CUDA (gathers, bmm, index_add_), split into micro-batches.
"""
from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
import torch
from torch import nn

from common import load_vocab, parse_config, require, run

DATA_DIR = "data"  # where stage outputs live
WORDS = ["москва", "король", "хороший", "говорить"]  # words whose neighbours to print
K = 10  # neighbours per word

# word2vec.c's MAX_EXP: beyond it sigma is taken as 0 or 1 and the gradient as saturated.
MAX_SCORE = 6.0


class SkipGram(nn.Module):
    """Input and output embedding tables, initialised as word2vec.c does (input uniform +-0.5/dim, output 0)."""

    def __init__(self, vocab_size: int, dim: int, seed: int = 1, words: list[str] | None = None):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.input = nn.Embedding(vocab_size, dim, sparse=True)
        self.output = nn.Embedding(vocab_size, dim, sparse=True)
        with torch.no_grad():
            self.input.weight.copy_((torch.rand(vocab_size, dim, generator=generator) - 0.5) / dim)
            self.output.weight.zero_()
        self.words = list(words) if words is not None else None

    def forward(self, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Summed negative-sampling loss of the batch (autograd reference; training uses the closed-form steps)."""
        u = self.input(target.long())
        v_pos = self.output(context.long())
        v_neg = self.output(negatives.long())
        pos_score = (u * v_pos).sum(-1)
        neg_score = torch.bmm(v_neg, u.unsqueeze(2)).squeeze(2)
        return -(nn.functional.logsigmoid(pos_score).sum() + nn.functional.logsigmoid(-neg_score).sum())

    def nearest(self, words: list[str], k: int = 10) -> dict[str, list[tuple[str, float]]]:
        """Cosine k-nearest neighbours (by input vectors) of each known word; unknown words raise KeyError."""
        if self.words is None:
            raise ValueError("the model was built without its word list")
        return nearest_neighbours(self.words, self.input.weight.detach(), words, k)


def nearest_neighbours(words: list[str], vectors: torch.Tensor | np.ndarray, queries: list[str],
                       k: int = 10) -> dict[str, list[tuple[str, float]]]:
    """Cosine k-nearest neighbours of each query word among `words` (the query itself left out)."""
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    index = {word: i for i, word in enumerate(words)}
    unknown = [word for word in queries if word not in index]
    if unknown:
        raise KeyError(f"unknown word{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    rows = torch.tensor([index[word] for word in queries], dtype=torch.long)
    cosine = unit[rows] @ unit.T
    cosine[torch.arange(len(rows)), rows] = -math.inf
    scores, ids = cosine.topk(min(k, len(words) - 1), dim=1)
    return {word: [(words[j], float(s)) for j, s in zip(ids[i].tolist(), scores[i].tolist())]
            for i, word in enumerate(queries)}


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def sgns_step_cpu(input_w: np.ndarray, output_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                  negatives: np.ndarray, lr_start: float, lr_end: float, threads: int) -> float:
    """Train on every pair in order, SGD pair by pair (word2vec.c's inner loop); returns the summed loss.

    The learning rate moves linearly from lr_start to lr_end across the batch. `threads` contiguous slices of
    the batch run at once and update the shared tables without locks, as word2vec.c does.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_negatives = negatives.shape[1]
    per_thread = (n_pairs + threads - 1) // threads
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        grad_u = np.empty(dim, dtype=np.float32)
        loss = 0.0
        for p in range(thread * per_thread, min(n_pairs, (thread + 1) * per_thread)):
            lr = np.float32(lr_start + (lr_end - lr_start) * (p / n_pairs))
            u = input_w[target[p]]
            grad_u[:] = 0.0
            for j in range(n_negatives + 1):
                if j == 0:
                    v, label = output_w[context[p]], 1.0
                else:
                    v, label = output_w[negatives[p, j - 1]], 0.0
                score = np.float32(0.0)
                for d in range(dim):
                    score += u[d] * v[d]
                # word2vec.c clips at +-MAX_EXP; the loss still counts the true value
                signed = score if label == 1.0 else -score
                loss += math.log1p(math.exp(-signed)) if signed > -30.0 else -signed
                if score > MAX_SCORE:
                    g = (label - 1.0) * lr
                elif score < -MAX_SCORE:
                    g = label * lr
                else:
                    g = (label - 1.0 / (1.0 + math.exp(-score))) * lr
                g = np.float32(g)
                for d in range(dim):
                    grad_u[d] += g * v[d]
                    v[d] += g * u[d]
            for d in range(dim):
                u[d] += grad_u[d]
        losses[thread] = loss
    return losses.sum()


def sgns_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor,
                    lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched SGD step (for CUDA): returns the summed loss.

    Each micro-batch reads the tables once and adds its summed gradients once, so a row seen many times in a
    micro-batch moves by the sum of its stale gradients: smaller micro-batches stay closer to word2vec.c.
    """
    input_w, output_w = model.input.weight.data, model.output.weight.data
    n_pairs = target.shape[0]
    step = micro_batch if micro_batch > 0 else n_pairs
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    for start in range(0, n_pairs, step):
        stop = min(n_pairs, start + step)
        lr = lr_start + (lr_end - lr_start) * ((start + stop) / 2 / n_pairs)
        t = target[start:stop].long()
        out_ids = torch.cat([context[start:stop, None], negatives[start:stop]], dim=1).long()
        u = input_w[t]
        v = output_w[out_ids]
        scores = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        signed = torch.where(labels > 0, scores, -scores)
        total_loss += nn.functional.softplus(-signed).sum(dtype=torch.float64)
        # Saturate like word2vec.c outside +-MAX_SCORE.
        sigma = torch.sigmoid(scores)
        sigma = torch.where(scores > MAX_SCORE, 1.0, torch.where(scores < -MAX_SCORE, 0.0, sigma))
        g = (labels - sigma) * lr
        grad_u = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        grad_v = g.unsqueeze(2) * u.unsqueeze(1)
        input_w.index_add_(0, t, grad_u)
        output_w.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, grad_v.shape[-1]))
    return float(total_loss)


def load_trained(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """Words and input vectors of the trained model in DATA_DIR/model."""
    data_dir = Path(data_dir)
    embeddings = require(data_dir / "model" / "embeddings.npy", "train.py")
    words, _ = load_vocab(data_dir)
    return words, np.load(embeddings)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    words, vectors = load_trained(Path(cfg.data_dir))
    known = [word for word in cfg.words if word in set(words)]
    for word in cfg.words:
        if word not in known:
            print(f"unknown word: {word}")
    neighbours = nearest_neighbours(words, vectors, known, cfg.k) if known else {}
    for word, found in neighbours.items():
        print(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in found))
    return neighbours


if __name__ == "__main__":
    run(main)
