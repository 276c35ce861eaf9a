"""The Triton kernel's checks that run in Triton's interpreter: in a process of their own, started by
test_triton_kernel.py with TRITON_INTERPRET=1 (Triton reads it when first imported, so it must be set before this
process imports anything). Each check prints one JSON line of what it found; the test asserts on it.

    TRITON_INTERPRET=1 python tests/triton_checks.py sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py cbow_sample_windows DATA_DIR
    TRITON_INTERPRET=1 python tests/triton_checks.py train DATA_DIR [train.py flags]
    TRITON_INTERPRET=1 python tests/triton_checks.py lean_batch DATA_DIR sg|cbow BATCH_SIZE
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1 (test_triton_kernel.py does)"


def sample_windows(data_dir: str) -> dict:
    """One batch of real windows (the shipped sample through prep and convert_to_int, drawn as pairs_dataset.py
    draws them) through the Triton kernel and through sg_window_step_cpu on one numba thread, from equal tables."""
    import numba
    import numpy as np
    import torch

    from benchlib import batch_window_starts, drawn_windows
    from common import load_vocab
    from kernels_cpu import sg_window_step_cpu
    from kernels_triton import sg_window_step_triton
    from unigram_table import build_table

    numba.set_num_threads(1)
    counts = load_vocab(Path(data_dir), with_words=False)[1]
    target, context, edges = drawn_windows(Path(data_dir), counts, seed=3, sample=1e-3)
    n_pairs = int(edges[96])  # 96 windows; the batch edge falls inside a window: it is cut as the loader cuts
    window_starts = batch_window_starts(edges, 0, n_pairs + 3)
    target, context = target[:n_pairs + 3].copy(), context[:n_pairs + 3].copy()
    table = build_table(counts, 5000, 0.75)
    rng = np.random.default_rng(0)
    dim, negatives, seed = 24, 5, 2**62 + 12345
    input_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    cpu_in, cpu_out = input_w.copy(), output_w.copy()
    cpu_loss = sg_window_step_cpu(cpu_in, cpu_out, target, context, window_starts, table, negatives, 0.3, 0.1, seed, 1,
                                  3)
    gpu_in, gpu_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    # block_d 16: two masked chunks of the 24 columns, as dim 100 and 300 are chunked on a GPU
    triton_loss = sg_window_step_triton(gpu_in, gpu_out, torch.from_numpy(target), torch.from_numpy(context),
                                        torch.from_numpy(window_starts), torch.from_numpy(table), negatives, 0.3, 0.1,
                                        seed, 3, block_d=16)
    sizes = np.diff(window_starts)
    return {"windows": len(sizes), "longest": int(sizes.max()), "pairs": len(target),
            "rows_moved": int((np.abs(cpu_in - input_w).max(axis=1) > 0).sum()),
            "input_error": float(np.abs(gpu_in.numpy() - cpu_in).max()),
            "output_error": float(np.abs(gpu_out.numpy() - cpu_out).max()),
            "largest_move": float(max(np.abs(cpu_in - input_w).max(), np.abs(cpu_out - output_w).max())),
            "cpu_loss": cpu_loss, "triton_loss": triton_loss}


def cbow_sample_windows(data_dir: str) -> dict:
    """The CBOW kernel against cbow_step_cpu on one numba thread, on real windows of the sample, as above."""
    import numba
    import numpy as np
    import torch

    from benchlib import batch_window_starts, drawn_windows
    from common import load_vocab
    from kernels_cpu import cbow_step_cpu
    from kernels_triton import cbow_step_triton
    from unigram_table import build_table

    numba.set_num_threads(1)
    counts = load_vocab(Path(data_dir), with_words=False)[1]
    target, context, edges = drawn_windows(Path(data_dir), counts, seed=4, sample=1e-3)
    n_pairs = int(edges[40])
    window_starts = batch_window_starts(edges, 0, n_pairs)
    target, context = target[:n_pairs].copy(), context[:n_pairs].copy()
    table = build_table(counts, 5000, 0.75)
    rng = np.random.default_rng(1)
    dim, negatives, seed = 40, 5, 2**62 + 777  # dim 40: a 64-column row, masked
    input_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (len(counts), dim)).astype(np.float32)
    cpu_in, cpu_out = input_w.copy(), output_w.copy()
    cpu_loss = cbow_step_cpu(cpu_in, cpu_out, target, context, window_starts, table, negatives, 0.3, 0.1, seed, 1, 3)
    gpu_in, gpu_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    triton_loss = cbow_step_triton(gpu_in, gpu_out, torch.from_numpy(target), torch.from_numpy(context),
                                   torch.from_numpy(window_starts), torch.from_numpy(table), negatives, 0.3, 0.1, seed,
                                   3)
    return {"windows": len(window_starts) - 1, "rows_moved": int((np.abs(cpu_in - input_w).max(axis=1) > 0).sum()),
            "input_error": float(np.abs(gpu_in.numpy() - cpu_in).max()),
            "output_error": float(np.abs(gpu_out.numpy() - cpu_out).max()),
            "largest_move": float(max(np.abs(cpu_in - input_w).max(), np.abs(cpu_out - output_w).max())),
            "cpu_loss": cpu_loss, "triton_loss": triton_loss}


def lean_batch(data_dir: str, model: str, batch_size: str) -> dict:
    """Batch 1 of an epoch (its windows cut by the batch's edges) through the kernel twice from equal tables: from
    dataset.py's batch (target, context, int64 offsets) by kernels_triton's step, and from feed.py's lean batch
    (contexts, one target per window, int32 offsets) by the step train.py takes for it (steps.py)."""
    import numpy as np
    import torch

    import steps
    from dataset import PairsDataset
    from feed import WindowFeed
    from kernels_triton import cbow_step_triton, sg_window_step_triton

    def dataset() -> PairsDataset:
        return PairsDataset(data_dir, batch_size=int(batch_size), negatives=0, draw_negatives=False, start_batch=1)

    target, context, _, window_starts = next(iter(dataset()))
    lean_feed = WindowFeed(dataset(), num_workers=2)
    lean = next(iter(lean_feed))
    table = torch.from_numpy(np.load(Path(data_dir) / "unigram_table.npy"))
    vocab = int(table.max()) + 1
    rng = np.random.default_rng(5)
    dim, negatives, seed = 24, 5, 2**62 + 99
    input_w = rng.normal(0, 0.5, (vocab, dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (vocab, dim)).astype(np.float32)
    old_in, old_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    new_in, new_out = torch.from_numpy(input_w.copy()), torch.from_numpy(output_w.copy())
    if model == "sg":
        old_loss = sg_window_step_triton(old_in, old_out, target, context, window_starts, table, negatives, 0.3, 0.1,
                                         seed, 3, block_d=16)
        new_loss = steps.sg_windows_triton(new_in, new_out, lean, table, negatives, 0.3, 0.1, seed, 3, block_d=16)
    else:
        old_loss = cbow_step_triton(old_in, old_out, target, context, window_starts, table, negatives, 0.3, 0.1, seed,
                                    3)
        new_loss = steps.cbow_windows_triton(new_in, new_out, lean, table, negatives, 0.3, 0.1, seed, 3)
    found = {"pairs": lean.n_pairs, "windows": lean.n_windows, "old_pairs": len(target),
             "old_windows": len(window_starts) - 1,
             "rows_moved": int((np.abs(old_in.numpy() - input_w).max(axis=1) > 0).sum()),
             "input_difference": float(np.abs(new_in.numpy() - old_in.numpy()).max()),
             "output_difference": float(np.abs(new_out.numpy() - old_out.numpy()).max()),
             "old_loss": old_loss, "new_loss": new_loss}
    lean_feed.close()
    return found


def train(data_dir: str, *flags: str) -> dict:
    import train as train_script

    figures = train_script.main(["--data-dir", data_dir, *flags])
    return {key: figures[key] for key in ("kernel", "pairs", "final_loss", "device")}


if __name__ == "__main__":
    check, *arguments = sys.argv[1:]
    checks = {"sample_windows": sample_windows, "cbow_sample_windows": cbow_sample_windows, "train": train,
              "lean_batch": lean_batch}
    print(json.dumps(checks[check](*arguments)))
