"""The Triton kernel's checks that run in Triton's interpreter: in a process of their own, started by
test_triton_kernel.py with TRITON_INTERPRET=1 (Triton reads it when first imported, so it must be set before this
process imports anything). Each check prints one JSON line of what it found; the test asserts on it.

    TRITON_INTERPRET=1 python tests/triton_checks.py sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py cbow_sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py sg_hs_sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py cbow_hs_sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py train DATA_DIR [train.py flags]
    TRITON_INTERPRET=1 python tests/triton_checks.py lean_batch DATA_DIR sg|cbow BATCH_SIZE
    TRITON_INTERPRET=1 python tests/triton_checks.py negative_draws
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1 (test_triton_kernel.py does)"

from w2v.batch import WindowBatch  # noqa: E402 (torch only: Triton is imported later, by each check)


def window_batch(target, context, window_starts, device):
    """The kernels' batch (batch.WindowBatch) from a target per pair and the window offsets."""
    import torch

    from w2v.batch import WindowBatch

    host_starts = window_starts.cpu()
    return WindowBatch(context=context.to(device, dtype=torch.int32),
                       window_target=target[host_starts[:-1].long()].to(device, dtype=torch.int32),
                       window_starts=host_starts.to(device, dtype=torch.int32),
                       longest=int((host_starts[1:] - host_starts[:-1]).max()) if len(host_starts) > 1 else 0)


def sample_windows(data_dir: str) -> dict:
    """One batch of real windows (the shipped sample through prep and convert_to_int, drawn as pairs_dataset.py
    draws them) through the Triton kernel and through sg_window_step_cpu on one numba thread, from equal tables."""
    import numba
    import numpy as np
    import torch

    from helpers import batch_window_starts, drawn_windows
    from w2v.common import load_vocab
    from w2v.kernels.cpu import sg_window_step_cpu
    from w2v.kernels.triton_steps import sg_window_step_triton
    from unigram_table import build_alias

    numba.set_num_threads(1)
    counts = load_vocab(Path(data_dir), with_words=False)[1]
    target, context, edges = drawn_windows(Path(data_dir), counts, seed=3, sample=1e-3)
    n_pairs = int(edges[96])  # 96 windows; the batch edge falls inside a window: it is cut as the loader cuts
    window_starts = batch_window_starts(edges, 0, n_pairs + 3)
    target, context = target[:n_pairs + 3].copy(), context[:n_pairs + 3].copy()
    table = build_alias(counts, 0.75)
    rng = np.random.default_rng(0)
    dim, negatives, seed = 24, 5, 2**62 + 12345
    input_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    cpu_in, cpu_out = input_w.copy(), output_w.copy()
    cpu_loss = sg_window_step_cpu(cpu_in, cpu_out, target[window_starts[:-1]], context, window_starts, table,
                                  negatives, 0.3, 0.1, seed, 1, 3)
    gpu_in, gpu_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    # block_d 16: two masked chunks of the 24 columns, as dim 100 and 300 are chunked on a GPU
    batch = WindowBatch.of_pairs(target, context, window_starts)
    triton_loss = sg_window_step_triton(gpu_in, gpu_out, batch, torch.from_numpy(table), negatives, 0.3, 0.1,
                                        seed, 3, block_d=16)
    # 8 windows a program: one after another, the CPU kernel's update too
    group_in, group_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    sg_window_step_triton(group_in, group_out, batch, torch.from_numpy(table), negatives, 0.3, 0.1, seed, 3,
                          block_d=16, group=8)
    sizes = np.diff(window_starts)
    return {"windows": len(sizes), "longest": int(sizes.max()), "pairs": len(target),
            "rows_moved": int((np.abs(cpu_in - input_w).max(axis=1) > 0).sum()),
            "input_error": float(np.abs(gpu_in.numpy() - cpu_in).max()),
            "output_error": float(np.abs(gpu_out.numpy() - cpu_out).max()),
            "group_input_error": float(np.abs(group_in.numpy() - cpu_in).max()),
            "group_output_error": float(np.abs(group_out.numpy() - cpu_out).max()),
            "largest_move": float(max(np.abs(cpu_in - input_w).max(), np.abs(cpu_out - output_w).max())),
            "cpu_loss": cpu_loss, "triton_loss": triton_loss}


def cbow_sample_windows(data_dir: str) -> dict:
    """The CBOW kernel against cbow_step_cpu on one numba thread, on real windows of the sample, as above."""
    import numba
    import numpy as np
    import torch

    from helpers import batch_window_starts, drawn_windows
    from w2v.common import load_vocab
    from w2v.kernels.cpu import cbow_step_cpu
    from w2v.kernels.triton_steps import cbow_step_triton
    from unigram_table import build_alias

    numba.set_num_threads(1)
    counts = load_vocab(Path(data_dir), with_words=False)[1]
    target, context, edges = drawn_windows(Path(data_dir), counts, seed=4, sample=1e-3)
    n_pairs = int(edges[40])
    window_starts = batch_window_starts(edges, 0, n_pairs)
    target, context = target[:n_pairs].copy(), context[:n_pairs].copy()
    table = build_alias(counts, 0.75)
    rng = np.random.default_rng(1)
    dim, negatives, seed = 40, 5, 2**62 + 777  # dim 40: a 64-column row, masked
    input_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    cpu_in, cpu_out = input_w.copy(), output_w.copy()
    cpu_loss = cbow_step_cpu(cpu_in, cpu_out, target[window_starts[:-1]], context, window_starts, table, negatives,
                             0.3, 0.1, seed, 1, 3)
    gpu_in, gpu_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    batch = WindowBatch.of_pairs(target, context, window_starts)
    triton_loss = cbow_step_triton(gpu_in, gpu_out, batch, torch.from_numpy(table), negatives, 0.3, 0.1, seed,
                                   3)
    return {"windows": len(window_starts) - 1, "rows_moved": int((np.abs(cpu_in - input_w).max(axis=1) > 0).sum()),
            "input_error": float(np.abs(gpu_in.numpy() - cpu_in).max()),
            "output_error": float(np.abs(gpu_out.numpy() - cpu_out).max()),
            "largest_move": float(max(np.abs(cpu_in - input_w).max(), np.abs(cpu_out - output_w).max())),
            "cpu_loss": cpu_loss, "triton_loss": triton_loss}


def _hs_sample_windows(data_dir: str, model: str, n_windows: int, seed: int, dim: int, block_d: int | None) -> dict:
    """An hs kernel (model sg or cbow) against its numba kernel on one thread, on n_windows real windows of the
    sample (cut at a batch edge inside a window, as the loader cuts) and the sample's Huffman tree (build_huffman
    of its counts, as train.py builds it). A tenth of the input rows are scaled up eightfold, so that some scores
    fall outside +-MAX_SCORE and hs's no-gradient rule is exercised; "clipped" counts those pairs at the start."""
    import numba
    import numpy as np
    import torch

    from helpers import batch_window_starts, drawn_windows
    from w2v.common import load_vocab
    from w2v.kernels.cpu import cbow_hs_step_cpu, sg_window_hs_step_cpu
    from w2v.kernels.triton_steps import cbow_hs_step_triton, sg_window_hs_step_triton
    from w2v.kernels import MAX_SCORE
    from w2v.huffman import build_huffman

    numba.set_num_threads(1)
    counts = load_vocab(Path(data_dir), with_words=False)[1]
    tree = build_huffman(np.asarray(counts))
    target, context, edges = drawn_windows(Path(data_dir), counts, seed=seed, sample=1e-3)
    n_pairs = int(edges[n_windows]) + 2
    window_starts = batch_window_starts(edges, 0, n_pairs)
    target, context = target[:n_pairs].copy(), context[:n_pairs].copy()
    rng = np.random.default_rng(seed)
    input_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    input_w[rng.random(len(counts)) < 0.1] *= 8.0
    inner_w = rng.normal(0, 0.5, (len(counts) - 1, dim)).astype(np.float32)
    clipped = 0
    for w in range(len(window_starts) - 1):
        t = target[window_starts[w]]
        nodes = inner_w[tree.paths[t, :tree.lengths[t]]]
        if model == "sg":
            scores = input_w[context[window_starts[w]:window_starts[w + 1]]] @ nodes.T
        else:
            scores = input_w[context[window_starts[w]:window_starts[w + 1]]].mean(axis=0) @ nodes.T
        clipped += int((np.abs(scores) > MAX_SCORE).sum())
    cpu_in, cpu_inner = input_w.copy(), inner_w.copy()
    kernel_cpu = sg_window_hs_step_cpu if model == "sg" else cbow_hs_step_cpu
    cpu_loss = kernel_cpu(cpu_in, cpu_inner, target[window_starts[:-1]], context, window_starts, tree.paths,
                          tree.codes, tree.lengths, 0.3, 0.1, 1, 3)
    gpu_in, gpu_inner = torch.from_numpy(input_w.copy()), torch.from_numpy(inner_w.copy())
    paths, codes, lengths = tree.tensors("cpu")
    batch = WindowBatch.of_pairs(target, context, window_starts)
    arguments = (gpu_in, gpu_inner, batch, paths, codes, lengths, 0.3, 0.1, 3)
    if model == "sg":
        triton_loss = sg_window_hs_step_triton(*arguments, block_d=block_d)
    else:
        triton_loss = cbow_hs_step_triton(*arguments)
    grouped = {}
    if model == "sg":  # groups of 8 windows: the top levels' gradients summed over the group, added after it
        group_in, group_inner = torch.from_numpy(input_w.copy()), torch.from_numpy(inner_w.copy())
        sg_window_hs_step_triton(group_in, group_inner, *arguments[2:], block_d=block_d, group=8)
        want_in, want_inner = _grouped_sg_hs(input_w, inner_w, target, context, window_starts, tree, 0.3, 0.1, 8)
        grouped = {"group_input_error": float(np.abs(group_in.numpy() - want_in).max()),
                   "group_inner_error": float(np.abs(group_inner.numpy() - want_inner).max()),
                   "group_differs_from_one": float(np.abs(group_inner.numpy() - cpu_inner).max())}
    sizes = np.diff(window_starts)
    moved_inner = np.abs(cpu_inner - inner_w).max(axis=1) > 0
    return {"windows": len(sizes), "longest": int(sizes.max()), "pairs": len(target),
            "longest_path": int(tree.max_len), "clipped": clipped,
            "rows_moved": int((np.abs(cpu_in - input_w).max(axis=1) > 0).sum()),
            "root_moved": bool(moved_inner[len(counts) - 2]), "inner_rows_moved": int(moved_inner.sum()),
            "input_error": float(np.abs(gpu_in.numpy() - cpu_in).max()),
            "inner_error": float(np.abs(gpu_inner.numpy() - cpu_inner).max()),
            "largest_move": float(max(np.abs(cpu_in - input_w).max(), np.abs(cpu_inner - inner_w).max())),
            "cpu_loss": cpu_loss, "triton_loss": triton_loss, **grouped}


def _grouped_sg_hs(input_w, inner_w, target, context, window_starts, tree, lr_start, lr_end, group):
    """The sg hs update with `group` windows a program, in float64 numpy: the reference for the kernel's GROUP > 1.
    Windows one after another, each from the rows as they are when it starts, except the top SHARED_LEVELS levels'
    nodes: their gradients are summed over the group's windows and added after its last one."""
    import numpy as np

    from w2v.kernels import MAX_SCORE
    from w2v.kernels.triton_steps import SHARED_LEVELS

    inputs, inner = input_w.astype(np.float64), inner_w.astype(np.float64)
    n_pairs, n_windows = len(target), len(window_starts) - 1
    for first in range(0, n_windows, group):
        grad_top = np.zeros_like(inner)
        for w in range(first, min(n_windows, first + group)):
            start, stop = window_starts[w], window_starts[w + 1]
            if stop == start:
                continue
            t = target[start]
            nodes = tree.paths[t, :tree.lengths[t]]
            rows = context[start:stop]
            scores = inputs[rows] @ inner[nodes].T
            lr = lr_start + (lr_end - lr_start) * start / n_pairs
            labels = 1.0 - tree.codes[t, :tree.lengths[t]]
            g = np.where(np.abs(scores) <= MAX_SCORE, (labels - 1.0 / (1.0 + np.exp(-scores))) * lr, 0.0)
            grad_in, grad_nodes = g @ inner[nodes], g.T @ inputs[rows]
            np.add.at(inputs, rows, grad_in)
            inner[nodes[SHARED_LEVELS:]] += grad_nodes[SHARED_LEVELS:]
            grad_top[nodes[:SHARED_LEVELS]] += grad_nodes[:SHARED_LEVELS]
        inner += grad_top
    return inputs, inner


def sg_hs_sample_windows(data_dir: str) -> dict:
    """The sg hs kernel against sg_window_hs_step_cpu: 64 windows, dim 24 in two masked 16-column chunks (as dim
    100 and 300 are chunked on a GPU)."""
    return _hs_sample_windows(data_dir, "sg", 64, 8, 24, 16)


def cbow_hs_sample_windows(data_dir: str) -> dict:
    """The CBOW hs kernel against cbow_hs_step_cpu: 40 windows, dim 40 (a 64-column row, masked)."""
    return _hs_sample_windows(data_dir, "cbow", 40, 6, 40, None)

def lean_batch(data_dir: str, model: str, batch_size: str) -> dict:
    """Batch 1 of an epoch (its windows cut by the batch's edges) through the kernel twice from equal tables: as
    dataset.py's DataLoader yields it, and as feed.py's reader threads give it (train.py's reader for the kernel)."""
    import numpy as np
    import torch

    from dataset import PairsDataset
    from w2v.feed import WindowFeed
    from w2v.kernels.triton_steps import cbow_step_triton, sg_window_step_triton

    def dataset() -> PairsDataset:
        return PairsDataset(data_dir, batch_size=int(batch_size), start_batch=1)

    old = next(iter(dataset()))
    lean_feed = WindowFeed(dataset().plan, num_workers=2)
    lean = next(iter(lean_feed))
    table = torch.from_numpy(np.load(Path(data_dir) / "unigram_alias.npy"))
    vocab = len(table)
    rng = np.random.default_rng(5)
    dim, negatives, seed = 24, 5, 2**62 + 99
    input_w = rng.normal(0, 0.5, (vocab, dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (vocab, dim)).astype(np.float32)
    old_in, old_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    new_in, new_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    if model == "sg":
        old_loss = sg_window_step_triton(old_in, old_out, old, table, negatives, 0.3, 0.1, seed, 3, block_d=16)
        new_loss = sg_window_step_triton(new_in, new_out, lean, table, negatives, 0.3, 0.1, seed, 3, block_d=16)
    else:
        old_loss = cbow_step_triton(old_in, old_out, old, table, negatives, 0.3, 0.1, seed, 3)
        new_loss = cbow_step_triton(new_in, new_out, lean, table, negatives, 0.3, 0.1, seed, 3)
    found = {"pairs": lean.n_pairs, "windows": lean.n_windows, "old_pairs": old.n_pairs,
             "old_windows": old.n_windows,
             "rows_moved": int((np.abs(old_in.numpy() - input_w).max(axis=1) > 0).sum()),
             "input_difference": float(np.abs(new_in.numpy() - old_in.numpy()).max()),
             "output_difference": float(np.abs(new_out.numpy() - old_out.numpy()).max()),
             "old_loss": old_loss, "new_loss": new_loss}
    lean_feed.close()
    return found


def negative_draws() -> dict:
    """triton_steps.unigram_draws (the ns kernels' unigram_draw) against the numba kernels' draw (cpu.unigram_draws)
    and the torch steps' (torch_steps.unigram_draws): the same words for the same seeds and counters, on a Zipf vocabulary
    of 70,001 words (V does not divide 2^32) and on one of 3 words; counters from 0 and past 2^40."""
    import numpy as np
    import torch

    from unigram_table import build_alias
    from w2v.kernels import cpu, torch_steps, triton_steps

    found = {}
    for vocab in (70_001, 3):
        counts = (1e7 / np.arange(1, vocab + 1) ** 1.05).astype(np.int64) + 5
        table = build_alias(counts, 0.75)
        counters = np.concatenate([np.arange(20_000), (1 << 40) + np.arange(5_000)]).astype(np.int64)
        for seed in (1, 2**62 + 12345, 2**63 - 1):
            want = cpu.unigram_draws(table, seed, counters)
            out = triton_steps.unigram_draws(torch.from_numpy(table), seed, torch.from_numpy(counters))
            through_torch = torch_steps.unigram_draws(torch.from_numpy(table), seed, torch.from_numpy(counters))
            found[f"{vocab} {seed}"] = {"triton_differs": int((out.numpy() != want).sum()),
                                         "torch_differs": int((through_torch.numpy() != want).sum()),
                                         "distinct": len(np.unique(want))}
    return found


def train(data_dir: str, *flags: str) -> dict:
    import train as train_script

    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        figures = train_script.main(["--data-dir", data_dir, *flags])
    return {**{key: figures[key] for key in ("kernel", "pairs", "final_loss", "device", "loss")},
            "self_check": [line for line in printed.getvalue().splitlines() if line.startswith("self-check:")]}


def self_check(fault: str = "none") -> dict:
    """self_check.compare of every Triton step (sg and cbow, ns and hs; sg at groups 1 and 64) against the torch step,
    on a Zipf vocabulary of 3,000 words at dim 24; fault: none, lr (the Triton step moves its rows by 1.5 times
    the update), seed (it draws other negatives than it was told: rows outside the check batch's move), compile
    (its kernel does not compile). Then first_run with --kernel auto and with --kernel triton on the sg ns step
    with that fault."""
    from types import SimpleNamespace

    import numpy as np
    import torch
    import triton
    import triton.language as tl

    from unigram_table import build_alias
    from w2v.common import StageError
    from w2v.huffman import build_huffman
    from w2v.kernels import self_check as sc
    from w2v.kernels import steps
    from word2vec import SkipGram

    counts = (1e6 / np.arange(1, 3001) ** 1.05).astype(np.int64) + 5
    tree, table = build_huffman(counts), torch.from_numpy(build_alias(counts, 0.75))

    @triton.jit
    def broken(x):
        tl.store(x + tl.arange(0, 3), 1.0)  # a block of 3: Triton refuses it

    def planted(step):
        if fault == "seed":  # other negatives: rows outside the check batch's move
            return lambda batch, lr_start, lr_end, seed: step(batch, lr_start, lr_end, seed + 1)
        if fault == "lr":  # a wrong update on the right rows
            return lambda batch, lr_start, lr_end, seed: step(batch, 1.5 * lr_start, 1.5 * lr_end, seed)
        if fault == "compile":
            return lambda batch, lr_start, lr_end, seed: broken[(1,)](torch.zeros(4))
        return step

    found = {}
    for model_name, loss, group in [("sg", "ns", 1), ("sg", "ns", 64), ("sg", "hs", 1), ("sg", "hs", 64),
                                    ("cbow", "ns", 1), ("cbow", "hs", 1)]:
        cfg = SimpleNamespace(model=model_name, loss=loss, kernel="auto", negatives=5, loss_every=1, threads=1,
                              triton_group=group, micro_batch=8192, hs_micro_batch=1024, self_check="on")
        model = SkipGram(len(counts), 24, seed=1, loss=loss)
        before = [p.detach().clone() for p in model.parameters()]
        step = planted(steps.make_step(model_name, loss, "triton", model, cfg, tree, table))
        try:
            verdict = sc.compare(step, model_name, loss, model, cfg, tree, table, counts, n_windows=64)
            result = {"ok": verdict.ok, "error": verdict.error, "moved": verdict.moved, "line": verdict.line}
        except Exception as error:  # noqa: BLE001
            result = {"ok": False, "raised": type(error).__name__}
        result["restored"] = all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        found[f"{model_name} {loss} group {group}"] = result
        if (model_name, loss, group) == ("sg", "ns", 1):
            try:
                found["auto_kernel"] = sc.first_run(cfg, "triton", model, step, tree, table, counts,
                                                    torch.device("cpu"))[0]
            except StageError as error:
                found["auto_kernel"] = str(error)
            try:
                sc.first_run(SimpleNamespace(**{**vars(cfg), "kernel": "triton"}), "triton", model, step, tree, table,
                             counts, torch.device("cpu"))
                found["named"] = "trained"
            except StageError as error:
                found["named"] = str(error)
    return found


if __name__ == "__main__":
    check, *arguments = sys.argv[1:]
    checks = {"sample_windows": sample_windows, "cbow_sample_windows": cbow_sample_windows,
              "sg_hs_sample_windows": sg_hs_sample_windows, "cbow_hs_sample_windows": cbow_hs_sample_windows,
              "train": train, "lean_batch": lean_batch, "negative_draws": negative_draws,
              "self_check": self_check}
    print(json.dumps(checks[check](*arguments)))
