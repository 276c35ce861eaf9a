"""Which parquet codec for the pair shards: bytes per pair, write time, and the training read rate per codec.

    .venv/bin/python bench/shard_codecs.py --data-dir bench/work/text8-e5/ours/data

Takes a finished data dir (ids/ and vocab.json from convert_to_int.py), writes one draw of pairs with each codec
into bench/work/codecs/<codec>/ (pairs_dataset.py as a user runs it), then reads each back through
dataset.PairsDataset as train.py does (row groups, int32 tensors, negatives drawn), from the page cache, best of
READS passes. Appends one JSON line to bench/work/shard_codecs.jsonl.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import machine  # noqa: E402
from dataset import PairsDataset  # noqa: E402

CODECS = ["lz4", "zstd", "snappy", "none"]  # the candidates (gzip and brotli are far slower to read)
READS = 2  # read passes per codec; the best counts (the first may still warm the page cache)


def read_rate(data_dir: Path, draw_negatives: bool) -> float:
    """Pairs/s of one pass over epoch 0 through PairsDataset, in this process (no DataLoader worker)."""
    dataset = PairsDataset(data_dir, batch_size=300_000, negatives=5, seed=1, epoch=0,
                           draw_negatives=draw_negatives)
    started = time.perf_counter()
    pairs = sum(int(target.shape[0]) for target, _, _, _ in dataset)
    return pairs / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="bench/work/text8-e5/ours/data")
    parser.add_argument("--codecs", default=",".join(CODECS))
    args = parser.parse_args()
    source = Path(args.data_dir)
    work = ROOT / "bench" / "work" / "codecs"
    results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "data_dir": str(source), "codecs": {}}
    print(f"{'codec':<8}{'bytes/pair':>12}{'write s':>10}{'read Mpairs/s':>15}{'+negatives':>12}")
    for codec in args.codecs.split(","):
        data_dir = work / codec
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        for name in ("ids", "vocab.json", "unigram_table.npy"):
            (data_dir / name).symlink_to((source / name).resolve())
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "pairs_dataset.py"), "--data-dir", str(data_dir), "--draws", "1",
                        "--compression", codec], check=True, cwd=ROOT, capture_output=True)
        write_s = time.perf_counter() - started
        meta = json.loads((data_dir / "pairs" / "meta.json").read_text())
        plain = max(read_rate(data_dir, False) for _ in range(READS))
        with_negatives = max(read_rate(data_dir, True) for _ in range(READS))
        figures = {"bytes_per_pair": meta["bytes"] / meta["pairs"], "write_s": write_s,
                   "read_pairs_per_s": plain, "read_with_negatives_pairs_per_s": with_negatives}
        results["codecs"][codec] = figures
        print(f"{codec:<8}{figures['bytes_per_pair']:>12.2f}{write_s:>10.1f}{plain / 1e6:>15.1f}"
              f"{with_negatives / 1e6:>12.1f}", flush=True)
        shutil.rmtree(data_dir)
    with open(ROOT / "bench" / "work" / "shard_codecs.jsonl", "a") as handle:
        handle.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
