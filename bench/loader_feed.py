"""The host side of the fused GPU kernels: batches delivered to the device with a step that does nothing; pairs/s,
CPU time per pair and bytes per pair shipped, the median of --passes passes over one epoch's shards.

    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --num-workers 2            # the lean feed
    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --feed loader --passes 1   # dataset.py's
    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --floors                   # per-core floors
    python bench/loader_feed.py --data-dir bench/work/text8-e1/ours/data --required-copy bench/work/text8-required

--feed lean (default): feed.WindowFeed, what train.py --kernel triton reads: reader threads cut the contexts, one
target per window and int32 offsets into reused buffers (pinned on CUDA, non-blocking copies). --feed loader:
dataset.py's PairsDataset in a DataLoader of --num-workers processes, its target, context and int64 offsets (the
torch step's batch), the one target per window gathered in the main process, the fused kernel's batch without
w2v/feed.py; pinned by the DataLoader on CUDA. Without CUDA nothing is copied: the figure is the host side alone.

pairs/s is wall-clock, after the first batch (the readers' start-up is not the rate); cpu_s_per_m_pairs is the
process's CPU time (all threads; the lean feed only, a DataLoader's workers are other processes) per million
pairs, the measure that holds on a shared machine: cores / that = the rate with that many cores free.

--floors times, on one core, what a reader cannot avoid: the parquet read of a shard's two columns and its reaches
(per shard, charged per pair of the shard), a unit's order and offsets, the rebuild of its windows (numba), what a
reader holds per shard, and memcpy bandwidth. --required-copy OUT writes the
shards again with non-nullable columns (same rows, row groups and codec) into OUT/pairs: what pairs_dataset.py
writes (shards with nullable columns are read too, only slower).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from benchlib import machine_facts
from w2v.common import run

# Batches per pass (0: the whole epoch), passes, the batch size: the seed's 300K pairs; the fused kernel takes any.
BATCHES = 0
PASSES = 5
BATCH_SIZE = 300_000
NUM_WORKERS = 2


def one_pass(data_dir: Path, feed: str, num_workers: int, batches: int, batch_size: int, device: str) -> dict:
    import torch

    from dataset import PairsDataset
    from w2v.feed import WindowFeed

    dataset = PairsDataset(data_dir, batch_size=batch_size, seed=1, epoch=0)
    on_device = device != "cpu"
    if feed == "lean":
        stream = WindowFeed(dataset.plan, num_workers, device)
    else:
        stream = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=on_device)
    pairs = windows = shipped = done = 0
    started = cpu_started = None
    cpu_all, all_pairs = time.process_time(), 0  # the whole pass, start-up and first batch included
    for batch in stream:
        all_pairs += batch.n_pairs
        if started is None:  # the readers' start-up (imports, first row groups) is not the rate
            started, cpu_started = time.perf_counter(), time.process_time()
            continue
        if feed != "lean" and on_device:
            batch.to(device, non_blocking=True)
        n_pairs, n_windows, nbytes = batch.n_pairs, batch.n_windows, batch.nbytes()
        pairs += n_pairs
        windows += n_windows
        shipped += nbytes
        done += 1
        if done == batches:
            break
    if on_device:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    cpu = time.process_time() - (cpu_started or time.process_time())
    if feed != "lean":
        del stream  # the DataLoader's workers end here
    return {"seconds": elapsed, "pairs": pairs, "windows": windows, "shipped": shipped, "batches": done,
            "pairs_per_s": pairs / max(elapsed, 1e-9), "cpu_s_per_m_pairs": cpu / max(pairs, 1) * 1e6,
            "cpu_s_per_m_pairs_whole_pass": (time.process_time() - cpu_all) / max(all_pairs, 1) * 1e6}


def floors(data_dir: Path, row_groups: int = 20) -> dict:
    """One core's CPU time per million pairs for each thing a reader does, what it holds per shard, and memcpy
    bandwidth. Kept-stream shards (w2v/shards.py): per shard the parquet read of its two columns and the reaches
    (numba), per unit its order (a permutation) and offsets, per pair the rebuild of the windows (numba). The
    first `row_groups` units, the shards they are in read once each."""
    import numpy as np

    from w2v.shards import BatchBuffer, UnitScratch, WindowShards

    shards = WindowShards(data_dir, batch_size=1, seed=1)
    units = shards.units[:row_groups]
    slot = BatchBuffer(max(rows for _, _, rows in units), pin=False)
    spent = {"parquet read (2 columns) + reaches, per shard": 0.0, "unit rebuilt (order, contexts: numba)": 0.0,
             "batch: context copy + window cut": 0.0}
    pairs, held, loaded, scratch = 0, [], {}, UnitScratch()
    shards.read_shard(units[0][0]).unit(0)  # untimed: numba's compile, the page cache
    for shard, unit, rows in units:
        clock = time.process_time()
        if shard not in loaded:
            loaded[shard] = shards.read_shard(shard)
            stream = loaded[shard]
            held.append(stream.nbytes())
        read = time.process_time()
        windows = loaded[shard].unit(unit, scratch)
        ordered = time.process_time()
        slot.n_pairs = slot.n_windows = 0
        slot.add(windows, 0, rows)
        rebuilt = time.process_time()
        spent["parquet read (2 columns) + reaches, per shard"] += read - clock
        spent["unit rebuilt (order, contexts: numba)"] += ordered - read
        spent["batch: context copy + window cut"] += rebuilt - ordered
        pairs += rows
    # the units read here are a share of their shards' pairs: the shard's read is charged per pair of the shards
    shard_pairs = sum(shards.meta.shards[s]["pairs"] for s in loaded)
    per_m = {name: seconds / (shard_pairs if "per shard" in name else pairs) * 1e9 for name, seconds in spent.items()}
    per_m = {name: round(value, 3) for name, value in per_m.items()}  # ms per million pairs
    source, target_buffer = np.ones(256 << 20, np.uint8), np.empty(256 << 20, np.uint8)
    np.copyto(target_buffer, source)
    clock = time.perf_counter()
    for _ in range(4):
        np.copyto(target_buffer, source)
    bandwidth = 4 * source.nbytes / (time.perf_counter() - clock)
    total = sum(per_m.values())
    return {"units": len(units), "pairs": pairs, "cpu_ms_per_m_pairs": per_m, "reader_ms_per_m_pairs": round(total, 3),
            "reader_pairs_per_cpu_s": round(1e9 / total), "memcpy_gb_per_s": round(bandwidth / 1e9, 2),
            "held_bytes_per_shard": held, "held_bytes_per_pair": round(sum(held) / shard_pairs, 3)}


def required_copy(data_dir: Path, out: Path) -> Path:
    """The shards of data_dir/pairs rewritten with non-nullable columns into out/pairs (meta.json copied)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source, target = data_dir / "pairs", out / "pairs"
    target.mkdir(parents=True, exist_ok=True)
    meta = json.loads((source / "meta.json").read_text())
    for shard in meta["shards"]:
        file = pq.ParquetFile(source / shard["file"])
        schema = pa.schema([field.with_nullable(False) for field in file.schema_arrow])
        codec = file.metadata.row_group(0).column(0).compression.lower().replace("uncompressed", "none")
        with pq.ParquetWriter(target / shard["file"], schema, compression=codec, use_dictionary=False) as writer:
            for row_group in range(file.num_row_groups):
                table = file.read_row_group(row_group)
                writer.write_table(table.cast(schema), row_group_size=table.num_rows)
    shutil.copy(source / "meta.json", target / "meta.json")
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a data folder with pairs/ (pairs_dataset.py)")
    parser.add_argument("--feed", choices=("lean", "loader"), default="lean")
    parser.add_argument("--num-workers", type=int, default=NUM_WORKERS, help="reader threads (lean) or processes")
    parser.add_argument("--batches", type=int, default=BATCHES, help="batches timed per pass, after a first one "
                        "untimed (0: the whole epoch)")
    parser.add_argument("--passes", type=int, default=PASSES, help="passes; the median pass is reported")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--device", default="", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--floors", action="store_true", help="time what one reader cannot avoid, per core")
    parser.add_argument("--required-copy", type=Path, help="write the shards again with required columns there")
    args = parser.parse_args(argv)
    if args.required_copy:
        out = required_copy(args.data_dir, args.required_copy)
        print(f"shards with required columns in {out}/pairs")
        return {"required_copy": str(out)}
    if args.floors:
        figures = {**floors(args.data_dir), "host": machine_facts()}
        print(json.dumps(figures))
        return figures
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    passes = [one_pass(args.data_dir, args.feed, args.num_workers, args.batches, args.batch_size, device)
              for _ in range(max(1, args.passes))]
    median = sorted(passes, key=lambda p: p["pairs_per_s"])[len(passes) // 2]
    figures = {"feed": args.feed, "device": device, "num_workers": args.num_workers, "batch_size": args.batch_size,
               "batches": median["batches"], "pairs": median["pairs"], "seconds": round(median["seconds"], 3),
               "pairs_per_s": round(median["pairs_per_s"]),
               "pairs_per_s_passes": [round(p["pairs_per_s"]) for p in passes],
               "cpu_s_per_m_pairs": round(statistics.median(p["cpu_s_per_m_pairs"] for p in passes), 4)
               if args.feed == "lean" else None,
               "cpu_s_per_m_pairs_whole_pass": round(statistics.median(p["cpu_s_per_m_pairs_whole_pass"]
                                                                      for p in passes), 4),
               "bytes_per_pair_shipped": round(median["shipped"] / max(1, median["pairs"]), 3),
               "pairs_per_window": round(median["pairs"] / max(1, median["windows"]), 3), "host": machine_facts()}
    print(f"{args.feed} feed -> {device}: {figures['pairs']:,} pairs in {figures['batches']} batches of "
          f"{args.batch_size:,}, median of {len(passes)} passes {figures['seconds']} s: {figures['pairs_per_s']:,} "
          f"pairs/s at {args.num_workers} workers (passes: {', '.join(f'{p / 1e6:.1f}M' for p in figures['pairs_per_s_passes'])}); "
          f"{figures['bytes_per_pair_shipped']} bytes/pair shipped, {figures['pairs_per_window']} pairs per window"
          + (f"; {figures['cpu_s_per_m_pairs']} CPU s per million pairs" if args.feed == "lean" else "")
          + (f" ({figures['cpu_s_per_m_pairs_whole_pass']} over whole passes)" if args.feed == "lean" else ""))
    return figures


if __name__ == "__main__":
    run(main)
