"""convert_to_int.py variants on the same prep output, alternated: wall time and memory of the main process, of
the largest process, and of the whole tree (main + workers).

    git show main:convert_to_int.py > bench/work/old/convert_to_int.py      # a variant beside its own common.py
    git show main:common.py > bench/work/old/common.py
    .venv/bin/python bench/convert_memory.py --data-dir bench/work/zx20 \
        --scripts bench/work/old/convert_to_int.py,convert_to_int.py --repeats 2

DATA_DIR must hold prep/ (prep.py's output); each run replaces its vocab.json and ids/. Every variant runs in its
own process with `--num-proc NUM_PROC` and its defaults, the variants in turn (a, b, a, b, ...), so a slow spell of
a shared machine hits both; compare the medians. "main MB" is the largest resident set of the stage's own process
(sampled every SAMPLE_S; the stage's own peak_memory_mb also counts its finished workers), "tree MB" the largest
sum over the process and its workers. Each run's outputs are hashed: the variants must write the same bytes.
Results are appended to bench/work/convert_memory.jsonl.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from machine_facts import machine_facts

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "work" / "convert_memory.jsonl"
SAMPLE_S = 0.1


def sample_memory(process: subprocess.Popen, peaks: dict, stop: threading.Event) -> None:
    root = psutil.Process(process.pid)
    while not stop.is_set():
        try:
            main = root.memory_info().rss
            tree = main + sum(child.memory_info().rss for child in root.children(recursive=True))
        except psutil.Error:
            return
        peaks["main"], peaks["tree"] = max(peaks["main"], main), max(peaks["tree"], tree)
        stop.wait(SAMPLE_S)


def output_digest(data_dir: Path) -> str:
    """sha256 over vocab.json and the ids parts, in name order: equal digests, byte-identical outputs."""
    digest = hashlib.sha256()
    for path in [data_dir / "vocab.json", *sorted((data_dir / "ids").glob("part-*.parquet"))]:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def run_command(command: list[str], stats_path: Path) -> dict:
    """Run a stage command; its wall time and memory (stage's own peak, main process, whole tree) and its stats."""
    peaks, stop = {"main": 0, "tree": 0}, threading.Event()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    sampler = threading.Thread(target=sample_memory, args=(process, peaks, stop), daemon=True)
    sampler.start()
    returncode = process.wait()
    stop.set()
    sampler.join()
    if returncode:
        sys.exit(f"{' '.join(command)} failed (exit {returncode})")
    stats = json.loads(stats_path.read_text())
    return {"process_s": round(time.perf_counter() - started, 2), "wall_s": stats["wall_s"],
            "peak_mb": stats["peak_memory_mb"], "main_mb": round(peaks["main"] / 2**20, 1),
            "tree_mb": round(peaks["tree"] / 2**20, 1), "stats": stats}


def run_once(script: Path, data_dir: Path, num_proc: int) -> dict:
    command = [sys.executable, str(script), "--data-dir", str(data_dir), "--num-proc", str(num_proc)]
    row = run_command(command, data_dir / "stats" / "convert_to_int.json")
    stats = row.pop("stats")
    return {"script": str(script), **row, "vocab_size": stats["vocab_size"], "corpus_tokens": stats["corpus_tokens"],
            "outputs_sha256": output_digest(data_dir)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--scripts", default="convert_to_int.py", help="comma-separated convert_to_int.py copies")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--num-proc", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    scripts = [Path(script).resolve() for script in args.scripts.split(",")]
    runs = []
    for repeat in range(args.repeats):
        for script in scripts:
            runs.append(run_once(script, args.data_dir.resolve(), args.num_proc))
            row = runs[-1]
            print(f"{script.relative_to(ROOT) if script.is_relative_to(ROOT) else script}: {row['wall_s']:.1f} s, "
                  f"peak {row['peak_mb']:,.0f} MB, main {row['main_mb']:,.0f} MB, tree {row['tree_mb']:,.0f} MB, "
                  f"vocabulary {row['vocab_size']:,}", flush=True)
    digests = {row["outputs_sha256"] for row in runs}
    print("outputs (vocab.json, ids/):", "byte-identical in every run" if len(digests) == 1 else
          f"DIFFER: {len(digests)} different digests")
    medians = {}
    for script in scripts:
        mine = [row for row in runs if row["script"] == str(script)]
        medians[str(script)] = {key: statistics.median(row[key] for row in mine)
                                for key in ("wall_s", "peak_mb", "main_mb", "tree_mb")}
        print(f"median {script.name} ({script.parent.name}/): " +
              ", ".join(f"{key} {value:,.1f}" for key, value in medians[str(script)].items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_facts(),
                                 "load_average": os.getloadavg(), "data_dir": str(args.data_dir),
                                 "num_proc": args.num_proc, "runs": runs, "medians": medians}) + "\n")


if __name__ == "__main__":
    main()
