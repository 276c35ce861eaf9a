"""prep.py's memory on a folder in the Hugging Face hub layout: the hub path against the local-files path.

    .venv/bin/python bench/zipf_corpus.py --scale 20                       # once: bench/work/zipf-x20.parquet
    .venv/bin/python bench/prep_hub_memory.py --row-groups 40 --files 10 --repeats 1

Makes bench/work/hub-zipf/data/train-000NN-of-000MM.parquet (FILES files, the first ROW_GROUPS row groups of
zipf-x20 between them: 800K documents, ~580 MB of text) unless it exists, then runs prep.py on it three ways, in
turn: `hub` (the folder, as a hub name goes: load_dataset_builder, then the split's parquet files streamed by
pyarrow), `datasets-stream` (the same with the rows read through datasets' own IterableDataset stream, what a hub
name took before) and `local` (the same files given as a glob: the local-files path). Each run: wall time, the
stage's peak_memory_mb (its largest process), the peak of the main process alone and of the whole tree (sampled),
and a digest of prep/ (the three must write the same parts).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from convert_memory import run_command
from machine_facts import machine_facts

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
# prep.main with _load_from_hub's parquet files dropped: the rows then come through datasets' stream.
DATASETS_STREAM = ("import sys; sys.path.insert(0, {root!r}); import prep; load = prep._load_from_hub; "
                   "prep._load_from_hub = lambda *args: (load(*args)[0], None); prep.run(prep.main)")


def make_hub_folder(folder: Path, row_groups: int, files: int) -> None:
    source = pq.ParquetFile(WORK / "zipf-x20.parquet")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    per_file = -(-row_groups // files)
    for index in range(files):
        groups = range(index * per_file, min(row_groups, (index + 1) * per_file))
        with pq.ParquetWriter(folder / "data" / f"train-{index:05d}-of-{files:05d}.parquet", source.schema_arrow,
                              compression="zstd") as writer:
            for group in groups:
                writer.write_table(source.read_row_group(group))


def prep_digest(data_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((data_dir / "prep").glob("part-*.parquet")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row-groups", type=int, default=40)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    folder = WORK / "hub-zipf"
    if not (folder / "data").is_dir():
        make_hub_folder(folder, args.row_groups, args.files)
    data_dir = WORK / "prep-hub-memory"
    common = ["--data-dir", str(data_dir), "--num-proc", str(args.num_proc)]
    variants = {
        "hub": [sys.executable, str(ROOT / "prep.py"), "--dataset", str(folder), *common],
        "datasets-stream": [sys.executable, "-c", DATASETS_STREAM.format(root=str(ROOT)), "--dataset", str(folder),
                            *common],
        "local": [sys.executable, str(ROOT / "prep.py"), "--dataset", str(folder / "data" / "*.parquet"), *common],
    }
    runs = []
    for _ in range(args.repeats):
        for name, command in variants.items():
            row = {"variant": name, **run_command(command, data_dir / "stats" / "prep.json"),
                   "prep_sha256": prep_digest(data_dir)}
            runs.append(row)
            print(f"{name}: {row['wall_s']:.1f} s, peak {row['peak_mb']:,.0f} MB, main {row['main_mb']:,.0f} MB, "
                  f"tree {row['tree_mb']:,.0f} MB, {row['stats']['documents']:,} documents", flush=True)
    print("prep/ parts:", "byte-identical in every run" if len({r["prep_sha256"] for r in runs}) == 1 else "DIFFER")
    with open(WORK / "prep_hub_memory.jsonl", "a") as handle:
        handle.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_facts(),
                                 "load_average": os.getloadavg(), "runs": runs}) + "\n")


if __name__ == "__main__":
    main()
