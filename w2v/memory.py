"""The memory plan of training: what train.py will hold on its device, item by item, summed and compared with the
memory free there before anything is allocated, so a run too big for the machine stops with one line that says
what would fit (a smaller vocabulary, dimension or batch).
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from w2v.common import fail
from w2v.kernels.steps import micro_batched

# DataLoader batches waiting per worker (torch's default prefetch_factor) and the one being trained.
PREFETCH_BATCHES = 2


def memory_plan(vocab_size: int, dim: int, cfg, kernel: str, device: torch.device, path_width: int,
                reader_bytes: int) -> dict[str, int]:
    """Bytes train.py will hold on `device`, item by item, before it allocates them.

    path_width: longest Huffman path (hs); reader_bytes: what one reader
    holds of the shards it rebuilds windows from (`shards.reader_bytes`). On CUDA the loader's host
    buffers are not on the device; the batch copied to it and the negatives drawn there are.
    """
    hs = cfg.loss == "hs"
    on_cpu = device.type == "cpu"
    batch = cfg.batch_size
    outputs = (1 + path_width) if hs else (1 + cfg.negatives)  # rows of the output table per pair
    plan = {"tables": (2 * vocab_size - (1 if hs else 0)) * dim * 4,
            "unigram table": 0 if hs else vocab_size * 8,  # the alias table: an int64 entry per word
            # paths int32 and codes int8 [V, width], lengths int64 [V]
            "huffman tree": vocab_size * (path_width * 5 + 8) if hs else 0}
    # a batch of windows: context, window target and window offset (int32 each) per pair at most
    per_pair = 12
    if on_cpu:
        # every batch queued or in use, and each worker's batch buffer and the shards it holds decoded (the kept
        # stream and its windows, `shards.reader_bytes`); every step draws its own negatives
        workers = max(1, cfg.num_workers)
        plan["loader buffers"] = ((PREFETCH_BATCHES * workers + 1) * batch * per_pair
                                  + workers * (batch * per_pair + reader_bytes))
    else:
        # the batch copied to the device, and the negatives drawn there: window_negatives holds about five int64
        # values per negative at once (counter, mixed bits, column, entry, word), at most a window per pair
        plan["loader buffers"] = batch * (per_pair + (0 if hs else 40 * cfg.negatives))
    if micro_batched(kernel):
        micro = min(batch, cfg.micro_batch) if cfg.micro_batch > 0 else batch
        # gathered u and v, grad_u and grad_v (float32 rows), ~6 float32 and 2 int64 values per output row
        # (scores, labels, sigma, g, ids...), and the int64 target ids. The window steps
        # hold less: u and grad_u per padded context (1.67 per pair on text8 at 8,192, bench/LOG.md) but v and
        # grad_v per window (6 pairs each), so 2 * 1.67 + 2 * outputs / 6 rows per pair, not 2 + 2 * outputs.
        plan["step temporaries"] = micro * (2 * dim * 4 + 2 * outputs * dim * 4 + outputs * (6 * 4 + 2 * 8) + 8)
    return plan


def available_memory(device: torch.device) -> int:
    """Bytes free for new allocations: CUDA's free memory, or the kernel's MemAvailable on the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _largest_fitting(needed: Callable[[int], int], upper: int, available: int) -> int:
    """The largest n in 1..upper with needed(n) <= available (needed grows with n), or 0."""
    low, high = 0, upper
    while low < high:
        middle = (low + high + 1) // 2
        if needed(middle) <= available:
            low = middle
        else:
            high = middle - 1
    return low


def check_memory(vocab_size: int, cfg, kernel: str, device: torch.device, path_width: int,
                 reader_bytes: int) -> tuple[int, int]:
    """Stop with one line when the plan does not fit what `available_memory` reports; (needed, available)."""
    def needed(vocab: int, dim: int) -> int:
        return sum(memory_plan(vocab, dim, cfg, kernel, device, path_width, reader_bytes).values())

    total, available = needed(vocab_size, cfg.dim), available_memory(device)
    if total <= available:
        return total, available
    plan = memory_plan(vocab_size, cfg.dim, cfg, kernel, device, path_width, reader_bytes)
    items = ", ".join(f"{name} {size_text(size)}" for name, size in plan.items() if size)
    ways = []
    max_vocab = _largest_fitting(lambda vocab: needed(vocab, cfg.dim), vocab_size, available)
    if max_vocab:
        ways.append(f"convert_to_int.py --max-vocab {max_vocab} (then pairs_dataset.py and unigram_table.py "
                    f"again)")
    max_dim = _largest_fitting(lambda dim: needed(vocab_size, dim), cfg.dim, available)
    if max_dim:
        ways.append(f"--dim {max_dim}")
    ways.append("a smaller --batch-size" + (" or --micro-batch" if micro_batched(kernel) else ""))
    fail(f"not enough memory on {device.type}: training needs {size_text(total)} ({items}) but {size_text(available)} "
         f"is available: try " + ", or ".join(ways))


def size_text(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size:,} bytes"
