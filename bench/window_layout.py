"""A proposed shard layout for the fused kernels, timed: what a reader would spend per pair if the pairs stage wrote
the contexts as one column of pairs and each window's target and length as columns of windows (two files per
shard, non-nullable columns), against the shards as they are. Nothing in the pipeline writes this layout: the tool
converts existing row groups into it (under bench/work) and times the reads.

    python bench/window_layout.py --data-dir bench/work/text8-e1/ours/data --row-groups 30 --codecs none,lz4

Per codec it prints one core's CPU time per million pairs for the parquet reads and for the rest of a lean batch
(the context copy, the offsets as a cumulative sum of the lengths), and the layout's bytes per pair on disk.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchlib import WORK, machine_facts
from w2v.common import run

ROW_GROUPS = 30  # row groups of the first shard converted and timed (after one more, untimed)
PASSES = 3
CODECS = "none,lz4"
OUT_DIR = WORK / "window-layout"  # where the converted row groups are written


def convert(source, out_dir: Path, codec: str, row_groups: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    contexts, windows = out_dir / f"contexts-{codec}.parquet", out_dir / f"windows-{codec}.parquet"
    context_schema = pa.schema([pa.field("context", pa.int32(), nullable=False)])
    window_schema = pa.schema([pa.field("target", pa.int32(), nullable=False),
                               pa.field("length", pa.uint8(), nullable=False)])
    with pq.ParquetWriter(contexts, context_schema, compression=codec, use_dictionary=False) as context_writer, \
            pq.ParquetWriter(windows, window_schema, compression=codec, use_dictionary=False) as window_writer:
        for row_group in range(row_groups):
            table = source.read_row_group(row_group)
            flags = table.column("window_start").to_numpy(zero_copy_only=False).copy()
            flags[0] = True  # a row group's first pair starts a window, as the readers cut it
            starts = np.flatnonzero(flags)
            lengths = np.diff(np.append(starts, len(flags)))
            if lengths.max() > 255:
                raise SystemExit(f"error: a window of {lengths.max()} pairs does not fit a uint8 length")
            context_writer.write_table(pa.table({"context": table.column("context")}, schema=context_schema),
                                       row_group_size=len(flags))
            window_writer.write_table(pa.table({"target": table.column("target").to_numpy()[starts],
                                                "length": lengths.astype(np.uint8)}, schema=window_schema),
                                      row_group_size=len(starts))
    return contexts, windows


def time_reads(contexts: Path, windows: Path, row_groups: int, passes: int) -> list[tuple[float, float]]:
    """(read, rest) CPU ms per million pairs for each pass over row groups 1..row_groups - 1."""
    import numpy as np
    import pyarrow.parquet as pq

    context_file, window_file = pq.ParquetFile(contexts), pq.ParquetFile(windows)
    size = max(context_file.metadata.row_group(i).num_rows for i in range(row_groups))
    context_buffer, offsets = np.empty(size, np.int32), np.empty(size + 1, np.int32)
    found = []
    for _ in range(passes):
        read = rest = 0.0
        pairs = 0
        for row_group in range(1, row_groups):
            clock = time.process_time()
            context = context_file.read_row_group(row_group, use_threads=False).column(0).chunk(0).to_numpy()
            lengths = window_file.read_row_group(row_group, use_threads=False).column("length").chunk(0).to_numpy()
            middle = time.process_time()
            np.copyto(context_buffer[:len(context)], context)
            offsets[0] = 0
            np.cumsum(lengths, out=offsets[1:len(lengths) + 1], dtype=np.int32)
            rest += time.process_time() - middle
            read += middle - clock
            pairs += len(context)
        found.append((read / pairs * 1e9, rest / pairs * 1e9))
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a data folder with pairs/ (pairs_dataset.py)")
    parser.add_argument("--row-groups", type=int, default=ROW_GROUPS)
    parser.add_argument("--passes", type=int, default=PASSES)
    parser.add_argument("--codecs", default=CODECS, help="comma-separated parquet codecs")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where the converted row groups go")
    args = parser.parse_args(argv)
    import json

    import pyarrow.parquet as pq

    meta = json.loads((args.data_dir / "pairs" / "meta.json").read_text())
    source = pq.ParquetFile(args.data_dir / "pairs" / meta["shards"][0]["file"])
    row_groups = min(args.row_groups + 1, source.num_row_groups)
    if row_groups < 2:
        raise SystemExit("error: the first shard needs at least 2 row groups")
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = sum(source.metadata.row_group(i).num_rows for i in range(row_groups))
    figures = {"row_groups": row_groups - 1, "host": machine_facts(), "codecs": {}}
    for codec in args.codecs.split(","):
        contexts, windows = convert(source, out_dir, codec, row_groups)
        passes = time_reads(contexts, windows, row_groups, args.passes)
        read = sorted(p[0] for p in passes)[len(passes) // 2]
        rest = sorted(p[1] for p in passes)[len(passes) // 2]
        on_disk = (contexts.stat().st_size + windows.stat().st_size) / pairs
        figures["codecs"][codec] = {"read_ms_per_m_pairs": round(read, 3), "rest_ms_per_m_pairs": round(rest, 3),
                                    "pairs_per_cpu_s": round(1e9 / (read + rest)), "bytes_per_pair": round(on_disk, 2)}
        print(f"{codec}: read {read:.2f} + offsets and copy {rest:.2f} ms CPU per million pairs "
              f"({1e3 / (read + rest):.0f}M pairs per CPU-second), {on_disk:.2f} bytes a pair on disk "
              f"(median of {len(passes)} passes over {row_groups - 1} row groups)")
    return figures


if __name__ == "__main__":
    run(main)
