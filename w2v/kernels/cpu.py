"""The numba training kernels: the CPU's steps, a window of pairs at a time, threads sharing the tables (Hogwild).

Every kernel trains one loader batch in place and returns its summed loss. Shards keep a target occurrence's
pairs together (pairs_dataset.py), so a window's output side is fetched once for all its contexts:
- `sg_window_step_cpu`, `sg_window_hs_step_cpu`: skip-gram, the window's target owning the output rows (its
  output row and negatives shared by the window, HogBatch after Ji et al. 2016; or its Huffman path) and its
  contexts the inputs, as word2vec.c assigns the roles; every score of a window is taken before any row moves.
- `cbow_step_cpu`, `cbow_hs_step_cpu`: CBOW, the mean of the window's context inputs predicting its target.
Negatives are drawn inside the kernels by `unigram_draw` from the alias table (unigram_table.py), with the batch
seed and the window's index as the counter, so a draw depends on neither the threads nor where a run resumed. One
gradient rule, `_output_gradient` (word2vec.c's saturation at +-MAX_SCORE), serves every kernel. The rows of the next window are prefetched while one trains:
the windows are shuffled, so their rows are mostly cache misses.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

from w2v.kernels import MAX_SCORE

# float32 values per 64-byte cache line: the stride of the row prefetches.
FLOATS_PER_LINE = 16


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
_LOW = np.uint64(0xFFFFFFFF)  # a draw's low 32 bits: the choice within a column


@numba.njit(inline="always")
def counter_bits(seed: np.uint64, counter: np.uint64) -> np.uint64:
    """64 well-mixed bits that depend on (seed, counter) only (splitmix64 of seed + (counter + 1) * golden): the
    kernels' negative j of window w uses counter w * negatives + j, so the draws do not depend on the threads,
    their order or where a run resumed."""
    z = seed + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


@numba.njit(inline="always")
def unigram_draw(table: np.ndarray, seed: np.uint64, counter: np.uint64) -> int:
    """The word that draw (seed, counter) picks from the alias table (unigram_table.py: entry alias << 32 |
    threshold): column (hi32 * V) >> 32, kept if lo32 < its threshold, else its alias. Integers only, so the torch
    and Triton steps (torch_steps.window_negatives, triton_steps.unigram_draw) pick the same words."""
    z = counter_bits(seed, counter)
    column = ((z >> np.uint64(32)) * np.uint64(table.shape[0])) >> np.uint64(32)
    entry = np.uint64(table[column])
    if (z & _LOW) < (entry & _LOW):
        return int(column)
    return int(entry >> np.uint64(32))


@numba.njit(cache=True)
def unigram_draws(table: np.ndarray, seed: int, counters: np.ndarray) -> np.ndarray:
    """unigram_draw for each of `counters` (int64): the reference the tests and the self-check call."""
    out = np.empty(len(counters), dtype=np.int64)
    for i in range(len(counters)):
        out[i] = unigram_draw(table, np.uint64(seed), np.uint64(counters[i]))
    return out


@numba.njit(inline="always")
def _output_gradient(score: float, label: float, lr: float, skip_clipped: bool) -> np.float32:
    """(label - sigma(score)) * lr, every kernel's gradient of a score: outside +-MAX_SCORE word2vec.c takes sigma
    as exactly 0 or 1 (negative sampling) or gives no gradient at all (hierarchical softmax, skip_clipped)."""
    if score > MAX_SCORE:
        return np.float32(0.0 if skip_clipped else (label - 1.0) * lr)
    if score < -MAX_SCORE:
        return np.float32(0.0 if skip_clipped else label * lr)
    return np.float32((label - 1.0 / (1.0 + math.exp(-score))) * lr)


@numba.njit(inline="always")
def _train_output_row(u: np.ndarray, grad_u: np.ndarray, v: np.ndarray, label: float, lr: np.float32,
                      with_loss: bool, skip_clipped: bool) -> float:
    """Score input vector u against output row v, move v and add u's gradient to grad_u; the pair's loss (0.0
    unless with_loss). Outside +-MAX_SCORE negative sampling clips the gradient and hierarchical softmax skips the
    row (skip_clipped), as word2vec.c does; the loss counts the true score. The CBOW kernels' update of one row."""
    score = np.float32(0.0)
    for d in range(u.shape[0]):
        score += u[d] * v[d]
    loss = _pair_loss(score, label) if with_loss else 0.0
    g = _output_gradient(score, label, lr, skip_clipped)
    if g == 0.0:
        return loss
    for d in range(u.shape[0]):
        grad_u[d] += g * v[d]
        v[d] += g * u[d]
    return loss



# ----------------------------------------------------------------------------------------------------------------
# Window kernels: a target occurrence's pairs arrive together, so its output side is fetched once.
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
            gradient[i, j] = _output_gradient(score, label, lr, clip_skips)
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
def sg_window_step_cpu(input_w: np.ndarray, output_w: np.ndarray, window_target: np.ndarray, context: np.ndarray,
                       window_starts: np.ndarray, table: np.ndarray, negatives: int, lr_start: float,
                       lr_end: float, seed: int, threads: int, loss_every: int = 1) -> float:
    """Skip-gram with negatives shared across a window (HogBatch, Ji et al. 2016); returns the summed loss.

    Window w (pairs window_starts[w]:window_starts[w + 1], all of one target t) scores each context's input row
    against one block of output rows: output_w[t] (label 1) and `negatives` rows of the unigram table drawn with
    unigram_draw(table, seed, w * negatives + j), a draw equal to t left out (word2vec.c skips it). Every score of the
    k x (1 + negatives) block is taken before any row moves; then each output row gets the summed gradient of the
    k contexts and each context its own, so the block's rows are read from memory once per window instead of
    once per pair, and the next window's rows are prefetched while this one trains.
    Learning rate linear from lr_start to lr_end by the window's first pair / n_pairs; `threads` contiguous
    ranges of windows update the tables without locks; the loss is taken on pairs 0, loss_every, ... and
    scaled up to the batch (the log/exp of the loss would otherwise cost a large part of the kernel).
    """
    n_pairs, dim = context.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    n_out = negatives + 1
    rows_in = (max(1, _longest_window(window_starts)) + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    rows_out = (n_out + ROWS_PER_PASS - 1) // ROWS_PER_PASS * ROWS_PER_PASS
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
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
            next_rows[0] = window_target[first]
            for j in range(negatives):
                next_rows[j + 1] = unigram_draw(table, seed_u, np.uint64(first * negatives + j))
        for w in range(first, end):
            start, stop = window_starts[w], window_starts[w + 1]
            out_rows[:n_out] = next_rows
            out_rows[n_out:] = next_rows[0]
            if w + 1 < end:  # draw the next window's rows now and start loading them
                next_start, next_stop = window_starts[w + 1], window_starts[w + 2]
                next_rows[0] = window_target[w + 1]
                prefetch_row(output_w, next_rows[0])
                for j in range(negatives):
                    next_rows[j + 1] = unigram_draw(table, seed_u, np.uint64((w + 1) * negatives + j))
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
def sg_window_hs_step_cpu(input_w: np.ndarray, inner_w: np.ndarray, window_target: np.ndarray, context: np.ndarray,
                          window_starts: np.ndarray, paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                          lr_start: float, lr_end: float, threads: int, loss_every: int = 1) -> float:
    """Hierarchical softmax with the target's Huffman path shared across its window; returns the summed loss.

    Window w's target t owns the output side: the inner-node rows of path(t). Each context's input row is scored
    against every node of it (a k x L block, all scores before any row moves); node n with bit b has label 1 - b,
    a score outside +-MAX_SCORE is skipped (no update, the loss still counts it), as in word2vec.c. Each node gets
    the summed gradient of the k contexts, each context its own. Learning rate, threads, prefetching of the next
    window and loss_every as in sg_window_step_cpu.
    """
    n_pairs, dim = context.shape[0], input_w.shape[1]
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
                    next_t = window_target[w + 1]
                    for j in range(lengths[next_t]):
                        prefetch_row(inner_w, paths[next_t, j])
                for p in range(next_start, next_stop):
                    prefetch_row(input_w, context[p])
            if stop == start:
                continue
            t = window_target[w]
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


# A CBOW window scores one vector h against its output rows, so the rows go in threes (_mean_scores_3,
# _mean_update_3): one pass over the dimensions loads h once for three rows, and the update pass reads each row
# once for both its share of dL/dh and its own move. word2vec.c updates the rows one after another; with the rows
# of a window distinct that is the same arithmetic (row j's score and its share of dL/dh read row j only), so a
# window whose negatives repeat a row takes the one-at-a-time loop (_train_output_row) instead.
# The rows of window w + PREFETCH_WINDOWS are prefetched while window w trains: one window ahead leaves a window's
# misses too little time to land.
PREFETCH_WINDOWS = 2
@numba.njit(inline="always")
def _window_mean(h: np.ndarray, input_w: np.ndarray, context: np.ndarray, start: int, stop: int) -> None:
    dim = h.shape[0]
    first = context[start]
    for d in range(dim):
        h[d] = input_w[first, d]
    for p in range(start + 1, stop):
        row = context[p]
        for d in range(dim):
            h[d] += input_w[row, d]
    inverse = np.float32(1.0 / (stop - start))
    for d in range(dim):
        h[d] *= inverse


@numba.njit(inline="always")
def _add_to_contexts(input_w: np.ndarray, context: np.ndarray, start: int, stop: int, grad_h: np.ndarray) -> None:
    dim = grad_h.shape[0]
    for p in range(start, stop):
        row = context[p]
        for d in range(dim):
            input_w[row, d] += grad_h[d]


@numba.njit(inline="always")
def _prefetch_contexts(input_w: np.ndarray, context: np.ndarray, start: int, stop: int) -> None:
    for p in range(start, stop):
        prefetch_row(input_w, context[p])


@numba.njit(inline="always")
def _mean_scores_3(h: np.ndarray, outputs: np.ndarray, j0: int, j1: int, j2: int, scores: np.ndarray,
                   at: int) -> None:
    """scores[at + b] = h . outputs[j_b] for b in 0..2."""
    s0 = s1 = s2 = np.float32(0.0)
    for d in range(h.shape[0]):
        x = h[d]
        s0 += x * outputs[j0, d]
        s1 += x * outputs[j1, d]
        s2 += x * outputs[j2, d]
    scores[at], scores[at + 1], scores[at + 2] = s0, s1, s2


@numba.njit(inline="always")
def _mean_update_3(h: np.ndarray, grad_h: np.ndarray, outputs: np.ndarray, j0: int, g0: np.float32, j1: int,
                   g1: np.float32, j2: int, g2: np.float32) -> None:
    """grad_h += sum_b g_b outputs[j_b] (the rows as they were), then outputs[j_b] += g_b h; j0, j1, j2 distinct."""
    for d in range(h.shape[0]):
        x = h[d]
        v0, v1, v2 = outputs[j0, d], outputs[j1, d], outputs[j2, d]
        grad_h[d] += g0 * v0 + g1 * v1 + g2 * v2
        outputs[j0, d] = v0 + g0 * x
        outputs[j1, d] = v1 + g1 * x
        outputs[j2, d] = v2 + g2 * x


@numba.njit(inline="always")
def _train_mean(h: np.ndarray, grad_h: np.ndarray, outputs: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                n_rows: int, lr: np.float32, with_loss: bool, skip_clipped: bool, scores: np.ndarray) -> float:
    """h against outputs[rows[:n_rows]] (distinct rows), the rows moved and dL/dh summed into grad_h (zeroed
    here); the window's loss (0.0 unless with_loss). The same update as _train_output_row row after row."""
    loss = 0.0
    whole = n_rows - n_rows % 3
    for j in range(0, whole, 3):
        _mean_scores_3(h, outputs, rows[j], rows[j + 1], rows[j + 2], scores, j)
    for j in range(whole, n_rows):
        score = np.float32(0.0)
        row = rows[j]
        for d in range(h.shape[0]):
            score += h[d] * outputs[row, d]
        scores[j] = score
    for j in range(n_rows):
        if with_loss:
            loss += _pair_loss(scores[j], labels[j])
        scores[j] = _output_gradient(scores[j], labels[j], lr, skip_clipped)
    for d in range(h.shape[0]):
        grad_h[d] = 0.0
    for j in range(0, whole, 3):
        _mean_update_3(h, grad_h, outputs, rows[j], scores[j], rows[j + 1], scores[j + 1], rows[j + 2],
                       scores[j + 2])
    for j in range(whole, n_rows):
        g, row = scores[j], rows[j]
        for d in range(h.shape[0]):
            v = outputs[row, d]
            grad_h[d] += g * v
            outputs[row, d] = v + g * h[d]
    return loss


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cbow_step_cpu(input_w: np.ndarray, output_w: np.ndarray, window_target: np.ndarray, context: np.ndarray,
                  window_starts: np.ndarray, table: np.ndarray, negatives: int, lr_start: float, lr_end: float,
                  seed: int, threads: int, loss_every: int = 1) -> float:
    """CBOW with negative sampling, window by window (word2vec.c's `if (cbow)` loop); returns the summed loss.

    Window w is pairs window_starts[w]:window_starts[w + 1], all with one target. Its `negatives` negatives are
    drawn here: unigram_draw(table, seed, w * negatives + j); one equal to the target is skipped, as word2vec.c
    does. The learning rate moves linearly from lr_start to lr_end by the window's first pair / n_pairs.
    `threads` contiguous ranges of windows update the tables without locks (Hogwild). The loss is summed over
    windows; with loss_every = k it is computed on windows 0, k, 2k, ... and scaled up to all of them.
    While a window trains, the rows of the window PREFETCH_WINDOWS later (its contexts' inputs, its target's and
    negatives' outputs) are prefetched: the windows are shuffled, so their rows are mostly cache misses.
    """
    n_pairs, dim = context.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    seed_bits = np.uint64(seed)
    n_out = negatives + 1
    slots = PREFETCH_WINDOWS + 1
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        h = np.empty(dim, dtype=np.float32)
        grad_h = np.empty(dim, dtype=np.float32)
        drawn = np.empty((slots, max(1, negatives)), dtype=np.int64)  # a ring: window w's negatives in w % slots
        rows = np.empty(n_out, dtype=np.int64)
        labels = np.zeros(n_out, dtype=np.float32)
        labels[0] = 1.0
        scores = np.empty(n_out, dtype=np.float32)
        loss = 0.0
        first, end = thread * per_thread, min(n_windows, (thread + 1) * per_thread)
        for w in range(first, min(end, first + PREFETCH_WINDOWS)):  # the pipeline's first windows
            for j in range(negatives):
                drawn[w % slots, j] = unigram_draw(table, seed_bits, np.uint64(w * negatives + j))
        for w in range(first, end):
            ahead = w + PREFETCH_WINDOWS
            if ahead < end:  # a later window's negatives (the alias table is in cache): their rows start to load
                for j in range(negatives):
                    drawn[ahead % slots, j] = unigram_draw(table, seed_bits, np.uint64(ahead * negatives + j))
                    prefetch_row(output_w, drawn[ahead % slots, j])
                prefetch_row(output_w, window_target[ahead])
                _prefetch_contexts(input_w, context, window_starts[ahead], window_starts[ahead + 1])
            start, stop = window_starts[w], window_starts[w + 1]
            if stop <= start:
                continue
            t = window_target[w]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            _window_mean(h, input_w, context, start, stop)
            with_loss = w % loss_every == 0
            rows[0] = t
            n_rows = 1
            repeated = False
            for j in range(negatives):
                o = drawn[w % slots, j]
                if o == t:
                    continue
                for i in range(1, n_rows):
                    repeated |= rows[i] == o
                rows[n_rows] = o
                n_rows += 1
            if repeated:  # a row twice: word2vec.c's order, the second update from the first's result
                grad_h[:] = 0.0
                for j in range(n_rows):
                    loss += _train_output_row(h, grad_h, output_w[rows[j]], labels[j], lr, with_loss, False)
            else:
                loss += _train_mean(h, grad_h, output_w, rows, labels, n_rows, lr, with_loss, False, scores)
            _add_to_contexts(input_w, context, start, stop, grad_h)
        losses[thread] = loss
    return losses.sum() * n_windows / max(1, (n_windows + loss_every - 1) // loss_every)


@numba.njit(parallel=True, fastmath=True, cache=True, nogil=True)
def cbow_hs_step_cpu(input_w: np.ndarray, inner_w: np.ndarray, window_target: np.ndarray, context: np.ndarray,
                     window_starts: np.ndarray, paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray,
                     lr_start: float, lr_end: float, threads: int, loss_every: int = 1) -> float:
    """CBOW with hierarchical softmax, window by window; returns the summed loss (over windows).

    h (the mean of the window's context input rows) is scored against the target's Huffman path: node n with bit
    b has label 1 - b; a node whose score is outside +-MAX_SCORE is skipped (word2vec.c). A path's nodes are
    distinct, so they always go in threes. Windows, learning rate, threads, loss_every and prefetching as in
    cbow_step_cpu.
    """
    n_pairs, dim = context.shape[0], input_w.shape[1]
    n_windows = window_starts.shape[0] - 1
    per_thread = (n_windows + threads - 1) // threads
    loss_every = max(1, loss_every)
    max_len = max(1, paths.shape[1])
    losses = np.zeros(threads)
    for thread in numba.prange(threads):
        h = np.empty(dim, dtype=np.float32)
        grad_h = np.empty(dim, dtype=np.float32)
        rows = np.empty(max_len, dtype=np.int64)
        labels = np.empty(max_len, dtype=np.float32)
        scores = np.empty(max_len, dtype=np.float32)
        loss = 0.0
        end = min(n_windows, (thread + 1) * per_thread)
        for w in range(thread * per_thread, end):
            ahead = w + PREFETCH_WINDOWS
            if ahead < end:
                following = window_target[ahead]
                for j in range(lengths[following]):
                    prefetch_row(inner_w, paths[following, j])
                _prefetch_contexts(input_w, context, window_starts[ahead], window_starts[ahead + 1])
            start, stop = window_starts[w], window_starts[w + 1]
            if stop <= start:
                continue
            t = window_target[w]
            lr = np.float32(lr_start + (lr_end - lr_start) * (start / n_pairs))
            _window_mean(h, input_w, context, start, stop)
            n_nodes = lengths[t]
            for j in range(n_nodes):
                rows[j] = paths[t, j]
                labels[j] = 1.0 - codes[t, j]
            loss += _train_mean(h, grad_h, inner_w, rows, labels, n_nodes, lr, w % loss_every == 0, True, scores)
            _add_to_contexts(input_w, context, start, stop, grad_h)
        losses[thread] = loss
    return losses.sum() * n_windows / max(1, (n_windows + loss_every - 1) // loss_every)
