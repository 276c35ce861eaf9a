"""The Triton kernels: the GPU's fused window steps, one launch per loader batch.

`sg_window_step_triton`: skip-gram with negative sampling on window shards, sg_window_step_cpu's update in one
kernel launch. One program per window: the window's output rows (its target's row and its negatives, drawn inside
the kernel from the alias table by unigram_draw with the batch seed and the window's index, so the CPU kernel, the
torch step, Triton's CPU interpreter and a GPU draw the same negatives) are read once and held while every context
of the window is scored against them; each context row is read once; every row is then updated with atomic adds.
Programs run concurrently on a GPU and update the tables without locks (Hogwild, as the CPU kernel's threads do);
under the interpreter they run one after another, as one CPU thread runs its windows, so the two give the same
tables to float rounding.

Each program makes two passes over the dimensions in chunks of BLOCK_D columns: the first takes every score of the
window (the k x (1 + negatives) block), the second, chunk by chunk, loads the chunk of every row, computes both
gradients from those values and adds them. A chunk's loads all come before its adds, and chunks are disjoint
columns, so every gradient comes from the rows as they were when the window started, as in the CPU kernel, even
when a context or a negative repeats inside the window. The second pass re-reads rows the first just read (a
cache hit on a GPU at a window's dozen rows), so the tables' memory traffic is a read and a write per row.

`sg_window_hs_step_triton` and `cbow_hs_step_triton`: hierarchical softmax, sg_window_hs_step_cpu's and
cbow_hs_step_cpu's updates. The output rows are the inner-node rows of the window target's Huffman path (the
HuffmanTree's paths, codes and lengths, on the device), shared by every context of the window as in the numba
kernel. sg's program holds the path padded to a power-of-two block of at least the tree's longest path (a
constexpr, so every shape is static) and masked past the target's length; CBOW's walks the path node by node.
Since every path starts at the root, sg's programs at --triton-group G > 1 add the top levels' gradients once
per row per program, summed over its windows and added after them (see _sg_hs_windows): at --triton-group 64 the
root takes an atomic add per 64 windows, not per window.

Under TRITON_INTERPRET=1, read by Triton when it is first imported (it decides then whether triton.jit, its
own library's functions included, makes compiled or interpreted functions), the kernel runs on CPU tensors in
Triton's interpreter; otherwise it compiles for CUDA. Tests run the interpreter in a process of its own, so the
setting reaches no other code.

What only the interpreter has checked (no GPU has run these kernels): the numbers, the
masks and the order of loads and adds. Kept, for a GPU compiler, within what it accepts: no tl.dot (the score
blocks, at most 16 x 8, are below tl.dot's 16 x 16 minimum; broadcast products and sums do them), float32 atomics
only, power-of-two blocks with masks (dim 100 or 300 in chunks of BLOCK_D), int64 index arithmetic (row * dim
overflows int32 past 7M rows at dim 300), unsigned 64-bit arithmetic for the draw, relaxed atomics.

Compiled, without a GPU, for sm_75, sm_80, sm_86, sm_89 and sm_90a at every shape training launches (
compile_check.py, tests/test_compile_kernels.py): no spill, 1-3 s a kernel, 31-128 registers per thread. A
program takes its GROUP windows one after another (a loop over one window's block): the earlier design held a
block of GROUP windows (group x contexts x outputs x columns), which took 197 registers at group 2, spilled from
group 4 and at group 64 lowered to megabytes of PTX that ptxas took more than 9 minutes on. Speed, occupancy in
practice and the atomics' contention on a GPU are unmeasured; w2v/kernels/self_check.py checks a first run's
step against the torch step before it trains.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from w2v.common import fail
from w2v.batch import WindowBatch
from w2v.kernels import MAX_SCORE

# Whether Triton runs its interpreter: it reads TRITON_INTERPRET when first imported and makes its jit functions so.
INTERPRETED = os.environ.get("TRITON_INTERPRET", "0") == "1"

# Columns per chunk on a GPU: a window's 3-D product block (contexts x outputs x BLOCK_D float32) stays at 4,096
# values (32 a thread at 4 warps) for windows of up to 16 contexts.
GPU_BLOCK_D = 32
GPU_WARPS = 4
# The narrowest context block: windows of up to 8 contexts share one compiled kernel, 16 another.
MIN_BLOCK_K = 8
# sg hs on a GPU: columns per chunk chosen so that the window's product block (contexts x path x columns) holds
# GPU_PRODUCT_VALUES, the ns kernel's 16 x 8 x 32, but never fewer than MIN_GPU_BLOCK_D columns: text8's paths (22
# nodes at most, a 32-slot block) get 8 columns, a vocabulary's of 33 to 64 nodes 4 (16-byte row segments: at 8
# the 64-slot block took 128 registers on sm_75 at group 1 and 167 at group 64, against 72 and 128 at 4; compile_check).
GPU_PRODUCT_VALUES = 4096
MIN_GPU_BLOCK_D = 4
# sg hs: the top levels of the Huffman tree (the root, its 2 children, 4 grandchildren, 8 below) whose rows a
# program adds once per distinct row instead of once per window (every path passes the root, half of them each child).
SHARED_LEVELS = 4


@triton.jit
def counter_bits(seed, counter):
    """cpu.counter_bits on uint64 tensors (splitmix64 of seed + (counter + 1) * golden)."""
    z = seed + (counter + 1) * 0x9E3779B97F4A7C15
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)


@triton.jit
def unigram_draw(table, seed, counter, vocab_size, mask):
    """cpu.unigram_draw on uint64 seed and counters: column (hi32 * V) >> 32 of the alias table (int64 entries
    alias << 32 | threshold), kept if lo32 < its threshold, else its alias; int64 words (0 where not mask)."""
    z = counter_bits(seed, counter)
    column = ((z >> 32) * vocab_size) >> 32
    entry = tl.load(table + column.to(tl.int64), mask=mask, other=0).to(tl.int64)
    low = (z & 0xFFFFFFFF).to(tl.int64)
    return tl.where(low < (entry & 0xFFFFFFFF), column.to(tl.int64), entry >> 32)


@triton.jit(do_not_specialize=["n", "vocab_size", "seed"])
def _draws(table, counters, out, n, vocab_size, seed, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = i < n
    counter = tl.load(counters + i, mask=inside, other=0).to(tl.uint64)
    tl.store(out + i, unigram_draw(table, seed.to(tl.uint64), counter, vocab_size.to(tl.uint64), inside), mask=inside)


def unigram_draws(table: torch.Tensor, seed: int, counters: torch.Tensor) -> torch.Tensor:
    """unigram_draw of each of `counters` (int64, on the table's device) in one launch: what the ns kernels draw,
    for the tests to hold against cpu.unigram_draws and torch_steps.unigram_draws."""
    _check_device(table)
    out = torch.empty(len(counters), dtype=torch.int64, device=table.device)
    if len(counters):
        _draws[(triton.cdiv(len(counters), 1024),)](table, counters, out, len(counters), len(table), int(seed),
                                                    BLOCK=1024)
    return out


@triton.jit
def _sg_ns_window(w, input_w, output_w, window_target, context, window_starts, table, window_loss, n_windows,
                  n_pairs, vocab_size, seed, lr_start, lr_end, loss_every, dim, MAX_SCORE: tl.constexpr,
                  NEGATIVES: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_OUT: tl.constexpr, BLOCK_D: tl.constexpr):
    """Window w (an int64 block of one: pairs window_starts[w]:window_starts[w + 1], all of target
    window_target[w]) trained as sg_window_step_cpu trains it; its loss (of its pairs whose index is a multiple of
    loss_every) to window_loss[w]. Nothing when w >= n_windows."""
    real = w < n_windows  # [1]
    start = tl.load(window_starts + w, mask=real, other=0)
    k = tl.load(window_starts + w + 1, mask=real, other=0) - start
    slots = tl.arange(0, BLOCK_K)
    in_window = slots[None, :] < k[:, None]  # [1, K]
    positions = start[:, None] + slots[None, :]
    rows_in = tl.load(context + positions, mask=in_window, other=0).to(tl.int64)
    t = tl.load(window_target + w, mask=real, other=0).to(tl.int64)  # [1]

    # Slot 0 is the target's row (label 1); slot j in 1..NEGATIVES is negative j - 1, unigram_draw(table, seed,
    # w * NEGATIVES + j - 1); one equal to the target is not live (word2vec.c skips it).
    j = tl.arange(0, BLOCK_OUT)
    is_negative = ((j >= 1) & (j <= NEGATIVES))[None, :] & real[:, None]  # [1, O]
    counter = (w[:, None] * NEGATIVES + tl.where(is_negative, j[None, :] - 1, 0)).to(tl.uint64)
    negative = unigram_draw(table, seed.to(tl.uint64), counter, vocab_size.to(tl.uint64), is_negative)
    is_target = (j == 0)[None, :] & real[:, None] & (k > 0)[:, None]
    rows_out = tl.where(is_target, t[:, None], negative)
    live = is_target | (is_negative & (negative != t[:, None]))

    scores = tl.zeros([1, BLOCK_K, BLOCK_OUT], dtype=tl.float32)
    for d0 in range(0, dim, BLOCK_D):
        d = (d0 + tl.arange(0, BLOCK_D))[None, None, :]
        columns = d < dim
        u = tl.load(input_w + rows_in[:, :, None] * dim + d, mask=in_window[:, :, None] & columns, other=0.0)
        v = tl.load(output_w + rows_out[:, :, None] * dim + d, mask=live[:, :, None] & columns, other=0.0)
        scores += tl.sum(u[:, :, None, :] * v[:, None, :, :], axis=3)

    used = in_window[:, :, None] & live[:, None, :]  # [1, K, O]
    lr = lr_start + (lr_end - lr_start) * (start.to(tl.float32) / n_pairs.to(tl.float32))  # [1]
    labels = (j == 0).to(tl.float32)[None, None, :]
    # word2vec.c's rule (cpu._output_gradient): outside +-MAX_SCORE sigma is exactly 0 or 1
    sigma = 1.0 / (1.0 + tl.exp(-tl.minimum(tl.maximum(scores, -MAX_SCORE), MAX_SCORE)))
    sigma = tl.where(scores > MAX_SCORE, 1.0, tl.where(scores < -MAX_SCORE, 0.0, sigma))
    g = tl.where(used, (labels - sigma) * lr[:, None, None], 0.0)
    signed = tl.where(labels > 0.5, scores, -scores)
    pair_loss = tl.maximum(-signed, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(signed)))
    counted = used & ((positions % loss_every) == 0)[:, :, None]
    tl.store(window_loss + w, tl.sum(tl.sum(tl.where(counted, pair_loss, 0.0), axis=2), axis=1), mask=real)

    for d0 in range(0, dim, BLOCK_D):
        d = (d0 + tl.arange(0, BLOCK_D))[None, None, :]
        columns = d < dim
        mask_in = in_window[:, :, None] & columns
        mask_out = live[:, :, None] & columns
        u_pointers = input_w + rows_in[:, :, None] * dim + d
        v_pointers = output_w + rows_out[:, :, None] * dim + d
        u = tl.load(u_pointers, mask=mask_in, other=0.0)  # [1, K, D]
        v = tl.load(v_pointers, mask=mask_out, other=0.0)  # [1, O, D]
        grad_u = tl.sum(g[:, :, :, None] * v[:, None, :, :], axis=2)  # each context's own
        grad_v = tl.sum(g[:, :, :, None] * u[:, :, None, :], axis=1)  # each output row's, summed over its window
        tl.atomic_add(u_pointers, grad_u, mask=mask_in, sem="relaxed")
        tl.atomic_add(v_pointers, grad_v, mask=mask_out, sem="relaxed")


@triton.jit(do_not_specialize=["n_windows", "n_pairs", "vocab_size", "seed", "loss_every"])
def _sg_ns_windows(input_w, output_w, window_target, context, window_starts, table, window_loss, n_windows, n_pairs,
                   vocab_size, seed, lr_start, lr_end, loss_every, dim, MAX_SCORE: tl.constexpr,
                   NEGATIVES: tl.constexpr, GROUP: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_OUT: tl.constexpr,
                   BLOCK_D: tl.constexpr):
    """Program p trains windows p * GROUP .. p * GROUP + GROUP - 1 one after another (a loop, not a block: the
    registers and the code a program needs do not grow with GROUP), each as sg_window_step_cpu trains it: all its
    scores from the rows as they were when it started, then its adds. GROUP only sets how many windows a program
    takes (fewer, longer programs); the update is the CPU kernel's at any GROUP."""
    first = tl.program_id(0).to(tl.int64) * GROUP
    for i in range(0, GROUP):
        _sg_ns_window(first + i + tl.zeros([1], dtype=tl.int64), input_w, output_w, window_target, context,
                      window_starts, table, window_loss, n_windows, n_pairs, vocab_size, seed, lr_start, lr_end,
                      loss_every, dim, MAX_SCORE, NEGATIVES, BLOCK_K, BLOCK_OUT, BLOCK_D)


@triton.jit(do_not_specialize=["n_pairs", "n_windows", "vocab_size", "seed", "loss_every"])
def _cbow_ns_window(input_w, output_w, window_target, context, window_starts, table, window_loss, n_pairs,
                    n_windows, vocab_size, seed, lr_start, lr_end, loss_every, dim, MAX_SCORE: tl.constexpr,
                    NEGATIVES: tl.constexpr, BLOCK_D: tl.constexpr):
    """Program w trains CBOW window w (cbow_step_cpu's update): h, the mean of its context rows, scored against
    its target's row (label 1), then its negatives (unigram_draw(table, seed, w * NEGATIVES + j), label 0; one
    equal to the target skipped) one after another, each output row moved as soon as it is scored, as
    word2vec.c does (a negative drawn twice reads the first one's update); dL/dh added undivided to every context
    row. Its loss goes to window_loss[w] when w is a multiple of loss_every. Rows are whole (BLOCK_D >= dim)."""
    w = tl.program_id(0).to(tl.int64)
    start = tl.load(window_starts + w)
    k = tl.load(window_starts + w + 1) - start
    t = tl.load(window_target + w).to(tl.int64)
    d = tl.arange(0, BLOCK_D)
    columns = d < dim
    h = tl.zeros([BLOCK_D], dtype=tl.float32)
    for i in range(0, k):
        row = tl.load(context + start + i).to(tl.int64)
        h += tl.load(input_w + row * dim + d, mask=columns, other=0.0)
    h = h * (1.0 / tl.maximum(k, 1).to(tl.float32))
    lr = lr_start + (lr_end - lr_start) * (start.to(tl.float32) / n_pairs.to(tl.float32))
    counted = ((w % loss_every) == 0) & (k > 0)
    grad_h = tl.zeros([BLOCK_D], dtype=tl.float32)
    loss = 0.0
    for j in tl.static_range(NEGATIVES + 1):
        if j == 0:
            o = t
            label = 1.0
            live = k > 0
        else:
            counter = (w * NEGATIVES + (j - 1)).to(tl.uint64)
            o = unigram_draw(table, seed.to(tl.uint64), counter, vocab_size.to(tl.uint64), True)
            label = 0.0
            live = (o != t) & (k > 0)
        pointers = output_w + o * dim + d
        v = tl.load(pointers, mask=columns, other=0.0)
        score = tl.sum(h * v, axis=0)
        # word2vec.c's rule (cpu._output_gradient): outside +-MAX_SCORE sigma is exactly 0 or 1
        sigma = 1.0 / (1.0 + tl.exp(-tl.minimum(tl.maximum(score, -MAX_SCORE), MAX_SCORE)))
        sigma = tl.where(score > MAX_SCORE, 1.0, tl.where(score < -MAX_SCORE, 0.0, sigma))
        g = tl.where(live, (label - sigma) * lr, 0.0)
        signed = score if j == 0 else -score
        pair_loss = tl.maximum(-signed, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(signed)))
        loss += tl.where(live & counted, pair_loss, 0.0)
        grad_h += g * v
        tl.atomic_add(pointers, g * h, mask=columns, sem="relaxed")
    for i in range(0, k):
        row = tl.load(context + start + i).to(tl.int64)
        tl.atomic_add(input_w + row * dim + d, grad_h, mask=columns, sem="relaxed")
    tl.store(window_loss + w, loss)


@triton.jit
def _sg_hs_window(w, slot_base, input_w, inner_w, window_target, context, window_starts, paths, codes, lengths,
                  window_loss, level_grads, level_rows, n_windows, n_pairs, lr_start, lr_end, loss_every, dim,
                  max_len, MAX_SCORE: tl.constexpr, GROUPED: tl.constexpr, BLOCK_K: tl.constexpr,
                  BLOCK_PATH: tl.constexpr, BLOCK_D: tl.constexpr, SHARED_LEVELS: tl.constexpr):
    """Window w (an int64 block of one) trained as sg_window_hs_step_cpu trains it: its contexts (input rows)
    against the inner-node rows of its target's Huffman path (paths[t, :lengths[t]], node j with label
    1 - codes[t, j]), every score of the window before any row moves, a score outside +-MAX_SCORE giving no
    gradient (word2vec.c; the loss still counts it). The path is padded to BLOCK_PATH slots (a power of two at
    least the tree's longest path) and masked past lengths[t]. GROUPED: the gradients of the nodes of the top
    SHARED_LEVELS levels go to the program's sums (level_grads, a row per node slot from slot_base on; the node's
    row id to level_rows) instead of the table. Nothing when w >= n_windows."""
    real = w < n_windows  # [1]
    start = tl.load(window_starts + w, mask=real, other=0)
    k = tl.load(window_starts + w + 1, mask=real, other=0) - start
    slots = tl.arange(0, BLOCK_K)
    in_window = slots[None, :] < k[:, None]  # [1, K]
    positions = start[:, None] + slots[None, :]
    rows_in = tl.load(context + positions, mask=in_window, other=0).to(tl.int64)
    t = tl.load(window_target + w, mask=real, other=0).to(tl.int64)  # [1]

    j = tl.arange(0, BLOCK_PATH)
    n_nodes = tl.load(lengths + t, mask=real & (k > 0), other=0)
    on_path = j[None, :] < n_nodes[:, None]  # [1, P]
    rows_out = tl.load(paths + t[:, None] * max_len + j[None, :], mask=on_path, other=0).to(tl.int64)
    branch = tl.load(codes + t[:, None] * max_len + j[None, :], mask=on_path, other=0).to(tl.int32)
    labels = 1.0 - branch.to(tl.float32)

    scores = tl.zeros([1, BLOCK_K, BLOCK_PATH], dtype=tl.float32)
    for d0 in range(0, dim, BLOCK_D):
        d = (d0 + tl.arange(0, BLOCK_D))[None, None, :]
        columns = d < dim
        u = tl.load(input_w + rows_in[:, :, None] * dim + d, mask=in_window[:, :, None] & columns, other=0.0)
        v = tl.load(inner_w + rows_out[:, :, None] * dim + d, mask=on_path[:, :, None] & columns, other=0.0)
        scores += tl.sum(u[:, :, None, :] * v[:, None, :, :], axis=3)

    used = in_window[:, :, None] & on_path[:, None, :]  # [1, K, P]
    lr = lr_start + (lr_end - lr_start) * (start.to(tl.float32) / n_pairs.to(tl.float32))  # [1]
    # word2vec.c's hs rule (cpu._output_gradient with skip_clipped): no gradient outside +-MAX_SCORE
    sigma = 1.0 / (1.0 + tl.exp(-tl.minimum(tl.maximum(scores, -MAX_SCORE), MAX_SCORE)))
    inside = (scores <= MAX_SCORE) & (scores >= -MAX_SCORE)
    g = tl.where(used & inside, (labels[:, None, :] - sigma) * lr[:, None, None], 0.0)
    signed = tl.where(labels[:, None, :] > 0.5, scores, -scores)
    pair_loss = tl.maximum(-signed, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(signed)))
    counted = used & ((positions % loss_every) == 0)[:, :, None]
    tl.store(window_loss + w, tl.sum(tl.sum(tl.where(counted, pair_loss, 0.0), axis=2), axis=1), mask=real)

    if GROUPED:
        # Node j < SHARED_LEVELS is the tree's node (j, the branch bits above it read as a binary number): its
        # slot 2^j - 1 + those bits is the same node for every window of the program (at most 15 slots).
        top = j < SHARED_LEVELS
        level = tl.minimum(j, SHARED_LEVELS)
        slot = ((1 << level) - 1)[None, :] + tl.zeros_like(branch)  # [1, P]
        for i in tl.static_range(SHARED_LEVELS - 1):
            bit = tl.sum(tl.where((j == i)[None, :], branch, 0), axis=1)  # [1]: branch bit i
            slot += tl.where((j > i)[None, :], bit[:, None] << tl.maximum(level - 1 - i, 0)[None, :], 0)
        shared = top[None, :] & on_path
        slot_row = (slot_base + slot).to(tl.int64)
        tl.store(level_rows + slot_row, rows_out, mask=shared)
        to_table = on_path & (j >= SHARED_LEVELS)[None, :]
    else:
        shared = on_path & (j < 0)[None, :]
        slot_row = rows_out
        to_table = on_path

    for d0 in range(0, dim, BLOCK_D):
        d = (d0 + tl.arange(0, BLOCK_D))[None, None, :]
        columns = d < dim
        mask_in = in_window[:, :, None] & columns
        u_pointers = input_w + rows_in[:, :, None] * dim + d
        v_pointers = inner_w + rows_out[:, :, None] * dim + d
        u = tl.load(u_pointers, mask=mask_in, other=0.0)  # [1, K, D]
        v = tl.load(v_pointers, mask=on_path[:, :, None] & columns, other=0.0)  # [1, P, D]
        grad_u = tl.sum(g[:, :, :, None] * v[:, None, :, :], axis=2)  # each context's own
        grad_v = tl.sum(g[:, :, :, None] * u[:, :, None, :], axis=1)  # each node's, summed over its window
        tl.atomic_add(u_pointers, grad_u, mask=mask_in, sem="relaxed")
        tl.atomic_add(v_pointers, grad_v, mask=to_table[:, :, None] & columns, sem="relaxed")
        if GROUPED:
            tl.atomic_add(level_grads + slot_row[:, :, None] * dim + d, grad_v, mask=shared[:, :, None] & columns,
                          sem="relaxed")


@triton.jit(do_not_specialize=["n_windows", "n_pairs", "loss_every", "max_len"])
def _sg_hs_windows(input_w, inner_w, window_target, context, window_starts, paths, codes, lengths, window_loss,
                   level_grads, level_rows, n_windows, n_pairs, lr_start, lr_end, loss_every, dim, max_len,
                   MAX_SCORE: tl.constexpr, GROUP: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_PATH: tl.constexpr,
                   BLOCK_D: tl.constexpr, SHARED_LEVELS: tl.constexpr):
    """Program p trains windows p * GROUP .. p * GROUP + GROUP - 1 one after another (a loop, not a block: the
    registers and the code a program needs do not grow with GROUP), each as sg_window_hs_step_cpu trains it.

    Contention: every path starts at the root and half of them pass each of its children, so the top of the tree
    would take an atomic add per window. With GROUP > 1 the nodes of the top SHARED_LEVELS levels (at most
    2^SHARED_LEVELS - 1 rows) are added once per program: each window's gradients for them are summed in the
    program's rows of level_grads ([programs * 2^SHARED_LEVELS, dim], zeros; level_rows: the slots' row ids, -1
    where no window passed) and added to the table after its last window. Those rows therefore do not move during
    a program: its windows read them as they were when it started, as a micro-batch reads its rows. Deeper nodes
    and the contexts move window by window. GROUP 1, the default, is the CPU kernel's update."""
    program = tl.program_id(0).to(tl.int64)
    first = program * GROUP
    SLOTS: tl.constexpr = 1 << SHARED_LEVELS
    for i in range(0, GROUP):
        _sg_hs_window(first + i + tl.zeros([1], dtype=tl.int64), program * SLOTS, input_w, inner_w, window_target,
                      context, window_starts, paths, codes, lengths, window_loss, level_grads, level_rows, n_windows,
                      n_pairs, lr_start, lr_end, loss_every, dim, max_len, MAX_SCORE, GROUP > 1, BLOCK_K,
                      BLOCK_PATH, BLOCK_D, SHARED_LEVELS)
    if GROUP > 1:
        tl.debug_barrier()  # every window's sums are in before they are read
        s = program * SLOTS + tl.arange(0, SLOTS)
        rows = tl.load(level_rows + s, cache_modifier=".cg")  # [S]
        for d0 in range(0, dim, BLOCK_D):
            d1 = d0 + tl.arange(0, BLOCK_D)
            moved = (rows >= 0)[:, None] & (d1 < dim)[None, :]
            total = tl.load(level_grads + s[:, None] * dim + d1[None, :], mask=moved, other=0.0, cache_modifier=".cg")
            tl.atomic_add(inner_w + rows[:, None] * dim + d1[None, :], total, mask=moved, sem="relaxed")


@triton.jit(do_not_specialize=["n_pairs", "n_windows", "loss_every", "max_len"])
def _cbow_hs_window(input_w, inner_w, window_target, context, window_starts, paths, codes, lengths, window_loss,
                    n_pairs, n_windows, lr_start, lr_end, loss_every, dim, max_len, MAX_SCORE: tl.constexpr,
                    BLOCK_D: tl.constexpr):
    """Program w trains CBOW window w (cbow_hs_step_cpu's update): h, the mean of its context rows, scored against
    the inner-node rows of its target's Huffman path one after another (node j with label 1 - codes[t, j]; a score
    outside +-MAX_SCORE gives no gradient, the loss still counts it), each row moved as it is scored; dL/dh added
    undivided to every context row. A path's nodes are distinct, so node after node equals the CPU kernel's every
    score first. The loop runs to the path's length (a loop bound, not a shape: nothing here is padded to the
    longest path). Its loss goes to window_loss[w] when w is a multiple of loss_every. Rows are whole
    (BLOCK_D >= dim)."""
    w = tl.program_id(0).to(tl.int64)
    start = tl.load(window_starts + w)
    k = tl.load(window_starts + w + 1) - start
    t = tl.load(window_target + w).to(tl.int64)
    d = tl.arange(0, BLOCK_D)
    columns = d < dim
    h = tl.zeros([BLOCK_D], dtype=tl.float32)
    for i in range(0, k):
        row = tl.load(context + start + i).to(tl.int64)
        h += tl.load(input_w + row * dim + d, mask=columns, other=0.0)
    h = h * (1.0 / tl.maximum(k, 1).to(tl.float32))
    lr = lr_start + (lr_end - lr_start) * (start.to(tl.float32) / n_pairs.to(tl.float32))
    counted = (w % loss_every) == 0
    n_nodes = tl.where(k > 0, tl.load(lengths + t), 0)
    grad_h = tl.zeros([BLOCK_D], dtype=tl.float32)
    loss = 0.0
    for j in range(0, n_nodes):
        node = tl.load(paths + t * max_len + j).to(tl.int64)
        label = 1.0 - tl.load(codes + t * max_len + j).to(tl.float32)
        pointers = inner_w + node * dim + d
        v = tl.load(pointers, mask=columns, other=0.0)
        score = tl.sum(h * v, axis=0)
        # word2vec.c's hs rule (cpu._output_gradient with skip_clipped): no gradient outside +-MAX_SCORE
        sigma = 1.0 / (1.0 + tl.exp(-tl.minimum(tl.maximum(score, -MAX_SCORE), MAX_SCORE)))
        inside = (score <= MAX_SCORE) & (score >= -MAX_SCORE)
        g = tl.where(inside, (label - sigma) * lr, 0.0)
        signed = tl.where(label > 0.5, score, -score)
        pair_loss = tl.maximum(-signed, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(signed)))
        loss += tl.where(counted, pair_loss, 0.0)
        grad_h += g * v
        tl.atomic_add(pointers, g * h, mask=columns, sem="relaxed")
    for i in range(0, k):
        row = tl.load(context + start + i).to(tl.int64)
        tl.atomic_add(input_w + row * dim + d, grad_h, mask=columns, sem="relaxed")
    tl.store(window_loss + w, loss)


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass
class Launch:
    """One kernel launch as a step makes it: the kernel, its grid, its arguments and its compile-time constants
    (num_warps among them on a GPU). compile_check.py compiles these for GPU targets on a machine without one."""

    kernel: triton.runtime.jit.JITFunction
    grid: tuple[int, ...]
    args: tuple
    constants: dict

    def run(self) -> None:
        self.kernel[self.grid](*self.args, **self.constants)


def _check_device(input_w: torch.Tensor) -> bool:
    """Whether the tables are on a GPU; refuses a CPU table outside the interpreter."""
    if input_w.device.type == "cpu" and not INTERPRETED:
        fail("the triton kernel runs on CUDA, or on the CPU in Triton's interpreter with TRITON_INTERPRET=1 set "
             "before Python starts: use --kernel window or --kernel torch on the CPU")
    return input_w.device.type == "cuda"


def _warps(on_gpu: bool) -> dict:
    return {"num_warps": GPU_WARPS} if on_gpu else {}


def _window_loss(input_w: torch.Tensor, batch: WindowBatch) -> torch.Tensor:
    return torch.empty(batch.n_windows, device=input_w.device, dtype=torch.float32)


def _summed_loss(window_loss: torch.Tensor, counted_over: int, loss_every: int) -> float:
    """The loss slots' sum scaled up to the batch, as the CPU kernels scale theirs (one taken every loss_every
    pairs, or windows for CBOW)."""
    counted = max(1, (counted_over + loss_every - 1) // loss_every)
    return float(window_loss.sum(dtype=torch.float64)) * counted_over / counted


def _block_k(batch: WindowBatch) -> int:
    return max(MIN_BLOCK_K, _next_power_of_two(batch.longest))


def sg_ns_launch(input_w: torch.Tensor, output_w: torch.Tensor, batch: WindowBatch, table: torch.Tensor,
                 negatives: int, lr_start: float, lr_end: float, seed: int, loss_every: int, window_loss: torch.Tensor,
                 on_gpu: bool, block_d: int | None = None, group: int = 1) -> Launch:
    """sg_window_step_triton's launch (block sizes included) for its arguments; on_gpu: as compiled for CUDA.
    group: windows per program on the CPU (the interpreter) only. On a GPU a program takes one window: the update
    is the same at any group (windows one after another), and a program looping over windows held 123-128
    registers per thread at 16 contexts against 96 (compile_check; 16 warps an SM against 20)."""
    dim = int(input_w.shape[1])
    block_d = block_d or (GPU_BLOCK_D if on_gpu else _next_power_of_two(dim))
    group = 1 if on_gpu else group
    return Launch(_sg_ns_windows, (triton.cdiv(batch.n_windows, group),), (
        input_w, output_w, batch.window_target, batch.context, batch.window_starts, table, window_loss,
        batch.n_windows, batch.n_pairs, int(table.shape[0]), int(seed), float(lr_start), float(lr_end),
        max(1, int(loss_every)), dim), dict(
        MAX_SCORE=MAX_SCORE, NEGATIVES=int(negatives), GROUP=group, BLOCK_K=_block_k(batch),
        BLOCK_OUT=_next_power_of_two(1 + int(negatives)), BLOCK_D=block_d, **_warps(on_gpu)))


def cbow_ns_launch(input_w: torch.Tensor, output_w: torch.Tensor, batch: WindowBatch, table: torch.Tensor,
                   negatives: int, lr_start: float, lr_end: float, seed: int, loss_every: int,
                   window_loss: torch.Tensor, on_gpu: bool) -> Launch:
    """cbow_step_triton's launch for its arguments."""
    dim = int(input_w.shape[1])
    return Launch(_cbow_ns_window, (batch.n_windows,), (
        input_w, output_w, batch.window_target, batch.context, batch.window_starts, table, window_loss,
        batch.n_pairs, batch.n_windows, int(table.shape[0]), int(seed), float(lr_start), float(lr_end),
        max(1, int(loss_every)), dim), dict(
        MAX_SCORE=MAX_SCORE, NEGATIVES=int(negatives), BLOCK_D=_next_power_of_two(dim), **_warps(on_gpu)))


def sg_hs_block_d(block_k: int, block_path: int) -> int:
    """sg hs on a GPU: columns per chunk so that a window's product block (contexts x path x columns) holds
    GPU_PRODUCT_VALUES, the ns kernel's 16 x 8 x 32: a longer path, fewer columns, never below MIN_GPU_BLOCK_D."""
    block_d = max(MIN_GPU_BLOCK_D, min(GPU_BLOCK_D, GPU_PRODUCT_VALUES // (block_k * block_path)))
    return 1 << (block_d.bit_length() - 1)


def sg_hs_launch(input_w: torch.Tensor, inner_w: torch.Tensor, batch: WindowBatch, paths: torch.Tensor,
                 codes: torch.Tensor, lengths: torch.Tensor, lr_start: float, lr_end: float, loss_every: int,
                 window_loss: torch.Tensor, on_gpu: bool, block_d: int | None = None, group: int = 1) -> Launch:
    """sg_window_hs_step_triton's launch (block sizes included) for its arguments; on_gpu: as compiled for CUDA."""
    dim, max_len = int(input_w.shape[1]), int(paths.shape[1])
    block_k, block_path = _block_k(batch), _next_power_of_two(max(1, max_len))
    if not block_d and on_gpu:
        block_d = sg_hs_block_d(block_k, block_path)
    block_d = block_d or _next_power_of_two(dim)
    programs = triton.cdiv(batch.n_windows, group)
    if group > 1:  # the program's sums for the top levels' rows (see _sg_hs_windows)
        level_grads = torch.zeros(programs << SHARED_LEVELS, dim, device=input_w.device, dtype=torch.float32)
        level_rows = torch.full((programs << SHARED_LEVELS,), -1, device=input_w.device, dtype=torch.int64)
    else:  # not read
        level_grads, level_rows = window_loss, batch.window_starts
    return Launch(_sg_hs_windows, (programs,), (
        input_w, inner_w, batch.window_target, batch.context, batch.window_starts, paths, codes, lengths, window_loss,
        level_grads, level_rows, batch.n_windows, batch.n_pairs, float(lr_start), float(lr_end),
        max(1, int(loss_every)), dim, max_len),
        dict(MAX_SCORE=MAX_SCORE, GROUP=group, BLOCK_K=block_k, BLOCK_PATH=block_path, BLOCK_D=block_d,
             SHARED_LEVELS=SHARED_LEVELS, **_warps(on_gpu)))


def cbow_hs_launch(input_w: torch.Tensor, inner_w: torch.Tensor, batch: WindowBatch, paths: torch.Tensor,
                   codes: torch.Tensor, lengths: torch.Tensor, lr_start: float, lr_end: float, loss_every: int,
                   window_loss: torch.Tensor, on_gpu: bool) -> Launch:
    """cbow_hs_step_triton's launch for its arguments."""
    dim = int(input_w.shape[1])
    return Launch(_cbow_hs_window, (batch.n_windows,), (
        input_w, inner_w, batch.window_target, batch.context, batch.window_starts, paths, codes, lengths, window_loss,
        batch.n_pairs, batch.n_windows, float(lr_start), float(lr_end), max(1, int(loss_every)), dim,
        int(paths.shape[1])), dict(MAX_SCORE=MAX_SCORE, BLOCK_D=_next_power_of_two(dim), **_warps(on_gpu)))


def sg_window_step_triton(input_w: torch.Tensor, output_w: torch.Tensor, batch: WindowBatch, table: torch.Tensor,
                          negatives: int, lr_start: float, lr_end: float, seed: int, loss_every: int = 1,
                          block_d: int | None = None, group: int = 1) -> float:
    """Skip-gram with negatives shared by a window (sg_window_step_cpu's update) in one kernel launch; the summed
    loss, taken on pairs 0, loss_every, ... and scaled up to the batch as the CPU kernel does.

    Tables, table and batch (a WindowBatch) on one device: CUDA, or the CPU under TRITON_INTERPRET=1 (Triton's
    interpreter). block_d: columns per chunk (default: GPU_BLOCK_D on CUDA, the whole row under the interpreter,
    whose cost is per operation). group: windows per program (a power of two), which read the tables before any of
    them writes; 1, the default, is the CPU kernel's update.
    """
    if batch.n_pairs == 0 or batch.n_windows <= 0:
        return 0.0
    window_loss = _window_loss(input_w, batch)
    sg_ns_launch(input_w, output_w, batch, table, negatives, lr_start, lr_end, seed, loss_every, window_loss,
                 _check_device(input_w), block_d, group).run()
    return _summed_loss(window_loss, batch.n_pairs, max(1, int(loss_every)))


def cbow_step_triton(input_w: torch.Tensor, output_w: torch.Tensor, batch: WindowBatch, table: torch.Tensor,
                     negatives: int, lr_start: float, lr_end: float, seed: int, loss_every: int = 1,
                     group: int = 1) -> float:
    """CBOW with negative sampling (cbow_step_cpu's update) in one kernel launch, a program per window; the loss
    summed over windows, taken on windows 0, loss_every, ... and scaled up as the CPU kernel does. Devices and
    batch as sg_window_step_triton; group is sg's only (a CBOW window's rows are one vector each)."""
    if batch.n_pairs == 0 or batch.n_windows <= 0:
        return 0.0
    window_loss = _window_loss(input_w, batch)
    cbow_ns_launch(input_w, output_w, batch, table, negatives, lr_start, lr_end, seed, loss_every, window_loss,
                   _check_device(input_w)).run()
    return _summed_loss(window_loss, batch.n_windows, max(1, int(loss_every)))


def sg_window_hs_step_triton(input_w: torch.Tensor, inner_w: torch.Tensor, batch: WindowBatch, paths: torch.Tensor,
                             codes: torch.Tensor, lengths: torch.Tensor, lr_start: float, lr_end: float,
                             loss_every: int = 1, block_d: int | None = None, group: int = 1) -> float:
    """Skip-gram with hierarchical softmax, the target's Huffman path shared across its window
    (sg_window_hs_step_cpu's update), in one kernel launch; the summed loss, taken on pairs 0, loss_every, ... and
    scaled up to the batch as the CPU kernel does. paths, codes, lengths: the HuffmanTree's arrays on the tables'
    device (HuffmanTree.tensors). Devices, batch, block_d and group as sg_window_step_triton."""
    if batch.n_pairs == 0 or batch.n_windows <= 0:
        return 0.0
    window_loss = _window_loss(input_w, batch)
    sg_hs_launch(input_w, inner_w, batch, paths, codes, lengths, lr_start, lr_end, loss_every, window_loss,
                 _check_device(input_w), block_d, group).run()
    return _summed_loss(window_loss, batch.n_pairs, max(1, int(loss_every)))


def cbow_hs_step_triton(input_w: torch.Tensor, inner_w: torch.Tensor, batch: WindowBatch, paths: torch.Tensor,
                        codes: torch.Tensor, lengths: torch.Tensor, lr_start: float, lr_end: float,
                        loss_every: int = 1, group: int = 1) -> float:
    """CBOW with hierarchical softmax (cbow_hs_step_cpu's update) in one kernel launch, a program per window; the
    loss summed over windows, taken on windows 0, loss_every, ... and scaled up as the CPU kernel does. The tree's
    arrays as sg_window_hs_step_triton; group is sg's only."""
    if batch.n_pairs == 0 or batch.n_windows <= 0:
        return 0.0
    window_loss = _window_loss(input_w, batch)
    cbow_hs_launch(input_w, inner_w, batch, paths, codes, lengths, lr_start, lr_end, loss_every, window_loss,
                   _check_device(input_w)).run()
    return _summed_loss(window_loss, batch.n_windows, max(1, int(loss_every)))
