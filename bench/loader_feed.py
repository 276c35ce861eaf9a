"""The host side of the GPU step: the loader (dataset.py's PairsDataset in a DataLoader of --num-workers workers)
delivering what the fused kernel reads to the device, with a step that does nothing; pairs/s and bytes per pair.

    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --num-workers 2 --batches 100

What goes to the device per batch is what kernels_triton.sg_window_step_triton reads: the contexts (int32 per pair),
one target per window (int32, gathered on the host) and the window offsets (int64 per window); the torch step ships
the whole target column instead. On CUDA the loader pins its batches (train.py's pin_memory) and the copies are
non-blocking, synchronized once at the end; without CUDA the copies are left out and the figure is the host side
alone (the loader and the gather), the part a CPU can measure.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchlib import machine_facts
from common import run


def feed(data_dir: Path, num_workers: int, batches: int, batch_size: int, device: str) -> dict:
    import torch

    from dataset import PairsDataset

    dataset = PairsDataset(data_dir, batch_size=batch_size, negatives=0, seed=1, epoch=0, draw_negatives=False)
    on_device = device != "cpu"
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=on_device)
    pairs = windows = shipped = torch_step_bytes = done = 0
    started = None
    for target, context, _, window_starts in loader:
        if started is None:  # the workers' start-up (imports, first row groups) is not the rate
            started = time.perf_counter()
            continue
        window_target = target[window_starts[:-1]]
        if on_device:
            window_target = window_target.pin_memory()
            for tensor in (context, window_target, window_starts):
                tensor.to(device, non_blocking=True)
        pairs += len(context)
        windows += len(window_starts) - 1
        shipped += context.nbytes + window_target.nbytes + window_starts.nbytes
        torch_step_bytes += target.nbytes + context.nbytes + window_starts.nbytes
        done += 1
        if done == batches:
            break
    if on_device:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    return {"device": device, "num_workers": num_workers, "batch_size": batch_size, "batches": done, "pairs": pairs,
            "pairs_per_window": round(pairs / max(1, windows), 3), "seconds": round(elapsed, 2),
            "pairs_per_s": round(pairs / max(elapsed, 1e-9)),
            "bytes_per_pair_shipped": round(shipped / max(1, pairs), 3),
            "bytes_per_pair_torch_step": round(torch_step_bytes / max(1, pairs), 3),
            "host": machine_facts()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a data folder with pairs/ (pairs_dataset.py)")
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=100, help="batches timed, after a first one untimed")
    parser.add_argument("--batch-size", type=int, default=300_000)
    parser.add_argument("--device", default="", help="cuda or cpu (default: cuda when available)")
    args = parser.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    figures = feed(args.data_dir, args.num_workers, args.batches, args.batch_size, device)
    print(f"loader -> {device}: {figures['pairs']:,} pairs in {figures['batches']} batches, {figures['seconds']} s: "
          f"{figures['pairs_per_s']:,} pairs/s at {args.num_workers} workers; "
          f"{figures['bytes_per_pair_shipped']} bytes/pair shipped (the torch step's: "
          f"{figures['bytes_per_pair_torch_step']}), {figures['pairs_per_window']} pairs per window")
    return figures


if __name__ == "__main__":
    run(main)
