"""A first run that checks its Triton step before training with it.

Before the first batch, `first_run` runs the Triton step that training is about to use on a small check batch (a
few hundred windows drawn from the vocabulary's counts, so frequent words repeat as in real batches), on the
model's own tables, and the torch step (torch_steps.py, the CUDA fallback) on CPU copies of the rows that batch
touches. Both draw the same negatives from the alias table: the Triton ns kernels inside the kernel with
unigram_draw (batch seed, window index), the torch step through window_negatives, the same integer draw (the check
draws them once and hands them to the torch step, whose CPU copies number the rows their own way). The torch step
runs a window per micro-batch, the CPU kernels' window-by-window update, which the Triton kernels make (sg ns at any --triton-group). sg hs at --triton-group > 1 adds the top
levels' rows once per program, an update no torch step makes: it is compared with `grouped_sg_hs`, that update in
float64 numpy. The rows are put back as they were afterwards, so
training starts from the tables it would have started from.

The touched rows are first set to small random values (uniform +-0.5/dim, word2vec.c's input range), so that
every row's update is first order in the learning rate. On a GPU the Triton programs run concurrently and read
a shared row before or after another window's add, which changes the update by terms second order in the
learning rate, well inside the tolerance (a hundredth of the largest move); a broken kernel (a wrong index, sign, mask or a lost add) moves rows
by first-order amounts that the torch step does not.

The verdict is one line. A compile error or a difference past the tolerance: with `--kernel auto` training goes on
with the torch step (and says so); with `--kernel triton` asked for by name, the run stops with that line. A step
that wrote rows outside the check batch's (the tables' sums changed) stops the run either way: the tables are no
longer the ones training would start from.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from w2v.batch import WindowBatch
from w2v.common import fail
from w2v.kernels import steps
from w2v.kernels.torch_steps import (cbow_hs_step_torch, cbow_step_torch, sg_window_hs_step_torch,
                                     sg_window_step_torch, window_negatives)

CHECK_WINDOWS = 256  # windows in the check batch
LONGEST = 10  # contexts in its longest window (--window 5's)
CHECK_SEED = 2**61 + 30  # the check batch's seed (the negatives' draw)
LEARNING_RATE = 0.025
RELATIVE_TOLERANCE = 1e-2  # of the largest move of a row's value
ABSOLUTE_TOLERANCE = 1e-7
MODES = ("auto", "on", "off")


@dataclass
class Verdict:
    ok: bool
    line: str  # one line: what was compared and found
    error: float = 0.0  # largest difference of a moved value between the two steps
    moved: float = 0.0  # largest move of a value by the torch step
    intact: bool = True  # the model's tables, after the check, are as they were before it


def _fingerprint(*tables: torch.Tensor) -> list[float]:
    """Sums and sums of squares (float64) of the tables: a write outside the check's rows changes them."""
    return [float(x) for t in tables for x in (t.sum(dtype=torch.float64), t.double().square().sum())]


def wanted(mode: str, kernel: str, device: torch.device) -> bool:
    """Whether a run checks its step: mode auto checks the triton step on CUDA; on checks it on any device it runs
    on (the CPU under Triton's interpreter, for tests); off never."""
    if mode not in MODES:
        fail(f"--self-check must be {', '.join(MODES)}, not {mode!r}")
    return kernel == "triton" and (mode == "on" or (mode == "auto" and device.type == "cuda"))


def check_batch(counts: np.ndarray, n_windows: int = CHECK_WINDOWS, seed: int = 7) -> WindowBatch:
    """A batch of n_windows windows of 1..LONGEST contexts, targets and contexts drawn by the words' counts."""
    rng = np.random.default_rng(seed)
    share = np.asarray(counts, dtype=np.float64)
    share = share / share.sum()
    sizes = rng.integers(1, LONGEST + 1, n_windows)
    sizes[0] = LONGEST
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    return WindowBatch(torch.from_numpy(rng.choice(len(share), int(starts[-1]), p=share).astype(np.int32)),
                       torch.from_numpy(rng.choice(len(share), n_windows, p=share).astype(np.int32)),
                       torch.from_numpy(starts), int(sizes.max()))


class _Tables(nn.Module):
    """CPU copies of the touched rows, as the torch steps read them (input and output or inner)."""

    def __init__(self, input_rows: torch.Tensor, output_rows: torch.Tensor, hs: bool):
        super().__init__()
        self.input = nn.Embedding.from_pretrained(input_rows.clone(), freeze=False)
        setattr(self, "inner" if hs else "output", nn.Embedding.from_pretrained(output_rows.clone(), freeze=False))


class _CompactPaths:
    """The Huffman paths of the check batch's targets (target i of the compact ids), their nodes renumbered to the
    compact inner rows: what the torch hs steps read through HuffmanTree.tensors."""

    def __init__(self, paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray):
        self.arrays = torch.from_numpy(paths), torch.from_numpy(codes), torch.from_numpy(lengths.astype(np.int64))

    def tensors(self, device):
        return tuple(a.to(device) for a in self.arrays)


def grouped_sg_hs(input_w: torch.Tensor, inner_w: torch.Tensor, context: np.ndarray, window_starts: np.ndarray,
                  paths: np.ndarray, codes: np.ndarray, lengths: np.ndarray, lr: float, group: int) -> None:
    """The sg hs update of the Triton kernel at --triton-group `group` > 1, in place, in float64 numpy: windows one
    after another (window w's path: paths[w, :lengths[w]], codes likewise), each from the rows as they are when it
    starts, except the nodes of the top SHARED_LEVELS levels, whose gradients are summed over the group's windows
    and added after its last one (triton_steps._sg_hs_windows)."""
    from w2v.kernels import MAX_SCORE
    from w2v.kernels.triton_steps import SHARED_LEVELS

    inputs, inner = input_w.numpy().astype(np.float64), inner_w.numpy().astype(np.float64)
    n_windows = len(window_starts) - 1
    for first in range(0, n_windows, group):
        top = np.zeros_like(inner)
        for w in range(first, min(n_windows, first + group)):
            rows, nodes = context[window_starts[w]:window_starts[w + 1]], paths[w, :lengths[w]]
            if len(rows) == 0:
                continue
            scores = inputs[rows] @ inner[nodes].T
            labels = 1.0 - codes[w, :lengths[w]]
            g = np.where(np.abs(scores) <= MAX_SCORE, (labels - 1.0 / (1.0 + np.exp(-scores))) * lr, 0.0)
            grad_in, grad_nodes = g @ inner[nodes], g.T @ inputs[rows]
            np.add.at(inputs, rows, grad_in)
            inner[nodes[SHARED_LEVELS:]] += grad_nodes[SHARED_LEVELS:]
            top[nodes[:SHARED_LEVELS]] += grad_nodes[:SHARED_LEVELS]
        inner += top
    input_w.copy_(torch.from_numpy(inputs))
    inner_w.copy_(torch.from_numpy(inner))


def compare(step, model_name: str, loss: str, model: nn.Module, cfg, tree, unigram: torch.Tensor | None,
            counts: np.ndarray, n_windows: int = CHECK_WINDOWS) -> Verdict:
    """Run `step` (the Triton step, built on `model`) and the torch step on one check batch from equal rows; the
    model's touched rows are restored afterwards. Raises what the Triton step raises (a compile error)."""
    hs = loss == "hs"
    input_w = model.input.weight.data
    output_w = (model.inner if hs else model.output).weight.data
    device, dim = input_w.device, int(input_w.shape[1])
    batch = check_batch(counts, n_windows)
    context, target = batch.context.numpy().astype(np.int64), batch.window_target.numpy().astype(np.int64)
    in_rows = np.unique(context)
    if hs:
        paths, codes, lengths = tree.paths[target], tree.codes[target], tree.lengths[target]
        on_path = np.arange(paths.shape[1])[None, :] < lengths[:, None]
        out_rows = np.unique(paths[on_path])
    else:
        negatives = window_negatives(CHECK_SEED, unigram, n_windows, cfg.negatives).cpu().numpy()
        out_rows = np.unique(np.concatenate([target, negatives.ravel()]))
    in_index, out_index = torch.from_numpy(in_rows).to(device), torch.from_numpy(out_rows).to(device)
    saved_in, saved_out = input_w[in_index].clone(), output_w[out_index].clone()
    before = _fingerprint(input_w, output_w)
    rng = np.random.default_rng(11)
    start_in = torch.from_numpy(rng.uniform(-0.5 / dim, 0.5 / dim, (len(in_rows), dim)).astype(np.float32))
    start_out = torch.from_numpy(rng.uniform(-0.5 / dim, 0.5 / dim, (len(out_rows), dim)).astype(np.float32))

    # the torch step on CPU copies, a window per micro-batch, the Triton kernels' negatives handed to it
    tables = _Tables(start_in, start_out, hs)
    compact_context = torch.from_numpy(np.searchsorted(in_rows, context).astype(np.int64))
    one_window = 1  # micro-batches of a window each (window_chunks cuts at window edges only)
    group = int(getattr(cfg, "triton_group", 1))
    if hs:
        compact_paths = np.where(on_path, np.searchsorted(out_rows, paths), 0).astype(np.int32)
        if model_name == "sg" and group > 1:  # the grouped update, which no torch step makes
            grouped_sg_hs(tables.input.weight.data, tables.inner.weight.data, compact_context.numpy(),
                          batch.window_starts.numpy(), compact_paths, codes, lengths, LEARNING_RATE, group)
        else:
            tree_rows = _CompactPaths(compact_paths, codes, lengths)
            torch_step = sg_window_hs_step_torch if model_name == "sg" else cbow_hs_step_torch
            torch_step(tables, torch.arange(n_windows), compact_context, batch.window_starts.long(), tree_rows,
                       LEARNING_RATE, LEARNING_RATE, one_window)
    else:
        compact_target = torch.from_numpy(np.searchsorted(out_rows, target))
        compact_negatives = torch.from_numpy(np.searchsorted(out_rows, negatives))
        torch_step = sg_window_step_torch if model_name == "sg" else cbow_step_torch
        torch_step(tables, compact_target, compact_context, batch.window_starts.long(), compact_negatives,
                   LEARNING_RATE, LEARNING_RATE, one_window)
    want_in = tables.input.weight.data
    want_out = (tables.inner if hs else tables.output).weight.data

    # the Triton step on the model's own tables, its rows put back afterwards
    try:
        input_w[in_index] = start_in.to(device)
        output_w[out_index] = start_out.to(device)
        step(batch.to(device), LEARNING_RATE, LEARNING_RATE, CHECK_SEED)
        got_in, got_out = input_w[in_index].cpu(), output_w[out_index].cpu()
    finally:
        input_w[in_index] = saved_in
        output_w[out_index] = saved_out
    intact = _fingerprint(input_w, output_w) == before
    moved = max(float((want_in - start_in).abs().max()), float((want_out - start_out).abs().max()))
    error = max(float((got_in - want_in).abs().max()), float((got_out - want_out).abs().max()))
    finite = bool(torch.isfinite(got_in).all() and torch.isfinite(got_out).all())
    ok = finite and error <= RELATIVE_TOLERANCE * moved + ABSOLUTE_TOLERANCE
    what = (f"{n_windows} windows, {batch.n_pairs} pairs: largest difference {error:.3g} "
            f"against a largest move of {moved:.3g}")
    if not intact:
        what += "; it wrote rows outside the check batch's"
    return Verdict(ok and intact, what if ok or finite else what + " (not finite)", error, moved, intact)


def first_run(cfg, kernel: str, model: nn.Module, step, tree, unigram: torch.Tensor | None, counts: np.ndarray,
              device: torch.device):
    """(kernel, step) to train with: the Triton step once it has trained a check batch as the torch step does,
    else the torch step (--kernel auto) or one line and a stop (--kernel triton asked for by name)."""
    if not wanted(getattr(cfg, "self_check", "auto"), kernel, device):
        return kernel, step
    name = f"the triton {cfg.model} {cfg.loss} step (--triton-group {getattr(cfg, 'triton_group', 1)})"
    verdict = Verdict(False, "")
    try:
        verdict = compare(step, cfg.model, cfg.loss, model, cfg, tree, unigram, counts)
        problem = None if verdict.ok else f"differs from the torch step on {verdict.line}"
    except Exception as error:  # noqa: BLE001 - a compile error, a launch failure: the step cannot train
        message = str(error).strip().splitlines()
        problem = f"failed: {type(error).__name__}: {message[-1][:200] if message else ''}"
    if problem is None:
        print(f"self-check: {name} equals the torch step on {verdict.line}")
        return kernel, step
    if not verdict.intact:  # the tables are no longer the ones training would start from
        fail(f"self-check: {name} {problem}; run again with --kernel torch")
    if cfg.kernel == "triton":
        fail(f"self-check: {name} {problem}; --kernel torch trains without it")
    print(f"self-check: {name} {problem}: training with --kernel torch instead")
    return "torch", steps.make_step(cfg.model, cfg.loss, "torch", model, cfg, tree, unigram)
