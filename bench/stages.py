"""Stages 1-4 (prep, convert_to_int, pairs_dataset, unigram_table) on one or more corpora: time, memory, throughput.

    .venv/bin/python bench/zipf_corpus.py --scale 20                       # once: bench/work/zipf-x20.parquet
    .venv/bin/python bench/stages.py --corpora ru,zipf-x20                 # the scaling check
    .venv/bin/python bench/stages.py --corpora zipf-x1,zipf-x20            # scale alone: same generator
    .venv/bin/python bench/stages.py --corpora ru --num-proc 1 --keep      # one corpus, outputs kept

A corpus is `ru` (../shared/data/corpus/ru_corpus.parquet), `zipf-x<SCALE>` (bench/work/zipf-x<SCALE>.parquet,
made by bench/zipf_corpus.py) or a path to anything prep.py reads. Each stage runs as a user would run it, in its
own process with its default settings, into bench/work/stages-<name>/ (removed first, and after reading the
figures unless --keep); its output goes to bench/work/stages-<name>.log. Figures come from the stage's own
DATA_DIR/stats/<stage>.json (wall_s, peak_memory_mb, counts), plus the process's wall time (imports included)
and the peak of the summed resident memory of the stage and its worker processes, sampled every SAMPLE_S.

Throughput is per second of the stage's wall_s: MB of raw text (UTF-8 bytes of the text column), tokens (prep,
convert_to_int: tokens read) and pairs (pairs_dataset). With two corpora or more, each is compared with the
smallest (by raw bytes, or the one named by --baseline): the scaling targets are, per stage, peak memory at most
MEMORY_TARGET times the smaller corpus's and throughput (MB of raw text/s) at least THROUGHPUT_TARGET times it.
unigram_table's work grows with the vocabulary, not the corpus (an alias table of a word each): its throughput is
shown, not judged.
The synthetic corpora
differ from ru_corpus in content as well as size (more distinct words, fewer pairs per token), so ru against
zipf-x20 mixes both effects; zipf-x1 against zipf-x20 isolates the effect of size.

Results are appended as JSON lines to bench/work/stages.jsonl, with the machine, load average and date.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from benchlib import ROOT, RU_CORPUS, WORK, TreeSampler, machine_facts, run_logged, script_command, tree_bytes

CORPORA = "ru,zipf-x20"  # comma-separated: ru, zipf-x<SCALE> or paths
NUM_PROC = os.cpu_count() or 1  # --num-proc of prep.py and convert_to_int.py
MEMORY_TARGET = 1.5  # larger corpus's peak memory at most this times the smaller's
THROUGHPUT_TARGET = 0.8  # larger corpus's throughput at least this times the smaller's ("within 20%")
SAMPLE_S = 0.2  # period of the process-tree memory sampling
TEXT_COLUMN = "text"  # column whose bytes are the raw text (prep.py's default)
RESULTS = WORK / "stages.jsonl"
RAW_BYTES_CACHE = WORK / "raw_bytes.json"  # raw text bytes per (path, size, mtime): a 20x corpus takes a while

# Stage scripts in order; extra arguments beyond --data-dir (prep gets --dataset, both get --num-proc).
STAGES = ("prep", "convert_to_int", "pairs_dataset", "unigram_table")
# Which stage figure counts the units of the second throughput column.
UNITS = {"prep": ("tokens", "tok/s"), "convert_to_int": ("corpus_tokens", "tok/s"),
         "pairs_dataset": ("pairs", "pairs/s")}
JUDGED = ("prep", "convert_to_int", "pairs_dataset")  # throughput targets apply to these


def resolve(corpus: str) -> tuple[str, Path]:
    """(name, path) of a corpus given as ru, zipf-x<SCALE> or a path."""
    if corpus == "ru":
        return "ru", RU_CORPUS
    if corpus.startswith("zipf-x") and not Path(corpus).exists():
        path = WORK / f"{corpus}.parquet"
        if not path.exists():
            sys.exit(f"{path} not found: make it with .venv/bin/python bench/zipf_corpus.py --scale {corpus[6:]}")
        return corpus, path
    path = Path(corpus).expanduser().resolve()
    if not path.exists():
        sys.exit(f"{corpus}: no such corpus (use ru, zipf-x<SCALE> or a path)")
    name = path.name
    for suffix in (".gz", ".bz2", ".xz", ".zst", ".parquet", ".jsonl", ".json", ".txt", ".text"):
        name = name.removesuffix(suffix)
    return name, path


def raw_text_bytes(path: Path, column: str = TEXT_COLUMN) -> int | None:
    """Sum of the UTF-8 byte lengths of `column`, one row group at a time; cached by path, size and mtime.

    None for a corpus that is not parquet: then prep.py's own raw_mb is used.
    """
    if path.suffix != ".parquet":
        return None
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    cache = json.loads(RAW_BYTES_CACHE.read_text()) if RAW_BYTES_CACHE.exists() else {}
    if key in cache:
        return cache[key]
    file = pq.ParquetFile(path)
    total = 0
    for group in range(file.num_row_groups):
        texts = file.read_row_group(group, columns=[column]).column(column)
        total += int(pc.sum(pc.binary_length(texts)).as_py() or 0)  # binary_length: bytes, not characters
    cache[key] = total
    RAW_BYTES_CACHE.parent.mkdir(parents=True, exist_ok=True)
    RAW_BYTES_CACHE.write_text(json.dumps(cache, indent=1))
    return total


def run_stage(stage: str, data_dir: Path, dataset: Path, num_proc: int, log: Path) -> dict:
    """Run one stage script; its stats json plus process_s and tree_peak_mb. Exits with the log's tail on failure."""
    command = script_command(stage, data_dir)
    if stage == "prep":
        command += ["--dataset", str(dataset)]
    if stage in ("prep", "convert_to_int"):
        command += ["--num-proc", str(num_proc)]
    if stage == "pairs_dataset":
        command += ["--draws", "1"]  # one epoch's pairs: the stage's per-draw cost (more draws repeat it)
    stats, process_s, sampled = run_logged(stage, command, data_dir, log, watch, failed_note=f"; {data_dir} kept")
    stats["process_s"] = round(process_s, 2)
    stats["tree_peak_mb"] = sampled["tree_peak_mb"] if sampled else None
    return stats


def watch(pid: int) -> TreeSampler | None:
    """The summed memory of the stage and its workers, where psutil is installed."""
    try:
        return TreeSampler(pid, SAMPLE_S)
    except ImportError:
        return None


def measure(name: str, path: Path, num_proc: int, keep: bool) -> dict:
    """All four stages on one corpus; the record appended to RESULTS."""
    raw_bytes = raw_text_bytes(path)
    data_dir = WORK / f"stages-{name}"
    log = WORK / f"stages-{name}.log"
    shutil.rmtree(data_dir, ignore_errors=True)  # stale outputs would mix with this run's
    data_dir.mkdir(parents=True)
    log.write_text("")
    stages: dict[str, dict] = {}
    for stage in STAGES:
        print(f"  {name}: {stage} ...", end="", flush=True)
        stats = run_stage(stage, data_dir, path, num_proc, log)
        stages[stage] = stats
        print(f" {stats['wall_s']:.1f} s, {stats['peak_memory_mb']:,.0f} MB", flush=True)
    prep_bytes = stages["prep"]["raw_mb"] * 2**20  # prep.py's own count, MB with two decimals
    if raw_bytes is None:  # not parquet: prep's figure is the only one
        raw_bytes = int(prep_bytes)
    elif abs(prep_bytes - raw_bytes) > max(0.01 * 2**20, 1e-3 * raw_bytes):
        print(f"  warning: prep.py read {prep_bytes / 2**20:,.2f} MB of text, the parquet holds "
              f"{raw_bytes / 2**20:,.2f} MB (--max-docs? another text column?)")
    pairs = stages["pairs_dataset"]["pairs"]
    disk = {"prep_bytes": tree_bytes(data_dir / "prep"), "ids_bytes": tree_bytes(data_dir / "ids"),
            "pairs_bytes": tree_bytes(data_dir / "pairs"), "unigram_table_bytes": tree_bytes(data_dir / "unigram_alias.npy")}
    disk["shard_bytes_per_pair"] = round(disk["pairs_bytes"] / pairs, 3) if pairs else None
    if not keep:
        shutil.rmtree(data_dir)
    raw_mb = raw_bytes / 2**20
    for stage, stats in stages.items():
        wall = max(stats["wall_s"], 1e-9)
        stats["raw_mb_per_s"] = round(raw_mb / wall, 2)
        if stage in UNITS:
            stats["units_per_s"] = round(stats[UNITS[stage][0]] / wall)
    total_wall = sum(stats["wall_s"] for stats in stages.values())
    return {"corpus": name, "path": str(path), "raw_bytes": raw_bytes, "num_proc": num_proc,
            "tokens": stages["prep"]["tokens"], "vocab_size": stages["convert_to_int"]["vocab_size"],
            "pairs": pairs, "disk": disk, "stages": stages, "total_wall_s": round(total_wall, 2),
            "total_raw_mb_per_s": round(raw_mb / max(total_wall, 1e-9), 2),
            "total_peak_memory_mb": max(stats["peak_memory_mb"] for stats in stages.values())}


def compare(small: dict, large: dict) -> dict:
    """Per stage: large/small ratios of peak memory and throughput, and PASS/FAIL against the targets."""
    rows = {}
    for stage in STAGES:
        a, b = small["stages"][stage], large["stages"][stage]
        memory = b["peak_memory_mb"] / max(a["peak_memory_mb"], 1e-9)
        throughput = b["raw_mb_per_s"] / max(a["raw_mb_per_s"], 1e-9)
        row = {"memory_ratio": round(memory, 3), "memory_pass": memory <= MEMORY_TARGET,
               "throughput_ratio": round(throughput, 3)}
        if a.get("tree_peak_mb") and b.get("tree_peak_mb"):
            row["tree_memory_ratio"] = round(b["tree_peak_mb"] / a["tree_peak_mb"], 3)
        if stage in UNITS:
            row["units_ratio"] = round(b["units_per_s"] / max(a["units_per_s"], 1e-9), 3)
        row["throughput_pass"] = throughput >= THROUGHPUT_TARGET if stage in JUDGED else None
        rows[stage] = row
    judged = [row for row in rows.values() if row["throughput_pass"] is not None]
    return {"small": small["corpus"], "large": large["corpus"],
            "size_ratio": round(large["raw_bytes"] / max(small["raw_bytes"], 1), 2), "stages": rows,
            "pass": all(row["memory_pass"] for row in rows.values()) and all(r["throughput_pass"] for r in judged)}


def _fmt(value: object, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def print_corpus(result: dict) -> None:
    print(f"\n{result['corpus']}: {result['path']}")
    print(f"  {result['raw_bytes'] / 2**20:,.1f} MB raw text, {result['tokens']:,} tokens, vocabulary "
          f"{result['vocab_size']:,}, {result['pairs']:,} pairs; --num-proc {result['num_proc']}")
    print(f"  {'stage':<16}{'wall s':>9}{'process s':>11}{'peak MB':>10}{'tree MB':>10}{'raw MB/s':>10}"
          f"{'tokens or pairs/s':>19}")
    for stage, stats in result["stages"].items():
        units = f"{stats['units_per_s']:,} {UNITS[stage][1]}" if stage in UNITS else "-"
        print(f"  {stage:<16}{stats['wall_s']:>9.1f}{stats['process_s']:>11.1f}{stats['peak_memory_mb']:>10,.0f}"
              f"{_fmt(stats.get('tree_peak_mb'), ',.0f'):>10}{stats['raw_mb_per_s']:>10.2f}{units:>19}")
    print(f"  {'total':<16}{result['total_wall_s']:>9.1f}{'':>11}{result['total_peak_memory_mb']:>10,.0f}{'':>10}"
          f"{result['total_raw_mb_per_s']:>10.2f}")
    disk = result["disk"]
    print(f"  disk: prep {disk['prep_bytes'] / 2**20:,.0f} MB, ids {disk['ids_bytes'] / 2**20:,.0f} MB, pairs "
          f"{disk['pairs_bytes'] / 2**20:,.0f} MB; shard bytes per pair {_fmt(disk['shard_bytes_per_pair'], '.3f')}")


def print_comparison(comparison: dict) -> None:
    print(f"\n{comparison['large']} / {comparison['small']} ({comparison['size_ratio']:g}x the raw text): "
          f"peak memory <= {MEMORY_TARGET:g}x, raw MB/s >= {THROUGHPUT_TARGET:g}x")
    print(f"  {'stage':<16}{'memory':>8}{'tree mem':>10}{'':>6}{'MB/s':>8}{'tok|pairs/s':>13}")
    for stage, row in comparison["stages"].items():
        verdict = "-" if row["throughput_pass"] is None else "PASS" if row["throughput_pass"] else "FAIL"
        print(f"  {stage:<16}{row['memory_ratio']:>8.2f}{_fmt(row.get('tree_memory_ratio'), '.2f'):>10}"
              f"{'PASS' if row['memory_pass'] else 'FAIL':>6}{row['throughput_ratio']:>8.2f}"
              f"{_fmt(row.get('units_ratio'), '.2f'):>13}{verdict:>6}")
    print(f"  overall: {'PASS' if comparison['pass'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=CORPORA, help="comma-separated: ru, zipf-x<SCALE> or paths")
    parser.add_argument("--num-proc", type=int, default=NUM_PROC, help="--num-proc of prep.py and convert_to_int.py")
    parser.add_argument("--keep", action="store_true", help="keep bench/work/stages-<name>/ (default: removed)")
    parser.add_argument("--baseline", help="corpus name the others are compared with (default: the smallest)")
    args = parser.parse_args(argv)
    corpora = [resolve(spec.strip()) for spec in args.corpora.split(",") if spec.strip()]
    if not corpora:
        parser.error("--corpora is empty")
    if len({name for name, _ in corpora}) != len(corpora):
        parser.error("two corpora share a name (their data directories would collide)")
    if args.baseline and args.baseline not in {name for name, _ in corpora}:
        parser.error(f"--baseline {args.baseline} is none of --corpora")
    WORK.mkdir(parents=True, exist_ok=True)
    header = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_facts(), "load_average": os.getloadavg()}
    cpu = header["machine"]
    print(f"stages 1-4; {cpu['cpu']}, {cpu['cores']} cores, {cpu['memory_gb']} GB; {header['date']}; "
          f"load average {' '.join(f'{x:.2f}' for x in header['load_average'])}")
    results = []
    for name, path in corpora:
        result = measure(name, path, args.num_proc, args.keep)
        results.append(result)
        print_corpus(result)
    comparisons = []
    if len(results) > 1:
        if args.baseline:
            small = next(result for result in results if result["corpus"] == args.baseline)
        else:
            small = min(results, key=lambda result: result["raw_bytes"])
        for result in results:
            if result is not small:
                comparisons.append(compare(small, result))
                print_comparison(comparisons[-1])
    header["load_average_end"] = os.getloadavg()
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps({**header, "results": results, "comparisons": comparisons}) + "\n")
    print(f"\nappended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
