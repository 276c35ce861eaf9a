"""The torch training steps: the GPU's (and, with train.py --kernel torch, the same update on the CPU).

Each step trains one loader batch in micro-batches of about `micro_batch` pairs cut at window edges
(`window_chunks`): in a micro-batch every window reads the tables as they were at its start, its gradients come
from batched products, and the summed gradients are added once (index_add_), so a row met several times in a
micro-batch moves by the sum of its stale gradients; smaller micro-batches stay closer to word2vec.c. Same roles
and update as the numba kernels (cpu.py):
- `sg_window_step_torch`, `sg_window_hs_step_torch`: skip-gram, a window's target owning the output block (its
  output row and the window's negatives, or its Huffman path), its contexts the inputs;
- `cbow_step_torch`, `cbow_hs_step_torch`: CBOW, the mean h of a window's context inputs predicting its target,
  dL/dh added undivided to every context row, as word2vec.c does.
The negatives come from the caller, one set per window (`window_negatives`: the alias-table draws of the numba and
Triton kernels, from the batch seed and the window's index, so a resumed run draws the same). One gradient rule,
`score_gradient`, serves every step.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from w2v.huffman import HuffmanTree
from w2v.kernels import MAX_SCORE

def score_gradient(scores: torch.Tensor, labels: torch.Tensor, used: torch.Tensor, lr: float | torch.Tensor,
                   skip_saturated: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed loss in float64, g): every step's loss and gradient coefficient g = (label - sigma(score)) * lr of
    its block of scores; slots not `used` (padding, a negative equal to the target) get neither. Outside
    +-MAX_SCORE, word2vec.c's rule: negative sampling takes sigma as exactly 0 or 1, hierarchical softmax
    (skip_saturated) gives the node no gradient; the loss counts the true score."""
    signed = torch.where(labels > 0, scores, -scores)
    loss = torch.where(used, nn.functional.softplus(-signed), 0.0).sum(dtype=torch.float64)
    sigma = torch.sigmoid(scores)
    if skip_saturated:
        used = used & (scores.abs() < MAX_SCORE)
    else:
        sigma = torch.where(scores > MAX_SCORE, 1.0, torch.where(scores < -MAX_SCORE, 0.0, sigma))
    return loss, torch.where(used, (labels - sigma) * lr, 0.0)


def negative_sampling_block(t: torch.Tensor, negatives: torch.Tensor, dtype: torch.dtype
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(output rows [W, 1 + K], labels, live) of negative sampling for windows with targets t [W] and negatives
    [W, K]: the target's row (label 1), then its negatives (label 0; one equal to the target is not live)."""
    out_ids = torch.cat([t[:, None], negatives.long()], dim=1)
    labels = torch.zeros(out_ids.shape, device=t.device, dtype=dtype)
    labels[:, 0] = 1.0
    live = out_ids != t[:, None]
    live[:, 0] = True
    return out_ids, labels, live


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


def _cbow_torch(input_w: torch.Tensor, output_w: torch.Tensor, window_target: torch.Tensor, context: torch.Tensor,
                window_starts: torch.Tensor, micro_batch: int, output_block, lr_start: float, lr_end: float,
                skip_saturated: bool) -> float:
    """The CBOW update of both torch steps; output_block(first, end, t) gives the micro-batch's (output rows [W, R]
    long, labels [W, R], live [W, R] bool) for its windows first..end and their targets t, or None when no window
    has an output row.

    h, the mean of a window's context rows, is scored against its output rows; dL/dh is added undivided to every
    context row, as word2vec.c does. In a micro-batch every window reads the tables as they were at its start and
    the summed gradients are added once (index_add_); the learning rate is the micro-batch's, by its middle pair.
    Returns the loss summed over windows.
    """
    n_pairs = context.shape[0]
    total_loss = torch.zeros((), device=input_w.device, dtype=torch.float64)
    window_starts = window_starts.to(input_w.device)
    window_target = window_target.to(input_w.device)
    for first, end in window_chunks(window_starts, micro_batch):
        starts = window_starts[first:end + 1]
        p0, p1 = int(starts[0]), int(starts[-1])
        lr = lr_start + (lr_end - lr_start) * ((p0 + p1) / 2 / max(1, n_pairs))
        c = context[p0:p1].long()
        t = window_target[first:end].long()
        block = output_block(first, end, t)
        if block is None:
            continue
        out_ids, labels, live = block
        h, window_of_pair, _ = _window_means(input_w, c, starts - p0)
        v = output_w[out_ids]
        scores = torch.bmm(v, h.unsqueeze(2)).squeeze(2)
        loss, g = score_gradient(scores, labels, live, lr, skip_saturated)
        total_loss += loss
        grad_h = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        output_w.index_add_(0, out_ids.reshape(-1), (g.unsqueeze(2) * h.unsqueeze(1)).reshape(-1, h.shape[1]))
        input_w.index_add_(0, c, grad_h[window_of_pair])
    return float(total_loss)


def cbow_step_torch(model: nn.Module, window_target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                    negatives: torch.Tensor, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched CBOW negative-sampling step (for CUDA); returns the summed loss (over windows).

    negatives: [W, K], one set per window. Micro-batches of about micro_batch pairs, cut at window edges
    (`window_chunks`). A negative equal to its target is skipped, as in cbow_step_cpu.
    """
    input_w, output_w = model.input.weight.data, model.output.weight.data
    negatives = negatives.to(input_w.device)

    def output_block(first: int, end: int, t: torch.Tensor):
        return negative_sampling_block(t, negatives[first:end], input_w.dtype)

    return _cbow_torch(input_w, output_w, window_target, context, window_starts, micro_batch, output_block, lr_start,
                       lr_end, skip_saturated=False)


def cbow_hs_step_torch(model: nn.Module, window_target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                       tree: HuffmanTree, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Closed-form batched CBOW hierarchical-softmax step (for CUDA); returns the summed loss (over windows).

    The target's path is gathered padded to the micro-batch's longest and masked; saturated nodes are skipped
    as in cbow_hs_step_cpu; micro-batches as in cbow_step_torch.
    """
    input_w, inner_w = model.input.weight.data, model.inner.weight.data
    paths, codes, lengths = tree.tensors(input_w.device)

    def output_block(first: int, end: int, t: torch.Tensor):
        path_len = lengths[t]
        width = int(path_len.max())
        if width == 0:
            return None
        nodes = paths[t, :width].long()
        labels = 1.0 - codes[t, :width].to(input_w.dtype)
        return nodes, labels, torch.arange(width, device=t.device) < path_len[:, None]

    return _cbow_torch(input_w, inner_w, window_target, context, window_starts, micro_batch, output_block, lr_start,
                       lr_end, skip_saturated=True)


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


def _sg_window_torch(input_w: torch.Tensor, output_w: torch.Tensor, window_target: torch.Tensor, context: torch.Tensor,
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
    n_pairs = context.shape[0]
    window_target = window_target.to(device, non_blocking=True)
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
        t = window_target[first:end].long()
        out_ids, labels, live = output_block(first, end, t, width)  # [W, R]
        lr = (lr_start + (lr_end - lr_start) * (window_first.to(torch.float64) / max(1, n_pairs))).to(input_w.dtype)
        u = input_w[c]  # [W, L, dim]
        v = output_w[out_ids]  # [W, R, dim]
        scores = torch.bmm(u, v.transpose(1, 2))  # [W, L, R]
        used = real[:, :, None] & live[:, None, :]
        loss, g = score_gradient(scores, labels[:, None, :], used, lr[:, None, None], skip_saturated)
        total_loss += loss
        grad_u = torch.bmm(g, v)  # [W, L, dim]: each context's own, from the outputs before they move
        grad_v = torch.bmm(g.transpose(1, 2), u)  # [W, R, dim]: each output row's, summed over the window
        input_w.index_add_(0, c.reshape(-1), grad_u.reshape(-1, dim))
        output_w.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, dim))
    return float(total_loss)


def sg_window_step_torch(model: nn.Module, window_target: torch.Tensor, context: torch.Tensor, window_starts: torch.Tensor,
                         negatives: torch.Tensor, lr_start: float, lr_end: float, micro_batch: int = 0) -> float:
    """Skip-gram with negatives shared by a window, batched for CUDA (sg_window_step_cpu's update); the summed loss.

    negatives: [W, K], one set per window (the caller draws them). Window w's contexts are scored against its
    target's output row (label 1) and its K negatives (label 0; one equal to the target skipped). Micro-batches of
    about micro_batch pairs cut at window edges (`window_chunks`), as cbow_step_torch.
    """
    input_w, output_w = model.input.weight.data, model.output.weight.data
    if context.shape[0] == 0:
        return 0.0
    negatives = negatives.to(input_w.device)

    def output_block(first: int, end: int, t: torch.Tensor, width: int):
        return negative_sampling_block(t, negatives[first:end], input_w.dtype)

    plan = _window_plan(window_starts, micro_batch)
    return _sg_window_torch(input_w, output_w, window_target, context, window_starts, plan, output_block, lr_start, lr_end,
                            skip_saturated=False)


def sg_window_hs_step_torch(model: nn.Module, window_target: torch.Tensor, context: torch.Tensor,
                            window_starts: torch.Tensor, tree: HuffmanTree, lr_start: float, lr_end: float,
                            micro_batch: int = 0) -> float:
    """Skip-gram hierarchical softmax with the target's path shared by its window, batched for CUDA
    (sg_window_hs_step_cpu's update); the summed loss. Paths padded to the micro-batch's longest and masked."""
    input_w, inner_w = model.input.weight.data, model.inner.weight.data
    if context.shape[0] == 0:
        return 0.0
    paths, codes, lengths = tree.tensors(input_w.device)
    path_len = lengths[window_target.to(input_w.device).long()]

    def output_block(first: int, end: int, t: torch.Tensor, width: int):
        nodes = paths[t, :width].long()
        labels = 1.0 - codes[t, :width].to(input_w.dtype)
        live = torch.arange(width, device=t.device) < path_len[first:end, None]
        return nodes, labels, live

    plan = _window_plan(window_starts, micro_batch, path_len)
    return _sg_window_torch(input_w, inner_w, window_target, context, window_starts, plan, output_block, lr_start, lr_end,
                            skip_saturated=True)



def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 that holds it (torch has no full uint64 arithmetic)."""
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


# splitmix64's constants (cpu.counter_bits) as int64 patterns: int64 products and sums wrap as uint64's do.
_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX_1, _MIX_2 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)
_LOW = 0xFFFFFFFF


def _shift_right(z: torch.Tensor, bits: int) -> torch.Tensor:
    """uint64's z >> bits on int64 patterns: torch shifts int64 arithmetically, so the sign copies are masked off."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def counter_bits(seed: int, counters: torch.Tensor) -> torch.Tensor:
    """cpu.counter_bits of each of `counters` (int64), as int64 patterns of the same 64 bits."""
    z = _signed(seed) + (counters + 1) * _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MIX_1
    z = (z ^ _shift_right(z, 27)) * _MIX_2
    return z ^ _shift_right(z, 31)


def unigram_draws(table: torch.Tensor, seed: int, counters: torch.Tensor) -> torch.Tensor:
    """cpu.unigram_draw of each of `counters` from the alias table `table` (int64 [V], unigram_table.py), on the
    table's device: the same words as the numba and Triton kernels for the same seed and counters. (hi32 * V fits
    int64: V < 2^31.)"""
    z = counter_bits(seed, counters.to(table.device, torch.int64))
    column = (_shift_right(z, 32) * table.shape[0]) >> 32
    entry = table[column]
    return torch.where((z & _LOW) < (entry & _LOW), column, entry >> 32)


def window_negatives(seed: int, table: torch.Tensor, n_windows: int, negatives: int) -> torch.Tensor:
    """[n_windows, negatives] int64 words drawn from the alias table, window w's negative j by counter
    w * negatives + j from the batch seed: the torch ns steps' negatives (skip-gram and CBOW), the same ones the
    numba and Triton kernels draw, so a resumed run draws the same too."""
    counters = torch.arange(n_windows * negatives, device=table.device, dtype=torch.int64)
    return unigram_draws(table, seed, counters).reshape(n_windows, negatives)
