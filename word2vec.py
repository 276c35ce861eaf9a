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
- `sgns_step_shared`: the lean CUDA step: groups of pairs share their negatives, so a group's contexts and
  negatives are one block of rows and the scores and both gradients are three bmms.
Both torch steps can scale the summed gradient of a row repeated within a micro-batch (`row_count_scale`),
which large micro-batches need (bench/RESULTS.md, "The torch step on CPU").

Hierarchical softmax (train.py --loss hs) replaces the negatives by the context word's path in a Huffman tree over
the vocabulary counts (`build_huffman`): L = -sum over the path's nodes n with bit b of log sigma((1-2b) u.v_n),
with V-1 inner-node vectors instead of the output table. `hs_step_cpu` and `hs_step_torch` are its two steps,
`SkipGram.forward_hs` its autograd reference.

Window kernels (issue 12; shards of pairs_dataset.py --order windows keep a target occurrence's pairs together):
`sg_window_step_cpu` (negatives shared by the window, HogBatch after Ji et al. 2016) and `sg_window_hs_step_cpu`
(the target's Huffman path shared by the window). Roles as in word2vec.c: the window's target owns the output side
(its output row and the negatives, or its path), its contexts are the inputs; a window's block of scores is taken
before any of its rows moves, so each output row is fetched once per window instead of once per pair.

CBOW (train.py --model cbow): the mean h of a window's context input vectors predicts its target, with negatives
(`cbow_step_cpu`, `cbow_step_torch`) or the target's Huffman path (`cbow_hs_step_cpu`, `cbow_hs_step_torch`); dL/dh
goes, undivided, to every context input row, as in word2vec.c. `SkipGram.forward_cbow` / `forward_cbow_hs` are their
autograd references. The numba kernels draw their own negatives (counter_draw) and train window by window.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import torch
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic
from torch import nn

from common import at_least, atomic_output, check_flags, load_vocab, parse_config, require, run

DATA_DIR = "data"  # where stage outputs live
WORDS = ["москва", "король", "хороший", "говорить"]  # words whose neighbours to print
K = 10  # neighbours per word

# word2vec.c's MAX_EXP: beyond it sigma is taken as 0 or 1 and the gradient as saturated.
MAX_SCORE = 6.0
# float32 values per 64-byte cache line: the stride of the row prefetches.
FLOATS_PER_LINE = 16


class SkipGram(nn.Module):
    """Input and output embedding tables, initialised as word2vec.c does (input uniform +-0.5/dim, output 0).

    init_range r draws the input rows uniform in +-r/dim instead: train.py gives CBOW 1.0, gensim 4's range
    (its prep_vectors), as CBOW's mean of several small rows starts slow (bench/RESULTS.md, "CBOW (issue 12)").

    With loss="hs" the output table is replaced by the V-1 inner-node vectors of the Huffman tree (`inner`,
    word2vec.c's syn1, also zeros).
    """

    def __init__(self, vocab_size: int, dim: int, seed: int = 1, words: list[str] | None = None,
                 loss: str = "ns", init_range: float = 0.5):
        super().__init__()
        if loss not in ("ns", "hs"):
            raise ValueError(f"loss must be 'ns' or 'hs', not {loss!r}")
        self.loss = loss
        generator = torch.Generator().manual_seed(seed)
        # Tables passed in as _weight: nn.Embedding would otherwise fill them with normal draws first (a second
        # wasted at 132K x 300).
        initial = torch.rand(vocab_size, dim, generator=generator).sub_(0.5)
        if init_range != 0.5:  # the default leaves the draws untouched: the same bits as before init_range
            initial.mul_(2.0 * init_range)
        initial.div_(dim)
        self.input = nn.Embedding(vocab_size, dim, sparse=True, _weight=initial)
        # ns: an output vector per word; hs: one per inner node of the Huffman tree (V - 1).
        rows = vocab_size if loss == "ns" else max(0, vocab_size - 1)
        table = nn.Embedding(rows, dim, sparse=True, _weight=torch.zeros(rows, dim))
        if loss == "ns":
            self.output = table
        else:
            self.inner = table
        self.words = list(words) if words is not None else None

    def forward(self, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        """Summed negative-sampling loss of the batch (autograd reference; training uses the closed-form steps)."""
        u = self.input(target.long())
        v_pos = self.output(context.long())
        v_neg = self.output(negatives.long())
        pos_score = (u * v_pos).sum(-1)
        neg_score = torch.bmm(v_neg, u.unsqueeze(2)).squeeze(2)
        return -(nn.functional.logsigmoid(pos_score).sum() + nn.functional.logsigmoid(-neg_score).sum())

    def forward_hs(self, target: torch.Tensor, context: torch.Tensor, tree: "HuffmanTree") -> torch.Tensor:
        """Summed hierarchical-softmax loss of the batch (autograd reference for the HS steps).

        -log p(c | t) = -sum over the nodes n of path(c) with bit b of log sigma((1 - 2b) u_t.v_n): word2vec.c's
        label for a node is 1 - b.
        """
        paths, codes, lengths = tree.tensors(self.input.weight.device)
        context = context.long()
        u = self.input(target.long())
        v = self.inner(paths[context].long())
        sign = 1.0 - 2.0 * codes[context].to(u.dtype)
        on_path = torch.arange(tree.max_len, device=u.device) < lengths[context, None]
        scores = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
        return -torch.where(on_path, nn.functional.logsigmoid(sign * scores), 0.0).sum()

    def _window_mean_inputs(self, context: torch.Tensor, window_starts: torch.Tensor) -> torch.Tensor:
        """h [W, dim]: the mean input vector of each window's contexts, differentiable."""
        sizes = (window_starts[1:] - window_starts[:-1]).long()
        window_of_pair = torch.repeat_interleave(torch.arange(sizes.shape[0], device=context.device), sizes)
        rows = self.input(context.long())
        summed = torch.zeros(sizes.shape[0], rows.shape[1], dtype=rows.dtype, device=rows.device)
        return summed.index_add(0, window_of_pair, rows) / sizes.clamp_min(1).to(rows.dtype)[:, None]

    def forward_cbow(self, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                     negatives: torch.Tensor) -> torch.Tensor:
        """Summed CBOW negative-sampling loss over the windows (autograd reference for the CBOW ns steps).

        Window w (pairs window_starts[w]:window_starts[w + 1], one target) scores h_w, the mean of its context
        input vectors, against its target's output vector (label 1) and its negatives[w] (label 0; a negative
        equal to the target left out, as the steps skip it). The steps add dL/dh undivided to every context row
        (word2vec.c): autograd's gradient of an input row through the mean is that divided by the window's size,
        so the tests compare against this gradient times the size.
        """
        h = self._window_mean_inputs(context, window_starts)
        t = target[window_starts[:-1].long()].long()
        v_pos = self.output(t)
        v_neg = self.output(negatives.long())
        pos_score = (h * v_pos).sum(-1)
        neg_score = torch.bmm(v_neg, h.unsqueeze(2)).squeeze(2)
        used = negatives.long() != t[:, None]
        return -(nn.functional.logsigmoid(pos_score).sum()
                 + torch.where(used, nn.functional.logsigmoid(-neg_score), 0.0).sum())

    def forward_cbow_hs(self, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                        tree: "HuffmanTree") -> torch.Tensor:
        """Summed CBOW hierarchical-softmax loss over the windows: h_w against its target's Huffman path."""
        paths, codes, lengths = tree.tensors(self.input.weight.device)
        h = self._window_mean_inputs(context, window_starts)
        t = target[window_starts[:-1].long()].long()
        v = self.inner(paths[t].long())
        sign = 1.0 - 2.0 * codes[t].to(h.dtype)
        on_path = torch.arange(tree.max_len, device=h.device) < lengths[t, None]
        scores = torch.bmm(v, h.unsqueeze(2)).squeeze(2)
        return -torch.where(on_path, nn.functional.logsigmoid(sign * scores), 0.0).sum()

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


@intrinsic
def _prefetch(typingctx, matrix, row, column):
    """LLVM's prefetch of the cache line holding matrix[row, column]: a hint to the CPU, no effect on any value."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        indices = [context.cast(builder, value, kind, numba.types.intp)
                   for value, kind in zip(args[1:], signature.args[1:])]
        address = cgutils.get_item_pointer(context, builder, array_type, array, indices, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_pointer], ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]))
        # rw = 1 (the row will be written), locality = 3 (keep in all cache levels), data cache
        builder.call(prefetch, [builder.bitcast(address, byte_pointer), ir.Constant(i32, 1), ir.Constant(i32, 3),
                                ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return numba.types.void(matrix, row, column), codegen


@numba.njit(inline="always")
def prefetch_row(matrix: np.ndarray, row: int) -> None:
    """Start loading every cache line of matrix[row] while the CPU works on something else."""
    for column in range(0, matrix.shape[1], FLOATS_PER_LINE):
        _prefetch(matrix, row, column)


# Constants of splitmix64 (Steele, Lea and Flood 2014): a counter through them gives well-mixed 64-bit values.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1, _MIX_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


@numba.njit(inline="always")
def counter_draw(seed: np.uint64, counter: np.uint64, n: int) -> int:
    """A draw in 0..n-1 that depends on (seed, counter) only: the window kernels' negative j of window w uses
    counter w * negatives + j, so the draws do not depend on the threads, their order or where a run resumed."""
    z = seed + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z = z ^ (z >> np.uint64(31))
    return int(z % np.uint64(n))


@numba.njit(cache=True)
def counter_draws(seed: int, counters: np.ndarray, n: int) -> np.ndarray:
    """counter_draw for each of `counters` (int64): the reference the tests and the torch side can call."""
    out = np.empty(len(counters), dtype=np.int64)
    for i in range(len(counters)):
        out[i] = counter_draw(np.uint64(seed), np.uint64(counters[i]), n)
    return out


@numba.njit(inline="always")
def _train_output_row(u: np.ndarray, grad_u: np.ndarray, v: np.ndarray, label: float, lr: np.float32,
                      with_loss: bool, skip_clipped: bool) -> float:
    """Score input vector u against output row v, move v and add u's gradient to grad_u; the pair's loss (0.0
    unless with_loss). Outside +-MAX_SCORE negative sampling clips the gradient and hierarchical softmax skips the
    row (skip_clipped), as word2vec.c does; the loss counts the true score. Shared by the pair and CBOW kernels."""
    score = np.float32(0.0)
    for d in range(u.shape[0]):
        score += u[d] * v[d]
    loss = _pair_loss(score, label) if with_loss else 0.0
    if skip_clipped and (score >= MAX_SCORE or score <= -MAX_SCORE):
        return loss
    if score > MAX_SCORE:
        g = np.float32((label - 1.0) * lr)
    elif score < -MAX_SCORE:
        g = np.float32(label * lr)
    else:
        g = np.float32((label - 1.0 / (1.0 + math.exp(-score))) * lr)
    for d in range(u.shape[0]):
        grad_u[d] += g * v[d]
        v[d] += g * u[d]
    return loss


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def sgns_step_cpu(input_w: np.ndarray, output_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                  negatives: np.ndarray, lr_start: float, lr_end: float, threads: int, loss_every: int = 1) -> float:
    """Train on every pair in order, SGD pair by pair (word2vec.c's inner loop); returns the summed loss.

    The learning rate moves linearly from lr_start to lr_end across the batch. `threads` contiguous slices of
    the batch run at once and update the shared tables without locks, as word2vec.c does.
    The loss is only reported, never trained on, and its log/exp cost a third of the kernel (measured, text8
    dim 100): with loss_every = k it is computed on pairs 0, k, 2k, ... and scaled up to the whole batch.
    The pairs are shuffled, so nearly every row is a cache miss: the rows of pair p + 1 are prefetched while pair p
    is trained, which hides most of the memory latency (1.49x at dim 100, 1.16x at dim 300; bench/RESULTS.md).
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_negatives = negatives.shape[1]
    per_thread = (n_pairs + threads - 1) // threads
    loss_every = max(1, loss_every)
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        grad_u = np.empty(dim, dtype=np.float32)
        loss = 0.0
        end = min(n_pairs, (thread + 1) * per_thread)
        for p in range(thread * per_thread, end):
            if p + 1 < end:
                prefetch_row(input_w, target[p + 1])
                prefetch_row(output_w, context[p + 1])
                for k in range(n_negatives):
                    prefetch_row(output_w, negatives[p + 1, k])
            lr = np.float32(lr_start + (lr_end - lr_start) * (p / n_pairs))
            u = input_w[target[p]]
            grad_u[:] = 0.0
            with_loss = p % loss_every == 0
            for j in range(n_negatives + 1):
                if j == 0:
                    v, label = output_w[context[p]], 1.0
                else:
                    v, label = output_w[negatives[p, j - 1]], 0.0
                loss += _train_output_row(u, grad_u, v, label, lr, with_loss, False)
            for d in range(dim):
                u[d] += grad_u[d]
        losses[thread] = loss
    return losses.sum() * n_pairs / max(1, (n_pairs + loss_every - 1) // loss_every)


def row_count_scale(ids: torch.Tensor, n_rows: int, power: float, weights: torch.Tensor | None = None,
                    free: float = 1.0) -> torch.Tensor:
    """Per-occurrence factor (max(count, free) / free)^-power for the rows `ids` of one micro-batch.

    A row that occurs n times in a micro-batch receives the sum of n gradients computed from the same stale
    values, where word2vec.c applies them one after another, each seeing the last. With free = 1, power = 1
    turns the sum into the mean and 0.5 into sum / sqrt(n); a row seen at most `free` times keeps its sum, and
    with power 1 no row moves by more than `free` times its mean gradient. All 1.0 when power is 0.
    `weights` counts an occurrence that stands for several summed gradients (a shared negative serves its
    whole group of pairs) as that many.
    """
    if power == 0.0:
        return torch.ones(ids.shape, device=ids.device)
    flat_weights = None if weights is None else weights.reshape(-1).to(torch.float32)
    counts = torch.bincount(ids.reshape(-1), weights=flat_weights, minlength=n_rows)
    return counts.to(torch.float32).div_(free).clamp_min_(1.0).pow_(-power)[ids]


def saturated_gradient(scores: torch.Tensor, label: float | torch.Tensor, lr: float) -> torch.Tensor:
    """(label - sigma(score)) * lr, with word2vec.c's sigma of exactly 0 or 1 outside +-MAX_SCORE."""
    sigma = torch.sigmoid(scores)
    sigma = torch.where(scores > MAX_SCORE, 1.0, torch.where(scores < -MAX_SCORE, 0.0, sigma))
    return (label - sigma) * lr


def sgns_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor,
                    lr_start: float, lr_end: float, micro_batch: int = 0, count_power: float = 0.0,
                    count_free: float = 1.0) -> float:
    """Closed-form batched SGD step (for CUDA): returns the summed loss.

    Each micro-batch reads the tables once and adds its summed gradients once, so a row seen many times in a
    micro-batch moves by the sum of its stale gradients: smaller micro-batches stay closer to word2vec.c.
    count_power > 0 divides the summed gradient of each row seen more than count_free times in the micro-batch
    by (count / count_free)^count_power (`row_count_scale`): what keeps the most frequent rows from
    overshooting when micro-batches are large.
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
        g_u, g_v = g, g
        if count_power:
            g_u = g * row_count_scale(t, input_w.shape[0], count_power, free=count_free)[:, None]
            g_v = g * row_count_scale(out_ids, output_w.shape[0], count_power, free=count_free)
        grad_u = torch.bmm(g_u.unsqueeze(1), v).squeeze(1)
        grad_v = g_v.unsqueeze(2) * u.unsqueeze(1)
        input_w.index_add_(0, t, grad_u)
        output_w.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, grad_v.shape[-1]))
    return float(total_loss)


def shared_negative_groups(n_pairs: int, group: int) -> int:
    """How many negative sets `sgns_step_shared` needs for n_pairs pairs in groups of `group`."""
    return -(-n_pairs // group)


def sgns_step_shared(model: SkipGram, target: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor,
                     lr_start: float, lr_end: float, micro_batch: int, group: int, count_power: float = 0.0,
                     count_free: float = 1.0, layout: str = "block") -> float:
    """Skip-gram SGD with negatives shared by groups of pairs (the lean step for CUDA); returns the summed loss.

    negatives [shared_negative_groups(n_pairs, group), K]: pairs g*group .. (g+1)*group - 1 all use row g.
    Each pair keeps K negatives drawn from the unigram table, as in word2vec, but a group's K negative rows are
    read once and their gradients come out of one matrix product ([group, dim] x [dim, K] and back), as
    BlazingText and Intel's HogBatch share negatives over a window. The traffic per pair falls from 1 + 1 + K
    gathered rows (and as many scattered) to 2 + K / group. The pairs are shuffled, so a group is a random
    sample of pairs, and its negatives are as independent of each pair as per-pair draws.
    micro_batch is rounded up to a multiple of group; count_power and count_free as in sgns_step_torch (a
    shared negative counts once per pair of its group).

    Two layouts of the same update (equal to float rounding, a test): "split" scores the contexts with an
    element-wise product and the negatives with a bmm, and forms the context and negative gradients apart;
    "block" gathers a group's contexts and negatives as one [group + K, dim] block, so the scores are one bmm
    ([group, dim] x [dim, group + K], of which the diagonal of the first group columns are the positives and
    the rest of those columns are ignored), and so are both gradients: fewer temporaries, so fewer bytes
    moved per pair, for (group + K) / (1 + K) times the multiply-adds of per-pair scoring (bench/RESULTS.md).
    """
    if layout not in ("block", "split"):
        raise ValueError(f"layout must be 'block' or 'split', not {layout!r}")
    input_w, output_w = model.input.weight.data, model.output.weight.data
    n_pairs, dim = target.shape[0], input_w.shape[1]
    if n_pairs == 0:
        return 0.0
    if group < 1:
        raise ValueError(f"group must be at least 1, not {group}")
    if negatives.shape[0] != shared_negative_groups(n_pairs, group):
        raise ValueError(f"{n_pairs} pairs in groups of {group} need {shared_negative_groups(n_pairs, group)} "
                         f"negative sets, got {negatives.shape[0]}")
    n_negatives = negatives.shape[1]
    step = n_pairs if micro_batch <= 0 else micro_batch
    step = -(-step // group) * group
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    for start in range(0, n_pairs, step):
        stop = min(n_pairs, start + step)
        lr = lr_start + (lr_end - lr_start) * ((start + stop) / 2 / n_pairs)
        n_groups = shared_negative_groups(stop - start, group)
        t, c = target[start:stop].long(), context[start:stop].long()
        padding = n_groups * group - (stop - start)
        real = None
        if padding:  # the last group is short: pad it with row 0 and give the padding no gradient
            t = nn.functional.pad(t, (0, padding))
            c = nn.functional.pad(c, (0, padding))
            real = (torch.arange(n_groups * group, device=t.device) < stop - start).to(input_w.dtype)
        neg = negatives[start // group:start // group + n_groups].long()
        scale_u = scale_context = scale_negative = None
        if count_power:
            scale_u = row_count_scale(t, input_w.shape[0], count_power, real, count_free)
            pairs_in_group = (torch.full((n_groups,), float(group), device=t.device) if real is None
                              else real.view(n_groups, group).sum(1))
            weights = torch.cat([torch.ones(c.shape, device=t.device) if real is None else real,
                                 pairs_in_group.repeat_interleave(n_negatives)])
            scale_v = row_count_scale(torch.cat([c, neg.reshape(-1)]), output_w.shape[0], count_power, weights,
                                      count_free)
            scale_context, scale_negative = scale_v[:c.shape[0]], scale_v[c.shape[0]:].view(n_groups, 1, n_negatives)
        u = input_w[t]
        u_grouped = u.view(n_groups, group, dim)
        if layout == "block":
            out_ids = torch.cat([c.view(n_groups, group), neg], dim=1)  # [groups, group + K]
            v = output_w[out_ids]
            scores = torch.bmm(u_grouped, v.transpose(1, 2))  # [groups, group, group + K]
            positive = scores[:, :, :group].diagonal(dim1=1, dim2=2).reshape(-1)
            negative = scores[:, :, group:]
        else:
            v_context = output_w[c]
            v_negative = output_w[neg]  # [groups, K, dim]
            positive = (u * v_context).sum(-1)
            negative = torch.bmm(u_grouped, v_negative.transpose(1, 2))  # [groups, group, K]
        pair_loss = nn.functional.softplus(-positive) + nn.functional.softplus(negative).sum(-1).view(-1)
        g_positive = saturated_gradient(positive, 1.0, lr)
        g_negative = saturated_gradient(negative, 0.0, lr)
        if real is not None:
            pair_loss = pair_loss * real
            g_positive = g_positive * real
            g_negative = g_negative * real.view(n_groups, group, 1)
        total_loss += pair_loss.sum(dtype=torch.float64)
        g_positive_u, g_negative_u, g_positive_v, g_negative_v = g_positive, g_negative, g_positive, g_negative
        if count_power:
            g_positive_u = g_positive * scale_u
            g_negative_u = g_negative * scale_u.view(n_groups, group, 1)
            g_positive_v = g_positive * scale_context
            g_negative_v = g_negative * scale_negative
        if layout == "block":
            def coefficients(g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
                # the score matrix's shape: g_pos on the diagonal of the contexts' block, g_neg beside it
                block = torch.zeros_like(scores)
                block[:, :, :group].diagonal(dim1=1, dim2=2).copy_(g_pos.view(n_groups, group))
                block[:, :, group:] = g_neg
                return block
            coefficients_u = coefficients(g_positive_u, g_negative_u)
            coefficients_v = coefficients(g_positive_v, g_negative_v) if count_power else coefficients_u
            grad_u = torch.bmm(coefficients_u, v)
            grad_v = torch.bmm(coefficients_v.transpose(1, 2), u_grouped)  # [groups, group + K, dim]
            input_w.index_add_(0, t, grad_u.view(-1, dim))
            output_w.index_add_(0, out_ids.view(-1), grad_v.view(-1, dim))
        else:
            grad_u = torch.baddbmm((g_positive_u[:, None] * v_context).view(n_groups, group, dim), g_negative_u,
                                   v_negative)
            grad_context = g_positive_v[:, None] * u
            grad_negative = torch.bmm(g_negative_v.transpose(1, 2), u_grouped)  # [groups, K, dim]
            input_w.index_add_(0, t, grad_u.view(-1, dim))
            output_w.index_add_(0, c, grad_context)
            output_w.index_add_(0, neg.reshape(-1), grad_negative.reshape(-1, dim))
    return float(total_loss)


# ----------------------------------------------------------------------------------------------------------------
# Hierarchical softmax (word2vec.c's -hs 1): p(c | t) is a product of binary decisions along c's Huffman path.


@dataclass
class HuffmanTree:
    """Each word's path of inner nodes (root first; ids 0..V-2, root V-2) and its branch bits, padded to max_len.

    paths [V, max_len] int32 and codes [V, max_len] int8 are padded with 0 past lengths[w], so a whole batch of
    context words is one gather; the padding is masked by `lengths`.
    """

    paths: np.ndarray
    codes: np.ndarray
    lengths: np.ndarray
    _on_device: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def vocab_size(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def max_len(self) -> int:
        return int(self.paths.shape[1])

    def save(self, path: Path) -> None:
        with atomic_output(Path(path)) as temp:
            with open(temp, "wb") as handle:  # a handle, so numpy does not append .npz to the temporary name
                np.savez(handle, paths=self.paths, codes=self.codes, lengths=self.lengths)

    @classmethod
    def load(cls, path: Path) -> "HuffmanTree":
        with np.load(path) as stored:
            return cls(stored["paths"], stored["codes"], stored["lengths"])

    def tensors(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(paths int32, codes int8, lengths int64) on `device`, copied there once."""
        key = str(torch.device(device))
        if key not in self._on_device:
            self._on_device[key] = (torch.from_numpy(self.paths).to(device), torch.from_numpy(self.codes).to(device),
                                    torch.from_numpy(self.lengths.astype(np.int64)).to(device))
        return self._on_device[key]


@numba.njit(cache=True)
def _huffman_merge(sorted_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """word2vec.c's CreateBinaryTree: two pointers over the descending counts and the (ascending) merged nodes.

    Nodes 0..V-1 are the leaves in `sorted_counts` order, V..2V-2 the merges in creation order (root last).
    On equal weights the leaf is taken first (word2vec.c takes the merged node): same expected code length, a
    shallower tree, so less padding.
    """
    n_words = sorted_counts.shape[0]
    weight = np.empty(2 * n_words - 1, dtype=np.int64)
    weight[:n_words] = sorted_counts
    parent = np.zeros(2 * n_words - 1, dtype=np.int64)
    bit = np.zeros(2 * n_words - 1, dtype=np.int8)
    leaf, merged = n_words - 1, n_words
    for a in range(n_words - 1):
        new = n_words + a
        if leaf >= 0 and (merged >= new or weight[leaf] <= weight[merged]):
            first, leaf = leaf, leaf - 1
        else:
            first, merged = merged, merged + 1
        if leaf >= 0 and (merged >= new or weight[leaf] <= weight[merged]):
            second, leaf = leaf, leaf - 1
        else:
            second, merged = merged, merged + 1
        weight[new] = weight[first] + weight[second]
        parent[first], parent[second] = new, new
        bit[second] = 1
    return parent, bit


@numba.njit(parallel=True, cache=True)
def _huffman_paths(parent: np.ndarray, bit: np.ndarray, order: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_words = order.shape[0]
    depth = np.zeros(2 * n_words - 1, dtype=np.int32)
    for child in range(2 * n_words - 3, -1, -1):  # a parent's id is above its children's: parents come first
        depth[child] = depth[parent[child]] + 1
    max_len = 0
    for w in range(n_words):
        max_len = max(max_len, depth[w])
    paths = np.zeros((n_words, max_len), dtype=np.int32)
    codes = np.zeros((n_words, max_len), dtype=np.int8)
    lengths = np.empty(n_words, dtype=np.int32)
    for w in numba.prange(n_words):
        row = order[w]
        lengths[row] = depth[w]
        node = np.int64(w)  # typed: prange's unsigned index unified with int64 parents would make it a float
        for j in range(depth[w] - 1, -1, -1):  # walk up from the leaf, writing the path back to front
            paths[row, j] = parent[node] - n_words
            codes[row, j] = bit[node]
            node = parent[node]
    return paths, codes, lengths


def build_huffman(counts: np.ndarray) -> HuffmanTree:
    """Huffman tree over word counts (any order): frequent words get short codes; O(V) after an O(V log V) sort."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.shape[0] == 0:
        raise ValueError("build_huffman needs a non-empty 1-d array of counts")
    if np.all(counts[:-1] >= counts[1:]):  # vocab.json is sorted already: skip the sort
        order = np.arange(counts.shape[0], dtype=np.int64)
    else:
        order = np.argsort(-counts, kind="stable")
    parent, bit = _huffman_merge(np.ascontiguousarray(counts[order]))
    return HuffmanTree(*_huffman_paths(parent, bit, order))


def huffman_for(data_dir: Path, counts: np.ndarray) -> HuffmanTree:
    """DATA_DIR/huffman.npz; (re)built from the counts when missing, older than vocab.json, or of another size."""
    path, vocab_path = Path(data_dir) / "huffman.npz", Path(data_dir) / "vocab.json"
    if path.exists() and path.stat().st_mtime >= vocab_path.stat().st_mtime:
        try:
            tree = HuffmanTree.load(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: make it again
            tree = None
        if tree is not None and tree.vocab_size == len(counts):
            return tree
    tree = build_huffman(counts)
    tree.save(path)
    return tree


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def hs_step_cpu(input_w: np.ndarray, inner_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray, lr_start: float, lr_end: float,
                threads: int, loss_every: int = 1) -> float:
    """Hierarchical-softmax SGD pair by pair (word2vec.c's `if (hs)` loop); returns the summed loss.

    Along the context word's path, node n with bit b has label 1 - b and gradient g = (label - sigma(u.v_n)) lr.
    As in word2vec.c, a node whose score is outside +-MAX_EXP is skipped (no update; the loss still counts it).
    Learning rate, Hogwild threads and loss_every as in sgns_step_cpu.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    per_thread = (n_pairs + threads - 1) // threads
    loss_every = max(1, loss_every)
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        grad_u = np.empty(dim, dtype=np.float32)
        loss = 0.0
        end = min(n_pairs, (thread + 1) * per_thread)
        for p in range(thread * per_thread, end):
            if p + 1 < end:  # as in sgns_step_cpu; the nodes near the root stay in cache anyway
                prefetch_row(input_w, target[p + 1])
                for j in range(lengths[context[p + 1]]):
                    prefetch_row(inner_w, paths[context[p + 1], j])
            lr = np.float32(lr_start + (lr_end - lr_start) * (p / n_pairs))
            u = input_w[target[p]]
            c = context[p]
            grad_u[:] = 0.0
            with_loss = p % loss_every == 0
            for j in range(lengths[c]):
                loss += _train_output_row(u, grad_u, inner_w[paths[c, j]], 1.0 - codes[c, j], lr, with_loss, True)
            for d in range(dim):
                u[d] += grad_u[d]
        losses[thread] = loss
    return losses.sum() * n_pairs / max(1, (n_pairs + loss_every - 1) // loss_every)


def hs_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, tree: HuffmanTree,
                  lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched hierarchical-softmax SGD step (for CUDA): returns the summed loss.

    Paths are gathered padded and masked; each micro-batch is cut to its own longest path (one device sync per
    call finds those lengths). Stale-gradient semantics of micro-batches as in sgns_step_torch.
    """
    input_w, inner_w = model.input.weight.data, model.inner.weight.data
    paths, codes, lengths = tree.tensors(input_w.device)
    n_pairs = target.shape[0]
    if n_pairs == 0:
        return 0.0
    step = micro_batch if micro_batch > 0 else n_pairs
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    context_len = lengths[context.long()]
    n_chunks = -(-n_pairs // step)
    padded = torch.zeros(n_chunks * step, dtype=context_len.dtype, device=context_len.device)
    padded[:n_pairs] = context_len
    chunk_max_len = padded.view(n_chunks, step).amax(1).tolist()
    for chunk, start in enumerate(range(0, n_pairs, step)):
        width = chunk_max_len[chunk]
        if width == 0:
            continue
        stop = min(n_pairs, start + step)
        lr = lr_start + (lr_end - lr_start) * ((start + stop) / 2 / n_pairs)
        t, c = target[start:stop].long(), context[start:stop].long()
        nodes = paths[c, :width].long()
        labels = 1.0 - codes[c, :width].to(input_w.dtype)
        on_path = torch.arange(width, device=input_w.device) < context_len[start:stop, None]
        u = input_w[t]
        v = inner_w[nodes]
        scores = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
        signed = torch.where(labels > 0, scores, -scores)
        total_loss += torch.where(on_path, nn.functional.softplus(-signed), 0.0).sum(dtype=torch.float64)
        # word2vec.c skips nodes whose score is outside +-MAX_EXP; padding past the path is skipped too.
        active = on_path & (scores.abs() < MAX_SCORE)
        g = torch.where(active, (labels - torch.sigmoid(scores)) * lr, 0.0)
        grad_u = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        grad_v = g.unsqueeze(2) * u.unsqueeze(1)
        input_w.index_add_(0, t, grad_u)
        inner_w.index_add_(0, nodes.reshape(-1), grad_v.reshape(-1, grad_v.shape[-1]))
    return float(total_loss)


# ----------------------------------------------------------------------------------------------------------------
# Window kernels (issue 12): a target occurrence's pairs arrive together, so its output side is fetched once.
# Roles as in word2vec.c's skip-gram: the window's target owns the output rows, its contexts are the inputs.
# The block products go in tiles of three inputs by three outputs (_dot_tile, _input_gradient_tile): one pass over
# the dimensions loads six rows for nine products, where a row-by-row loop loads two rows for one. Rows are
# addressed as (matrix, row number), never as views (matrix[row]): numba gives a view it cannot prove dead (here,
# one picked by a conditional) an atomic reference-count increment and decrement each time round the loop.
# Padding slots of a tile read a real row (the block's first) and get a zero coefficient.
ROWS_PER_PASS = 3


@numba.njit(cache=True)
def _longest_window(window_starts: np.ndarray) -> int:
    longest = 0
    for w in range(window_starts.shape[0] - 1):
        longest = max(longest, window_starts[w + 1] - window_starts[w])
    return longest


@numba.njit(inline="always")
def _pair_loss(score: float, label: float) -> float:
    signed = score if label == 1.0 else -score
    return math.log1p(math.exp(-signed)) if signed > -30.0 else -signed


@numba.njit(inline="always")
def _dot_tile(inputs: np.ndarray, i0: int, i1: int, i2: int, outputs: np.ndarray, j0: int, j1: int, j2: int,
              scores: np.ndarray, row: int, column: int) -> None:
    """scores[row + a, column + b] = inputs[i_a] . outputs[j_b] for a, b in 0..2."""
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = np.float32(0.0)
    for d in range(inputs.shape[1]):
        v0, v1, v2 = outputs[j0, d], outputs[j1, d], outputs[j2, d]
        x = inputs[i0, d]
        s00 += x * v0
        s01 += x * v1
        s02 += x * v2
        x = inputs[i1, d]
        s10 += x * v0
        s11 += x * v1
        s12 += x * v2
        x = inputs[i2, d]
        s20 += x * v0
        s21 += x * v1
        s22 += x * v2
    scores[row, column], scores[row, column + 1], scores[row, column + 2] = s00, s01, s02
    scores[row + 1, column], scores[row + 1, column + 1], scores[row + 1, column + 2] = s10, s11, s12
    scores[row + 2, column], scores[row + 2, column + 1], scores[row + 2, column + 2] = s20, s21, s22


@numba.njit(inline="always")
def _input_gradient_tile(grad_in: np.ndarray, row: int, gradient: np.ndarray, column: int, outputs: np.ndarray,
                         j0: int, j1: int, j2: int, accumulate: bool) -> None:
    """grad_in[row + a] (+)= sum_b gradient[row + a, column + b] outputs[j_b] for a, b in 0..2."""
    g00, g01, g02 = gradient[row, column], gradient[row, column + 1], gradient[row, column + 2]
    g10, g11, g12 = gradient[row + 1, column], gradient[row + 1, column + 1], gradient[row + 1, column + 2]
    g20, g21, g22 = gradient[row + 2, column], gradient[row + 2, column + 1], gradient[row + 2, column + 2]
    if accumulate:
        for d in range(grad_in.shape[1]):
            v0, v1, v2 = outputs[j0, d], outputs[j1, d], outputs[j2, d]
            grad_in[row, d] += g00 * v0 + g01 * v1 + g02 * v2
            grad_in[row + 1, d] += g10 * v0 + g11 * v1 + g12 * v2
            grad_in[row + 2, d] += g20 * v0 + g21 * v1 + g22 * v2
    else:
        for d in range(grad_in.shape[1]):
            v0, v1, v2 = outputs[j0, d], outputs[j1, d], outputs[j2, d]
            grad_in[row, d] = g00 * v0 + g01 * v1 + g02 * v2
            grad_in[row + 1, d] = g10 * v0 + g11 * v1 + g12 * v2
            grad_in[row + 2, d] = g20 * v0 + g21 * v1 + g22 * v2


@numba.njit(inline="always")
def _output_update(outputs: np.ndarray, j: int, inputs: np.ndarray, i0: int, g0: float, i1: int, g1: float, i2: int,
                   g2: float) -> None:
    """outputs[j] += g0 inputs[i0] + g1 inputs[i1] + g2 inputs[i2]: one output row at a time, so that a row drawn
    twice in a block gets both updates (a tile over outputs would write one over the other)."""
    g0, g1, g2 = np.float32(g0), np.float32(g1), np.float32(g2)
    for d in range(outputs.shape[1]):
        outputs[j, d] += g0 * inputs[i0, d] + g1 * inputs[i1, d] + g2 * inputs[i2, d]


@numba.njit(inline="always")
def _train_block(input_w: np.ndarray, output_w: np.ndarray, context: np.ndarray, start: int, k: int,
                 out_rows: np.ndarray, labels: np.ndarray, live: np.ndarray, n_out: int, lr: float,
                 clip_skips: bool, loss_every: int, gradient: np.ndarray, grad_in: np.ndarray) -> float:
    """One window: contexts context[start:start+k] (rows of input_w) against output_w[out_rows[:n_out]].

    out_rows has n_out rounded up to ROWS_PER_PASS slots; the caller fills the padding with out_rows[0].
    Every score is taken before any row moves; output row j gets sum_i g_ij u_i, input i gets sum_j g_ij v_j.
    Rows with live[j] False are neither scored nor updated. clip_skips: a score outside +-MAX_SCORE gives no
    gradient (hierarchical softmax, word2vec.c); else the saturated gradient (negative sampling).
    Returns the loss of the pairs whose index is a multiple of loss_every.
    """
    loss = 0.0
    padded_out = (n_out + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    padded_in = (k + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    first_in = context[start]
    for i in range(0, padded_in, ROWS_PER_PASS):
        i0 = context[start + i]
        i1 = context[start + i + 1] if i + 1 < k else first_in
        i2 = context[start + i + 2] if i + 2 < k else first_in
        for j in range(0, padded_out, ROWS_PER_PASS):
            _dot_tile(input_w, i0, i1, i2, output_w, out_rows[j], out_rows[j + 1], out_rows[j + 2], gradient, i, j)
    for i in range(padded_in):  # scores -> gradient coefficients, in place; padding and dead rows get 0
        with_loss = i < k and (start + i) % loss_every == 0
        for j in range(padded_out):
            if i >= k or j >= n_out or not live[j]:
                gradient[i, j] = 0.0
                continue
            score, label = gradient[i, j], labels[j]
            if with_loss:  # word2vec.c clips at +-MAX_EXP; the loss still counts the true value
                loss += _pair_loss(score, label)
            if score > MAX_SCORE:
                g = 0.0 if clip_skips else (label - 1.0) * lr
            elif score < -MAX_SCORE:
                g = 0.0 if clip_skips else label * lr
            else:
                g = (label - 1.0 / (1.0 + math.exp(-score))) * lr
            gradient[i, j] = np.float32(g)
    for i in range(0, padded_in, ROWS_PER_PASS):  # the inputs' gradients, from the outputs before they move
        for j in range(0, padded_out, ROWS_PER_PASS):
            _input_gradient_tile(grad_in, i, gradient, j, output_w, out_rows[j], out_rows[j + 1], out_rows[j + 2],
                                 j > 0)
    for j in range(n_out):  # each output row: the summed gradient of the k contexts, from the inputs as they were
        if not live[j]:
            continue
        for i in range(0, padded_in, ROWS_PER_PASS):
            i1 = context[start + i + 1] if i + 1 < k else first_in
            i2 = context[start + i + 2] if i + 2 < k else first_in
            _output_update(output_w, out_rows[j], input_w, context[start + i], gradient[i, j], i1, gradient[i + 1, j],
                           i2, gradient[i + 2, j])
    for i in range(k):
        row = context[start + i]
        for d in range(input_w.shape[1]):
            input_w[row, d] += grad_in[i, d]
    return loss


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def sg_window_step_cpu(input_w: np.ndarray, output_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                       window_starts: np.ndarray, table: np.ndarray, negatives: int, lr_start: float,
                       lr_end: float, seed: int, threads: int, loss_every: int = 1) -> float:
    """Skip-gram with negatives shared across a window (HogBatch, Ji et al. 2016); returns the summed loss.

    Window w (pairs window_starts[w]:window_starts[w + 1], all of one target t) scores each context's input row
    against one block of output rows: output_w[t] (label 1) and `negatives` rows of the unigram table drawn with
    counter_draw(seed, w * negatives + j), a draw equal to t left out (word2vec.c skips it). Every score of the
    k x (1 + negatives) block is taken before any row moves; then each output row gets the summed gradient of the
    k contexts and each context its own, so the block's rows are read from memory once per window instead of
    once per pair, and the next window's rows are prefetched while this one trains.
    Learning rate linear from lr_start to lr_end by the window's first pair / n_pairs; `threads` contiguous
    ranges of windows update the tables without locks; the loss is taken on pairs 0, loss_every, ... and
    scaled up to the batch, as in sgns_step_cpu.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    n_out = negatives + 1
    rows_in = (max(1, _longest_window(window_starts)) + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    rows_out = (n_out + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    table_size = table.shape[0]
    seed_u = np.uint64(seed)
    labels = np.zeros(n_out, dtype=np.float32)
    labels[0] = 1.0
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        grad_in = np.empty((rows_in, dim), dtype=np.float32)
        gradient = np.empty((rows_in, rows_out), dtype=np.float32)
        out_rows = np.empty(rows_out, dtype=np.int64)
        next_rows = np.empty(n_out, dtype=np.int64)
        live = np.ones(n_out, dtype=np.bool_)
        loss = 0.0
        first, end = thread * per_thread, min(n_windows, (thread + 1) * per_thread)
        if first < end:  # the first window's output rows; later ones are drawn one window ahead
            next_rows[0] = target[window_starts[first]]
            for j in range(negatives):
                next_rows[j + 1] = table[counter_draw(seed_u, np.uint64(first * negatives + j), table_size)]
        for w in range(first, end):
            start, stop = window_starts[w], window_starts[w + 1]
            out_rows[:n_out] = next_rows
            out_rows[n_out:] = next_rows[0]
            if w + 1 < end:  # draw the next window's rows now and start loading them
                next_start, next_stop = window_starts[w + 1], window_starts[w + 2]
                next_rows[0] = target[next_start]
                prefetch_row(output_w, next_rows[0])
                for j in range(negatives):
                    next_rows[j + 1] = table[counter_draw(seed_u, np.uint64((w + 1) * negatives + j), table_size)]
                    if next_rows[j + 1] != next_rows[0]:
                        prefetch_row(output_w, next_rows[j + 1])
                for p in range(next_start, next_stop):
                    prefetch_row(input_w, context[p])
            if stop == start:
                continue
            for j in range(1, n_out):
                live[j] = out_rows[j] != out_rows[0]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            loss += _train_block(input_w, output_w, context, start, stop - start, out_rows, labels, live, n_out, lr,
                                 False, loss_every, gradient, grad_in)
        losses[thread] = loss
    return losses.sum() * n_pairs / max(1, (n_pairs + loss_every - 1) // loss_every)


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def sg_window_hs_step_cpu(input_w: np.ndarray, inner_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                          window_starts: np.ndarray, paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                          lr_start: float, lr_end: float, threads: int, loss_every: int = 1) -> float:
    """Hierarchical softmax with the target's Huffman path shared across its window; returns the summed loss.

    Window w's target t owns the output side: the inner-node rows of path(t). Each context's input row is scored
    against every node of it (a k x L block, all scores before any row moves); node n with bit b has label 1 - b,
    a score outside +-MAX_EXP is skipped (no update, the loss still counts it), as in hs_step_cpu. Each node gets
    the summed gradient of the k contexts, each context its own. Learning rate, threads, prefetching of the next
    window and loss_every as in sg_window_step_cpu.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    max_len = max(1, paths.shape[1])
    rows_in = (max(1, _longest_window(window_starts)) + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    rows_out = (max_len + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        grad_in = np.empty((rows_in, dim), dtype=np.float32)
        gradient = np.empty((rows_in, rows_out), dtype=np.float32)
        out_rows = np.empty(rows_out, dtype=np.int64)
        labels = np.empty(max_len, dtype=np.float32)
        live = np.ones(max_len, dtype=np.bool_)
        loss = 0.0
        first, end = thread * per_thread, min(n_windows, (thread + 1) * per_thread)
        for w in range(first, end):
            start, stop = window_starts[w], window_starts[w + 1]
            if w + 1 < end:
                next_start, next_stop = window_starts[w + 1], window_starts[w + 2]
                if next_stop > next_start:
                    next_t = target[next_start]
                    for j in range(lengths[next_t]):
                        prefetch_row(inner_w, paths[next_t, j])
                for p in range(next_start, next_stop):
                    prefetch_row(input_w, context[p])
            if stop == start:
                continue
            t = target[start]
            n_nodes = lengths[t]
            for j in range(n_nodes):
                out_rows[j] = paths[t, j]
                labels[j] = 1.0 - codes[t, j]
            if n_nodes > 0:
                out_rows[n_nodes:] = out_rows[0]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            loss += _train_block(input_w, inner_w, context, start, stop - start, out_rows, labels, live, n_nodes, lr,
                                 True, loss_every, gradient, grad_in)
        losses[thread] = loss
    return losses.sum() * n_pairs / max(1, (n_pairs + loss_every - 1) // loss_every)


# ----------------------------------------------------------------------------------------------------------------
# CBOW (train.py --model cbow, word2vec.c's -cbow 1): the mean h of a window's context input rows predicts its
# target. ns: L = -log sigma(h.v_t) - sum_k log sigma(-h.v_nk); hs: the target's Huffman path scored against h.
# dL/dh is added, undivided, to every context input row (word2vec.c; gensim's cbow_mean=1), so a context row moves
# k times what the mean's chain rule would give it: what both reference trainers do, and what they were tuned for.


@numba.njit(inline="always")
def _cbow_negatives(out: np.ndarray, table: np.ndarray, seed: np.uint64, window: int) -> None:
    """The K negatives of window `window` (its index in the batch), as counter_draw numbers them."""
    n_negatives = out.shape[0]
    for j in range(n_negatives):
        out[j] = table[counter_draw(seed, np.uint64(window * n_negatives + j), table.shape[0])]


@numba.njit(inline="always")
def _window_mean(h: np.ndarray, input_w: np.ndarray, context: np.ndarray, start: int, stop: int) -> None:
    dim = h.shape[0]
    h[:] = 0.0
    for p in range(start, stop):
        row = input_w[context[p]]
        for d in range(dim):
            h[d] += row[d]
    inverse = np.float32(1.0 / (stop - start))
    for d in range(dim):
        h[d] *= inverse


@numba.njit(inline="always")
def _add_to_contexts(input_w: np.ndarray, context: np.ndarray, start: int, stop: int, grad_h: np.ndarray) -> None:
    dim = grad_h.shape[0]
    for p in range(start, stop):
        row = input_w[context[p]]
        for d in range(dim):
            row[d] += grad_h[d]


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cbow_step_cpu(input_w: np.ndarray, output_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                  window_starts: np.ndarray, table: np.ndarray, negatives: int, lr_start: float, lr_end: float,
                  seed: int, threads: int, loss_every: int = 1) -> float:
    """CBOW with negative sampling, window by window (word2vec.c's `if (cbow)` loop); returns the summed loss.

    Window w is pairs window_starts[w]:window_starts[w + 1], all with one target. Its `negatives` negatives are
    drawn here: table[counter_draw(seed, w * negatives + j)]; one equal to the target is skipped, as word2vec.c
    does. The learning rate moves linearly from lr_start to lr_end by the window's first pair / n_pairs.
    `threads` contiguous ranges of windows update the tables without locks (Hogwild). The loss is summed over
    windows; with loss_every = k it is computed on windows 0, k, 2k, ... and scaled up to all of them.
    While a window trains, the next window's rows (its contexts' inputs, its target's and negatives' outputs)
    are prefetched: the windows are shuffled, so their rows are mostly cache misses.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    seed_bits = np.uint64(seed)
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        h = np.empty(dim, dtype=np.float32)
        grad_h = np.empty(dim, dtype=np.float32)
        negs = np.empty(negatives, dtype=np.int64)
        next_negs = np.empty(negatives, dtype=np.int64)
        loss = 0.0
        first, end = thread * per_thread, min(n_windows, (thread + 1) * per_thread)
        if first < end:
            _cbow_negatives(next_negs, table, seed_bits, first)
        for w in range(first, end):
            negs[:] = next_negs
            if w + 1 < end:
                _cbow_negatives(next_negs, table, seed_bits, w + 1)
                prefetch_row(output_w, target[window_starts[w + 1]])
                for k in range(negatives):
                    prefetch_row(output_w, next_negs[k])
                for p in range(window_starts[w + 1], window_starts[w + 2]):
                    prefetch_row(input_w, context[p])
            start, stop = window_starts[w], window_starts[w + 1]
            if stop <= start:
                continue
            t = target[start]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            _window_mean(h, input_w, context, start, stop)
            grad_h[:] = 0.0
            with_loss = w % loss_every == 0
            for j in range(negatives + 1):
                if j == 0:
                    o, label = t, 1.0
                else:
                    o, label = negs[j - 1], 0.0
                    if o == t:
                        continue
                loss += _train_output_row(h, grad_h, output_w[o], label, lr, with_loss, False)
            _add_to_contexts(input_w, context, start, stop, grad_h)
        losses[thread] = loss
    return losses.sum() * n_windows / max(1, (n_windows + loss_every - 1) // loss_every)


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cbow_hs_step_cpu(input_w: np.ndarray, inner_w: np.ndarray, target: np.ndarray, context: np.ndarray,
                     window_starts: np.ndarray, paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                     lr_start: float, lr_end: float, threads: int, loss_every: int = 1) -> float:
    """CBOW with hierarchical softmax, window by window; returns the summed loss (over windows).

    h (the mean of the window's context input rows) is scored against the target's Huffman path: node n with bit
    b has label 1 - b; a node whose score is outside +-MAX_SCORE is skipped (word2vec.c). Windows, learning rate,
    threads, loss_every and prefetching as in cbow_step_cpu.
    """
    n_pairs, dim = target.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        h = np.empty(dim, dtype=np.float32)
        grad_h = np.empty(dim, dtype=np.float32)
        loss = 0.0
        end = min(n_windows, (thread + 1) * per_thread)
        for w in range(thread * per_thread, end):
            if w + 1 < end:
                following = target[window_starts[w + 1]]
                for j in range(lengths[following]):
                    prefetch_row(inner_w, paths[following, j])
                for p in range(window_starts[w + 1], window_starts[w + 2]):
                    prefetch_row(input_w, context[p])
            start, stop = window_starts[w], window_starts[w + 1]
            if stop <= start:
                continue
            t = target[start]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            _window_mean(h, input_w, context, start, stop)
            grad_h[:] = 0.0
            with_loss = w % loss_every == 0
            for j in range(lengths[t]):
                loss += _train_output_row(h, grad_h, inner_w[paths[t, j]], 1.0 - codes[t, j], lr, with_loss, True)
            _add_to_contexts(input_w, context, start, stop, grad_h)
        losses[thread] = loss
    return losses.sum() * n_windows / max(1, (n_windows + loss_every - 1) // loss_every)


def window_chunks(window_starts: torch.Tensor, micro_batch: int) -> list[tuple[int, int]]:
    """(first window, end window) of each micro-batch: about micro_batch pairs each, cut at window edges only.

    A micro-batch ends at the first window edge at or after each multiple of micro_batch pairs, so a window
    longer than micro_batch is a micro-batch of its own. One host sync per batch.
    """
    n_windows = window_starts.shape[0] - 1
    n_pairs = int(window_starts[-1])
    if n_windows <= 0:
        return []
    if micro_batch <= 0 or micro_batch >= n_pairs:
        return [(0, n_windows)]
    marks = torch.arange(micro_batch, n_pairs, micro_batch, device=window_starts.device, dtype=window_starts.dtype)
    edges = torch.searchsorted(window_starts, marks).clamp_max(n_windows)
    bounds = torch.unique_consecutive(torch.cat([edges.new_zeros(1), edges, edges.new_full((1,), n_windows)]))
    bounds = bounds.tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def _window_means(input_w: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h [W, dim], window id of each pair [P], pairs per window [W]) of a run of windows starting at pair 0."""
    sizes = window_starts[1:] - window_starts[:-1]
    window_of_pair = torch.repeat_interleave(torch.arange(sizes.shape[0], device=context.device), sizes)
    h = torch.zeros(sizes.shape[0], input_w.shape[1], device=input_w.device, dtype=input_w.dtype)
    h.index_add_(0, window_of_pair, input_w[context])
    h /= sizes.clamp_min(1).to(h.dtype)[:, None]
    return h, window_of_pair, sizes


def cbow_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                    negatives: torch.Tensor, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched CBOW negative-sampling step (for CUDA); returns the summed loss (over windows).

    negatives: [W, K], one set per window. Micro-batches of about micro_batch pairs, cut at window edges
    (`window_chunks`); within one, every window reads the tables as they were at its start and the summed
    gradients are added once (index_add_), as in sgns_step_torch. A negative equal to its target is skipped, as in
    cbow_step_cpu.
    """
    input_w, output_w = model.input.weight.data, model.output.weight.data
    n_pairs = target.shape[0]
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    window_starts = window_starts.to(input_w.device)
    for first, end in window_chunks(window_starts, micro_batch):
        starts = window_starts[first:end + 1]
        p0, p1 = int(starts[0]), int(starts[-1])
        lr = lr_start + (lr_end - lr_start) * ((p0 + p1) / 2 / max(1, n_pairs))
        c = context[p0:p1].long()
        h, window_of_pair, _ = _window_means(input_w, c, starts - p0)
        t = target[starts[:-1]].long()
        out_ids = torch.cat([t[:, None], negatives[first:end].long()], dim=1)  # [w, 1 + K]
        v = output_w[out_ids]
        scores = torch.bmm(v, h.unsqueeze(2)).squeeze(2)
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        used = torch.ones_like(scores, dtype=torch.bool)
        used[:, 1:] = out_ids[:, 1:] != t[:, None]
        signed = torch.where(labels > 0, scores, -scores)
        total_loss += torch.where(used, nn.functional.softplus(-signed), 0.0).sum(dtype=torch.float64)
        g = torch.where(used, saturated_gradient(scores, labels, lr), 0.0)
        grad_h = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        output_w.index_add_(0, out_ids.reshape(-1), (g.unsqueeze(2) * h.unsqueeze(1)).reshape(-1, h.shape[1]))
        input_w.index_add_(0, c, grad_h[window_of_pair])
    return float(total_loss)


def cbow_hs_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                       tree: HuffmanTree, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched CBOW hierarchical-softmax step (for CUDA); returns the summed loss (over windows).

    The target's path is gathered padded to the micro-batch's longest and masked; saturated nodes are skipped
    as in cbow_hs_step_cpu; micro-batches as in cbow_step_torch.
    """
    input_w, inner_w = model.input.weight.data, model.inner.weight.data
    paths, codes, lengths = tree.tensors(input_w.device)
    n_pairs = target.shape[0]
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    window_starts = window_starts.to(input_w.device)
    for first, end in window_chunks(window_starts, micro_batch):
        starts = window_starts[first:end + 1]
        p0, p1 = int(starts[0]), int(starts[-1])
        lr = lr_start + (lr_end - lr_start) * ((p0 + p1) / 2 / max(1, n_pairs))
        c = context[p0:p1].long()
        t = target[starts[:-1]].long()
        path_len = lengths[t]
        width = int(path_len.max())
        if width == 0:
            continue
        h, window_of_pair, _ = _window_means(input_w, c, starts - p0)
        nodes = paths[t, :width].long()
        labels = 1.0 - codes[t, :width].to(input_w.dtype)
        on_path = torch.arange(width, device=input_w.device) < path_len[:, None]
        v = inner_w[nodes]
        scores = torch.bmm(v, h.unsqueeze(2)).squeeze(2)
        signed = torch.where(labels > 0, scores, -scores)
        total_loss += torch.where(on_path, nn.functional.softplus(-signed), 0.0).sum(dtype=torch.float64)
        active = on_path & (scores.abs() < MAX_SCORE)
        g = torch.where(active, (labels - torch.sigmoid(scores)) * lr, 0.0)
        grad_h = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        inner_w.index_add_(0, nodes.reshape(-1), (g.unsqueeze(2) * h.unsqueeze(1)).reshape(-1, h.shape[1]))
        input_w.index_add_(0, c, grad_h[window_of_pair])
    return float(total_loss)


# ----------------------------------------------------------------------------------------------------------------
# Skip-gram window steps for torch (the GPU's), in step with sg_window_step_cpu / sg_window_hs_step_cpu: a window's
# target owns the output block (its output row and the window's negatives, or its Huffman path), its contexts are
# the inputs. A micro-batch's windows are padded to its longest window ([W, L] contexts, a mask), so the k x R
# score blocks of all its windows are one bmm and both gradients two more.


def _window_plan(window_starts: torch.Tensor, micro_batch: int, widths: torch.Tensor | None = None
                 ) -> list[tuple[int, int, int, int, int, int]]:
    """(first window, end window, first pair, end pair, longest window, widest output block) per micro-batch.

    Decided on the host, so the step's micro-batches never wait for the device: one transfer at most (the
    loader's window_starts are on the host already; widths, each window's output block width, which hierarchical
    softmax takes from its target's path length on the device, come back in it); widths None gives 0.
    """
    n_windows = window_starts.shape[0] - 1
    if widths is None:
        host = window_starts.cpu()
        widths_host = np.zeros(max(0, n_windows), dtype=np.int64)
    elif window_starts.device.type == "cpu":
        host, widths_host = window_starts, widths.cpu().numpy()
    else:
        both = torch.cat([window_starts.to(widths.device, torch.int64), widths.to(torch.int64)]).cpu()
        host, widths_host = both[:n_windows + 1], both[n_windows + 1:].numpy()
    starts = host.numpy().astype(np.int64)
    sizes = np.diff(starts)
    plan = []
    for first, end in window_chunks(host, micro_batch):
        plan.append((first, end, int(starts[first]), int(starts[end]), int(sizes[first:end].max()),
                     int(widths_host[first:end].max())))
    return plan


def _sg_window_torch(input_w: torch.Tensor, output_w: torch.Tensor, target: torch.Tensor, context: torch.Tensor,
                     window_starts: torch.Tensor, plan: list, output_block, lr_start: float, lr_end: float,
                     skip_saturated: bool) -> float:
    """The skip-gram window update of both torch steps; output_block(first, end, t, width) gives the micro-batch's
    (output rows [W, R] long, labels [W, R], live [W, R] bool): the rows each window's contexts are scored against.

    In a micro-batch every window reads the tables as they were at its start; the summed gradients are added once
    (index_add_). Padding contexts read their window's first context and get a zero gradient, as do dead output
    slots (a negative equal to the target, the padding past a path). The learning rate is each window's own, by
    its first pair, as in the CPU kernels. Returns the loss summed over pairs.
    """
    device = input_w.device
    n_pairs = target.shape[0]
    starts_on_device = window_starts.to(device, non_blocking=True)  # the loader's are pinned on CUDA runs
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    dim = input_w.shape[1]
    for first, end, p0, p1, longest, width in plan:
        if p1 == p0:
            continue
        starts = starts_on_device[first:end + 1]
        window_first = starts[:-1]
        sizes = starts[1:] - window_first
        offsets = torch.arange(longest, device=device)
        real = offsets < sizes[:, None]  # [W, L]
        positions = torch.where(real, window_first[:, None] + offsets, window_first[:, None])
        c = context[positions.clamp_max(n_pairs - 1)].long()  # [W, L]
        t = target[window_first.clamp_max(n_pairs - 1)].long()
        out_ids, labels, live = output_block(first, end, t, width)  # [W, R]
        lr = (lr_start + (lr_end - lr_start) * (window_first.to(torch.float64) / max(1, n_pairs))).to(input_w.dtype)
        u = input_w[c]  # [W, L, dim]
        v = output_w[out_ids]  # [W, R, dim]
        scores = torch.bmm(u, v.transpose(1, 2))  # [W, L, R]
        used = real[:, :, None] & live[:, None, :]
        signed = torch.where(labels[:, None, :] > 0, scores, -scores)
        total_loss += torch.where(used, nn.functional.softplus(-signed), 0.0).sum(dtype=torch.float64)
        if skip_saturated:  # hierarchical softmax: word2vec.c skips a node outside +-MAX_EXP
            active = used & (scores.abs() < MAX_SCORE)
            g = torch.where(active, (labels[:, None, :] - torch.sigmoid(scores)) * lr[:, None, None], 0.0)
        else:
            g = torch.where(used, saturated_gradient(scores, labels[:, None, :], 1.0) * lr[:, None, None], 0.0)
        grad_u = torch.bmm(g, v)  # [W, L, dim]: each context's own, from the outputs before they move
        grad_v = torch.bmm(g.transpose(1, 2), u)  # [W, R, dim]: each output row's, summed over the window
        input_w.index_add_(0, c.reshape(-1), grad_u.reshape(-1, dim))
        output_w.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, dim))
    return float(total_loss)


def sg_window_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                         negatives: torch.Tensor, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Skip-gram with negatives shared by a window, batched for CUDA (sg_window_step_cpu's update); the summed loss.

    negatives: [W, K], one set per window (the caller draws them). Window w's contexts are scored against its
    target's output row (label 1) and its K negatives (label 0; one equal to the target skipped). Micro-batches of
    about micro_batch pairs cut at window edges (`window_chunks`), as cbow_step_torch.
    """
    input_w, output_w = model.input.weight.data, model.output.weight.data
    if target.shape[0] == 0:
        return 0.0
    negatives = negatives.to(input_w.device)

    def output_block(first: int, end: int, t: torch.Tensor, width: int):
        out_ids = torch.cat([t[:, None], negatives[first:end].long()], dim=1)  # [W, 1 + K]
        labels = torch.zeros(out_ids.shape, device=t.device, dtype=input_w.dtype)
        labels[:, 0] = 1.0
        live = out_ids != t[:, None]
        live[:, 0] = True
        return out_ids, labels, live

    plan = _window_plan(window_starts, micro_batch)
    return _sg_window_torch(input_w, output_w, target, context, window_starts, plan, output_block, lr_start, lr_end,
                            skip_saturated=False)


def sg_window_hs_step_torch(model: SkipGram, target: torch.Tensor, context: torch.Tensor,
                            window_starts: torch.Tensor, tree: HuffmanTree, lr_start: float, lr_end: float,
                            micro_batch: int = 0) -> float:
    """Skip-gram hierarchical softmax with the target's path shared by its window, batched for CUDA
    (sg_window_hs_step_cpu's update); the summed loss. Paths padded to the micro-batch's longest and masked."""
    input_w, inner_w = model.input.weight.data, model.inner.weight.data
    if target.shape[0] == 0:
        return 0.0
    paths, codes, lengths = tree.tensors(input_w.device)
    starts = window_starts.to(input_w.device, non_blocking=True)
    window_targets = target.to(input_w.device)[starts[:-1].clamp_max(target.shape[0] - 1)]
    path_len = lengths[window_targets.long()]

    def output_block(first: int, end: int, t: torch.Tensor, width: int):
        nodes = paths[t, :width].long()
        labels = 1.0 - codes[t, :width].to(input_w.dtype)
        live = torch.arange(width, device=t.device) < path_len[first:end, None]
        return nodes, labels, live

    plan = _window_plan(window_starts, micro_batch, path_len)
    return _sg_window_torch(input_w, inner_w, target, context, window_starts, plan, output_block, lr_start, lr_end,
                            skip_saturated=True)


def load_trained(data_dir: Path) -> tuple[list[str], np.ndarray]:
    """Words and input vectors of the trained model in DATA_DIR/model."""
    data_dir = Path(data_dir)
    embeddings = require(data_dir / "model" / "embeddings.npy", "train.py")
    words, _ = load_vocab(data_dir)
    return words, np.load(embeddings)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, k=at_least(1))
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
