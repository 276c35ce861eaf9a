"""Every stage as `make run ROLLING=1` runs them, on one corpus: wall, memory, disk at peak, throughput.

    .venv/bin/python bench/zipf_corpus.py --scale 75                                  # once: ~1B tokens
    .venv/bin/python bench/billion.py --corpus zipf-x75 --stage prep
    ... --stage convert_to_int, --stage pairs_dataset, --stage unigram_table, --stage train
    ... --stage read_loader, --stage read_feed        # draw 0 read back whole, as CPU / GPU training reads it
    .venv/bin/python bench/billion.py --report                                        # the tables, markdown

One stage per call, so a timed run holds the benchmark lock for one stage at a time; the stages share the data
directory bench/work/billion-<name>/ (kept between calls; delete it when done). The commands are the Makefile's
ROLLING=1 recipe: prep.py --dataset CORPUS, convert_to_int.py, pairs_dataset.py --draws EPOCHS --only-draws 0
--plan-draws 2 (plus --compression COMPRESSION, lz4 unless --compression says), unigram_table.py, train.py --epochs
EPOCHS --rolling-draws.

Reading the draw back (after pairs_dataset): every pair of draw 0, epoch 0's stream, in batches of BATCH_SIZE, with
a step that does nothing, through the reader training uses: read_loader, dataset.py's PairsDataset in a DataLoader
of LOADER_WORKERS worker processes (train.py on the CPU, its --num-workers default), read_feed, w2v/feed.py's
WindowFeed with FEED_READERS reader threads (the fused GPU kernels' feed, here without a device). Each is this
script run as its own stage (`--read-draw`): its pairs, windows and batches counted and checked against
meta.json's pairs of draw 0 (it stops when they differ), wall and pairs/s, CPU seconds of the process and its
DataLoader workers, the time to the first batch.

While a stage runs, a thread samples every SAMPLE_S: the summed resident memory of the stage's process tree and
the largest single process in it (the stage's own peak_memory_mb is its ru_maxrss, which a killed train.py never
writes), and every DISK_SAMPLE_S the bytes under the data directory and the free space of its filesystem: disk
at peak is the largest data-directory size seen (the outputs of earlier stages included).

Training is not run to the end: train.py runs TRAIN_S seconds (longer if no time checkpoint was written yet),
is killed with SIGKILL as a crash would be, then `--resume` runs RESUME_S seconds and is killed the same way.
Its progress bar (tqdm on stderr) is read as it is written and time-stamped here: pairs/s is the slope of
pairs trained against this clock, from WARMUP_S after the first progress (the start-up before it: imports, numba compilation, loading the
checkpoint, skipping what it trained), with and without pauses (checkpoints), split by
whether the rolling draw writer (a pairs_dataset.py child of train.py) was running, since it takes a core.

Records are appended as JSON lines to bench/work/billion.jsonl; --report prints the last record of each (corpus,
stage) as markdown tables, with ratios to the smallest corpus and bytes per vocabulary word per stage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import ROOT, WORK, TreeSampler, machine_facts, run_logged, script_command
from stages import raw_text_bytes, resolve

RESULTS = WORK / "billion.jsonl"

STAGES = ("prep", "convert_to_int", "pairs_dataset", "unigram_table", "train", "read_loader", "read_feed")
EPOCHS = 5  # the Makefile's EPOCHS: pairs_dataset.py --draws and train.py --epochs
COMPRESSION = "lz4"  # pairs_dataset.py --compression: the pipeline's default (zstd: ~40% smaller, --compression)
BATCH_SIZE = 300_000  # pairs per batch read back (dataset.py's BATCH_SIZE, what train.py reads)
LOADER_WORKERS = 1  # read_loader: DataLoader worker processes (dataset.py's NUM_WORKERS, train.py's default)
FEED_READERS = 2  # read_feed: WindowFeed reader threads (bench/loader_feed.py's default)
CHECKPOINT_MINUTES = 3.0  # train.py --checkpoint-minutes: one time checkpoint inside the first run
TRAIN_S = 420.0  # seconds of the first training run before its SIGKILL (at least one checkpoint written first)
RESUME_S = 150.0  # seconds of the --resume run before its SIGKILL
WARMUP_S = 20.0  # seconds after the first progress left out of the pairs/s slope (the loader filling up)
PAUSE_S = 5.0  # a gap this long between progress updates is a pause (checkpoint, wait for a draw), not training
# Nice value of the stage's autogroup (Linux): with sched_autogroup on, a process's nice weighs only against its
# own session's processes, so other sessions' `nice -n 15` work still takes an equal share per session; the stage
# runs in a session of its own, whose group this lowers (negative: needs root; 0 leaves it; None: not tried).
AUTOGROUP_NICE = -15
SAMPLE_S = 0.5  # period of the memory sampling
DISK_SAMPLE_S = 2.0  # period of the disk sampling
# tqdm's bar with unit_scale: "| 45.2M/3.76G [" (n, total); its postfix holds "loss=4.123".
PROGRESS = re.compile(r"\|\s*([\d.]+)([kMGTP]?)/([\d.]+)([kMGTP]?) \[")
LOSS = re.compile(r"loss=([\d.]+)")
SCALE = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
# The stage's own figure that counts its throughput's units.
UNITS = {"prep": ("tokens", "tokens/s"), "convert_to_int": ("corpus_tokens", "tokens/s"),
         "pairs_dataset": ("pairs", "pairs/s"), "unigram_table": ("vocab_size", "words/s"),
         "read_loader": ("pairs", "pairs/s"), "read_feed": ("pairs", "pairs/s")}


def sample(pid: int, data_dir: Path) -> TreeSampler:
    """The stage's memory, the data directory's disk use, and whether train.py's rolling draw writer (a
    pairs_dataset.py below it, which takes a core) runs."""
    return TreeSampler(pid, SAMPLE_S, data_dir, DISK_SAMPLE_S, child_named="pairs_dataset.py")


def stage_command(stage: str, data_dir: Path, corpus: Path, resume: bool = False) -> list[str]:
    """The Makefile's ROLLING=1 command of `stage`, with --data-dir (the read stages: this script's --read-draw)."""
    if stage in ("read_loader", "read_feed"):
        return [sys.executable, str(Path(__file__).resolve()), "--read-draw", str(data_dir), "--stage", stage]
    command = script_command(stage, data_dir)
    if stage == "prep":
        command += ["--dataset", str(corpus)]
    elif stage == "pairs_dataset":
        command += ["--draws", str(EPOCHS), "--only-draws", "0", "--plan-draws", "2", "--compression", COMPRESSION]
    elif stage == "train":
        command += ["--epochs", str(EPOCHS), "--rolling-draws", "--checkpoint-minutes", f"{CHECKPOINT_MINUTES:g}"]
        if resume:
            command.append("--resume")
    return command


def raise_priority(pid: int, nice: int | None = None) -> str | None:
    """Set the autogroup nice of the session `pid` leads; returns what /proc says it is now (None where absent)."""
    nice = AUTOGROUP_NICE if nice is None else nice
    path = Path(f"/proc/{pid}/autogroup")
    try:
        path.write_text(str(nice))
        return path.read_text().strip()
    except OSError:
        return None


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the process (as a crash would), then whatever of its session outlived it."""
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(2)  # children die with their parent (PR_SET_PDEATHSIG); give them the moment
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its own session (start_new_session): only its descendants
    except ProcessLookupError:
        pass


def run_stage(stage: str, data_dir: Path, corpus: Path, log: Path) -> dict:
    """One stage to its end: the sampler's figures, the process's wall time and the stage's stats json."""
    if stage == "pairs_dataset":
        shutil.rmtree(data_dir / "pairs", ignore_errors=True)  # the Makefile's rm -rf before draw 0
    autogroup = []

    def watch(pid: int) -> TreeSampler:
        autogroup.append(raise_priority(pid))
        return sample(pid, data_dir)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    stats, process_s, sampled = run_logged(stage, stage_command(stage, data_dir, corpus), data_dir, log, watch,
                                           new_session=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {"process_s": round(process_s, 2), **sampled, "autogroup": autogroup[0],
               # the stage's processes, waited for (its workers included when it waited for them)
               "cpu_user_s": round(after.ru_utime - before.ru_utime, 1),
               "cpu_system_s": round(after.ru_stime - before.ru_stime, 1),
               "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()]}
    if stage == "pairs_dataset":
        figures["compression"] = COMPRESSION
        figures["draw"] = draw_bytes(data_dir)
    figures["stats"] = stats
    figures["wall_s"] = stats["wall_s"]
    count, unit = UNITS[stage]
    figures["throughput"] = round(stats[count] / max(stats["wall_s"], 1e-9))
    figures["unit"] = unit
    return figures


def draw_bytes(data_dir: Path) -> dict:
    """Draw 0 on disk: its shards' bytes, pairs and kept tokens (meta.json), bytes a pair and a kept token, and the
    parquet column sizes (compressed) a pair."""
    import pyarrow.parquet as pq

    pairs_dir = data_dir / "pairs"
    meta = json.loads((pairs_dir / "meta.json").read_text())
    shards = [shard for shard in meta["shards"] if int(shard["draw"]) == 0]
    files = [pairs_dir / shard["file"] for shard in shards]
    size = sum(path.stat().st_size for path in files)
    pairs = sum(int(shard["pairs"]) for shard in shards)
    kept = int(meta["retained_per_draw"][0])
    rows = sum(int(shard["tokens"]) for shard in shards)  # kept tokens plus the halos
    columns: dict[str, int] = {}
    for path in files:
        footer = pq.ParquetFile(path).metadata
        for group in range(footer.num_row_groups):
            for column in range(footer.num_columns):
                chunk = footer.row_group(group).column(column)
                columns[chunk.path_in_schema] = columns.get(chunk.path_in_schema, 0) + chunk.total_compressed_size
    return {"layout": meta.get("layout"), "shards": len(files), "bytes": size, "pairs": pairs, "kept_tokens": kept,
            "rows": rows, "bytes_per_pair": round(size / max(pairs, 1), 4),
            "bytes_per_kept_token": round(size / max(kept, 1), 4), "pairs_per_kept_token": round(pairs / max(kept, 1), 4),
            "column_bytes_per_pair": {name: round(value / max(pairs, 1), 4) for name, value in columns.items()}}


def recode_draw(data_dir: Path, codec: str) -> dict:
    """Draw 0's shards written again with another codec, as pairs_dataset.py writes them (same rows, schema and
    writer settings), into a scratch folder deleted after: the draw's bytes with that codec, without writing it
    anew (the kept stream is the codec's input either way)."""
    import pyarrow.parquet as pq

    from w2v.layout import SCHEMA

    pairs_dir = data_dir / "pairs"
    meta = json.loads((pairs_dir / "meta.json").read_text())
    shards = [shard for shard in meta["shards"] if int(shard["draw"]) == 0]
    scratch = data_dir / f"recode-{codec}"
    scratch.mkdir(exist_ok=True)
    size = source = 0
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for shard in shards:
            table = pq.read_table(pairs_dir / shard["file"]).cast(SCHEMA)
            target = scratch / shard["file"]
            pq.write_table(table, target, compression=codec, use_dictionary=False, write_statistics=False,
                           row_group_size=1 << 22)  # pairs_dataset.py's writer settings
            size += target.stat().st_size
            source += (pairs_dir / shard["file"]).stat().st_size
            target.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    pairs = sum(int(shard["pairs"]) for shard in shards)
    kept = int(meta["retained_per_draw"][0])
    return {"codec": codec, "shards": len(shards), "bytes": size, "source_bytes": source, "pairs": pairs,
            "kept_tokens": kept, "bytes_per_pair": round(size / max(pairs, 1), 4),
            "bytes_per_kept_token": round(size / max(kept, 1), 4), "ratio_to_source": round(size / max(source, 1), 4),
            "wall_s": round(time.perf_counter() - started, 1), "cpu_s": round(time.process_time() - cpu, 1)}


def read_draw(data_dir: Path, stage: str) -> dict:
    """--read-draw: every pair of draw 0 (epoch 0's stream) read through training's reader, a step that does nothing;
    the counts checked against meta.json; stats/<stage>.json written (see the module docstring)."""
    import torch

    from dataset import PairsDataset
    from w2v.common import SEED, StageReport
    from w2v.feed import WindowFeed

    report = StageReport(stage, data_dir)
    meta = json.loads((data_dir / "pairs" / "meta.json").read_text())
    expected = int(meta["pairs_per_draw"][0])
    cpu_started = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    dataset = PairsDataset(data_dir, batch_size=BATCH_SIZE, seed=SEED, epoch=0)
    if stage == "read_feed":
        workers, stream = FEED_READERS, WindowFeed(dataset.plan, FEED_READERS, "cpu")
    else:
        workers = LOADER_WORKERS
        stream = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=LOADER_WORKERS)
    planned_s = time.perf_counter() - started
    pairs = windows = batches = 0
    first_batch_s = None
    for batch in stream:
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - started
        pairs += batch.n_pairs
        windows += batch.n_windows
        batches += 1
    del stream  # a DataLoader's workers are joined (and so counted in RUSAGE_CHILDREN)
    elapsed = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if pairs != expected or pairs != dataset.num_pairs:
        sys.exit(f"read {pairs:,} pairs; meta.json says {expected:,} for draw 0, the reader's plan {dataset.num_pairs:,}")
    cpu = own.ru_utime + own.ru_stime - cpu_started.ru_utime - cpu_started.ru_stime
    cpu_workers = children.ru_utime + children.ru_stime
    return report.finish(compression=meta.get("compression"), pairs=pairs, meta_pairs=expected, pairs_match=True,
                         windows=windows, batches=batches,
                         batch_size=BATCH_SIZE, workers=workers, plan_s=round(planned_s, 2),
                         first_batch_s=round(first_batch_s or 0.0, 2), read_s=round(elapsed, 2),
                         pairs_per_s=round(pairs / max(elapsed, 1e-9)), cpu_s=round(cpu, 1),
                         cpu_workers_s=round(cpu_workers, 1),
                         cpu_s_per_m_pairs=round((cpu + cpu_workers) / max(pairs, 1) * 1e6, 4),
                         worker_peak_mb=round(children.ru_maxrss / 1024, 1))


class Progress:
    """Reads train.py's stderr as written: tqdm updates time-stamped here, and the lines it prints."""

    def __init__(self, stream, log, sampler_ref: list):
        self.updates: list[tuple[float, float, bool, float | None]] = []  # (time, pairs, writer alive, loss)
        self.lines: list[str] = []
        self.stream, self.log, self.sampler_ref = stream, log, sampler_ref
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = b""
        while True:
            chunk = self.stream.read1(65536) if hasattr(self.stream, "read1") else self.stream.read(65536)
            if not chunk:
                break
            buffer += chunk
            *pieces, buffer = re.split(rb"[\r\n]", buffer)
            now = time.monotonic()
            for piece in pieces:
                text = piece.decode("utf-8", errors="replace")
                match = PROGRESS.search(text)
                if match and text.startswith("train"):
                    pairs = float(match.group(1)) * SCALE[match.group(2)]
                    loss = LOSS.search(text)
                    sampler = self.sampler_ref[0] if self.sampler_ref else None
                    writer = bool(sampler and sampler.child_alive)
                    self.updates.append((now, pairs, writer, float(loss.group(1)) if loss else None))
                elif text.strip():
                    self.lines.append(text)
                    self.log.write(text + "\n")
                    self.log.flush()

    def join(self) -> None:
        self._thread.join(timeout=10)


def rates(updates: list[tuple[float, float, bool, float | None]], started: float) -> dict:
    """pairs/s from the first update that moved plus WARMUP_S on: overall, without the pauses (checkpoints, waits
    for a draw: PAUSE_S or more without an update), and over the intervals with and without the draw writer."""
    moving = next((i for i, update in enumerate(updates) if update[1] > updates[0][1]), None)
    result: dict = {"updates": len(updates)}
    if moving is None:
        return result
    result["first_progress_s"] = round(updates[moving][0] - started, 1)  # start-up: imports, compile, load, skip
    steady = [update for update in updates[moving:] if update[0] - updates[moving][0] >= WARMUP_S]
    if len(steady) < 2:
        return result
    span = steady[-1][0] - steady[0][0]
    result["steady_pairs_per_s"] = round((steady[-1][1] - steady[0][1]) / max(span, 1e-9))
    result["steady_span_s"] = round(span, 1)
    steps = list(zip(steady, steady[1:]))
    paused = sum(after[0] - before[0] for before, after in steps if after[0] - before[0] >= PAUSE_S)
    result["paused_s"] = round(paused, 1)
    result["pairs_per_s_between_pauses"] = round((steady[-1][1] - steady[0][1]) / max(span - paused, 1e-9))
    for label, alive in (("with_writer", True), ("without_writer", False)):
        pairs = seconds = 0.0
        for before, after in steps:
            if before[2] == alive and after[2] == alive and after[0] - before[0] < PAUSE_S:
                pairs += after[1] - before[1]
                seconds += after[0] - before[0]
        if seconds >= 10:
            result[f"pairs_per_s_{label}"] = round(pairs / seconds)
            result[f"seconds_{label}"] = round(seconds, 1)
    # One-minute windows: how steady the rate is (pauses included).
    windows, first = [], steady[0]
    for update in steady[1:]:
        if update[0] - first[0] >= 60:
            windows.append(round((update[1] - first[1]) / (update[0] - first[0])))
            first = update
    result["minute_rates"] = windows
    return result


def run_training(data_dir: Path, corpus: Path, log: Path, seconds: float, resume: bool) -> dict:
    """train.py (or --resume) for `seconds` (longer until a time checkpoint exists), then SIGKILL; its figures."""
    checkpoint = data_dir / "model" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime if checkpoint.exists() else None
    command = stage_command("train", data_dir, corpus, resume)
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        autogroup = raise_priority(process.pid)
        sampler_ref: list = []
        progress = Progress(process.stdout, handle, sampler_ref)
        sampler = sample(process.pid, data_dir)
        sampler_ref.append(sampler)
        deadline = started + seconds
        while process.poll() is None:
            now = time.monotonic()
            written = checkpoint.exists() and checkpoint.stat().st_mtime != before
            if now >= deadline and (resume or written):
                break
            if now >= deadline + 600:  # no checkpoint after ten more minutes: give up
                break
            time.sleep(1)
        ended_by_itself = process.poll() is not None
        killed_at = time.monotonic()
        if not ended_by_itself:
            kill_tree(process)
        progress.join()
        figures = {"process_s": round(killed_at - started, 2), "killed": not ended_by_itself,
                   "returncode": process.returncode, **sampler.stop(),
                   "writer_seen_s": round(sampler.child_seen_s, 1), "autogroup": autogroup}
    updates = progress.updates
    figures.update(rates(updates, started))
    figures["first_pairs"] = updates[0][1] if updates else None
    figures["last_pairs"] = updates[-1][1] if updates else None
    losses = [update[3] for update in updates if update[3] is not None]
    figures["first_loss"], figures["last_loss"] = (losses[0], losses[-1]) if losses else (None, None)
    figures["lines"] = [line for line in progress.lines
                        if line.startswith(("memory:", "resuming", "pairs/ holds", "writing draw", "epoch "))]
    if checkpoint.exists():
        figures["checkpoint_mb"] = round(checkpoint.stat().st_size / 2**20, 1)
        figures["checkpoint_written"] = checkpoint.stat().st_mtime != before
    return figures


def measure(name: str, corpus: Path, stage: str) -> dict:
    data_dir = WORK / f"billion-{name}"
    log = WORK / f"billion-{name}.log"
    if stage == "prep":
        shutil.rmtree(data_dir, ignore_errors=True)  # a fresh run
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {stage} ...", flush=True)
    if stage != "train":
        figures = run_stage(stage, data_dir, corpus, log)
        if stage == "prep":
            figures["raw_bytes"] = raw_text_bytes(corpus)
        print(f"  {figures['wall_s']:.1f} s, {figures['throughput']:,} {figures['unit']}, largest process "
              f"{figures['process_peak_mb']:,.0f} MB, tree {figures['tree_peak_mb']:,.0f} MB, disk at peak "
              f"{figures['disk_peak_mb']:,.0f} MB", flush=True)
        return figures
    shutil.rmtree(data_dir / "model", ignore_errors=True)  # no checkpoint of an earlier run to resume
    first = run_training(data_dir, corpus, log, TRAIN_S, resume=False)
    print(f"  run: {first.get('steady_pairs_per_s', 0):,} pairs/s, killed at {first['last_pairs']:,.0f} pairs, "
          f"loss {first['last_loss']}, largest {first['process_peak_mb']:,.0f} MB, tree {first['tree_peak_mb']:,.0f} "
          f"MB; {first['lines']}", flush=True)
    second = run_training(data_dir, corpus, log, RESUME_S, resume=True)
    print(f"  resume: {second.get('steady_pairs_per_s', 0):,} pairs/s from {second['first_pairs']:,.0f} pairs, "
          f"loss {second['first_loss']} -> {second['last_loss']}; {second['lines']}", flush=True)
    return {"run": first, "resume": second,
            "process_peak_mb": max(first["process_peak_mb"], second["process_peak_mb"]),
            "tree_peak_mb": max(first["tree_peak_mb"], second["tree_peak_mb"]),
            "disk_peak_mb": max(first["disk_peak_mb"], second["disk_peak_mb"]),
            "free_min_gb": min(first["free_min_gb"], second["free_min_gb"]),
            "throughput": first.get("pairs_per_s_with_writer", first.get("steady_pairs_per_s")),
            "unit": "pairs/s (writer running)", "wall_s": first["process_s"] + second["process_s"],
            "train_s": TRAIN_S, "resume_s": RESUME_S, "checkpoint_minutes": CHECKPOINT_MINUTES}


def latest_records() -> dict:
    """{(corpus, stage): the last record} from RESULTS."""
    records = {}
    if RESULTS.exists():
        for line in RESULTS.read_text().splitlines():
            record = json.loads(line)
            records[record["corpus"], record["stage"]] = record
    return records


def report() -> None:
    records = latest_records()
    corpora = sorted({corpus for corpus, _ in records},
                     key=lambda name: records.get((name, "prep"), {}).get("figures", {}).get("stats", {})
                     .get("tokens", 0))
    if not corpora:
        sys.exit(f"no records in {RESULTS}")
    base = corpora[0]
    facts: dict = {}
    for name in corpora:
        prep = records.get((name, "prep"), {}).get("figures", {})
        convert = records.get((name, "convert_to_int"), {}).get("figures", {}).get("stats", {})
        facts[name] = {"tokens": prep.get("stats", {}).get("tokens"), "vocab": convert.get("vocab_size"),
                       "distinct": convert.get("distinct_words")}
        print(f"- {name}: {facts[name]['tokens'] or 0:,} tokens, {facts[name]['distinct'] or 0:,} distinct raw words, "
              f"{facts[name]['vocab'] or 0:,} at min_count 5")
    print("\n| stage | corpus | wall s | CPU s (user + system) | load before / after | largest process MB | tree MB "
          "| disk at peak MB | throughput | x1 ratio | memory / x1 |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for stage in STAGES:
        for name in corpora:
            record = records.get((name, stage))
            if record is None:
                continue
            figures = record["figures"]
            baseline = records.get((base, stage), {}).get("figures", {})
            ratio = figures["throughput"] / baseline["throughput"] if baseline.get("throughput") else None
            memory = figures["process_peak_mb"] / baseline["process_peak_mb"] if baseline else None
            cpu = (f"{figures['cpu_user_s'] + figures['cpu_system_s']:,.1f}" if "cpu_user_s" in figures else "-")
            load = (f"{figures['load_before'][0]:.1f} / {figures['load_after'][0]:.1f}" if "load_before" in figures
                    else "-")
            print(f"| {stage} | {name} | {figures['wall_s']:,.1f} | {cpu} | {load} | {figures['process_peak_mb']:,.0f} | "
                  f"{figures['tree_peak_mb']:,.0f} | {figures['disk_peak_mb']:,.0f} | {figures['throughput']:,} "
                  f"{figures['unit']} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                  f"{'-' if memory is None else f'{memory:.2f}'} |")
    print("\nDraw 0 on disk (pairs_dataset):")
    for name in corpora:
        draw = records.get((name, "pairs_dataset"), {}).get("figures", {}).get("draw")
        if draw:
            columns = ", ".join(f"{column} {value}" for column, value in draw["column_bytes_per_pair"].items())
            print(f"- {name} ({records[name, 'pairs_dataset']['figures'].get('compression')}, {draw['layout']}): "
                  f"{draw['bytes']:,} bytes in {draw['shards']} shards, {draw['pairs']:,} pairs, "
                  f"{draw['kept_tokens']:,} kept tokens: {draw['bytes_per_pair']} bytes a pair, "
                  f"{draw['bytes_per_kept_token']} a kept token, {draw['pairs_per_kept_token']} pairs a kept token "
                  f"(columns a pair: {columns})")
        recoded = [record["figures"] for (corpus, stage), record in records.items()
                   if corpus == name and stage.startswith("recode-")]
        for figures in recoded:
            print(f"  - written again with {figures['codec']}: {figures['bytes']:,} bytes, {figures['bytes_per_pair']} "
                  f"bytes a pair, {figures['bytes_per_kept_token']} a kept token ({figures['ratio_to_source']} of the "
                  f"shards as written)")
    for stage in ("read_loader", "read_feed"):
        for name in corpora:
            stats = records.get((name, stage), {}).get("figures", {}).get("stats")
            if stats:
                print(f"- {stage} {name}: {stats['pairs']:,} pairs (meta.json {stats['meta_pairs']:,}), "
                      f"{stats['windows']:,} windows, {stats['batches']:,} batches in {stats['read_s']} s, "
                      f"{stats['pairs_per_s']:,} pairs/s, first batch after {stats['first_batch_s']} s, CPU "
                      f"{stats['cpu_s']} s + workers {stats['cpu_workers_s']} s ({stats['cpu_s_per_m_pairs']} s "
                      f"per million pairs)")
    print("\nBytes per vocabulary word: growth of the peak (largest process; tree) over the growth of the vocabulary "
          "at min_count 5, between consecutive sizes and from the smallest to the largest:")
    steps = list(zip(corpora, corpora[1:])) + ([(corpora[0], corpora[-1])] if len(corpora) > 2 else [])
    for stage in STAGES:
        row = []
        for small, large in steps:
            a, b = records.get((small, stage)), records.get((large, stage))
            if a and b and facts[large]["vocab"] and facts[small]["vocab"]:
                words = facts[large]["vocab"] - facts[small]["vocab"]
                process = (b["figures"]["process_peak_mb"] - a["figures"]["process_peak_mb"]) * 2**20 / words
                tree = (b["figures"]["tree_peak_mb"] - a["figures"]["tree_peak_mb"]) * 2**20 / words
                row.append(f"{small}->{large}: {process:,.0f}; {tree:,.0f}")
        print(f"- {stage}: {', '.join(row)}")


def main(argv: list[str] | None = None) -> None:
    global TRAIN_S, RESUME_S, CHECKPOINT_MINUTES, AUTOGROUP_NICE, COMPRESSION
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="ru, zipf-x<SCALE> or a path")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--train-s", type=float, default=TRAIN_S, help="seconds of the first training run")
    parser.add_argument("--resume-s", type=float, default=RESUME_S, help="seconds of the --resume run")
    parser.add_argument("--checkpoint-minutes", type=float, default=CHECKPOINT_MINUTES)
    parser.add_argument("--autogroup-nice", type=int, default=AUTOGROUP_NICE,
                        help="nice of the stage's session autogroup (Linux; negative needs root)")
    parser.add_argument("--compression", default=COMPRESSION, help="pairs_dataset.py --compression")
    parser.add_argument("--read-draw", type=Path, metavar="DATA_DIR",
                        help="(the read stages' own process) read DATA_DIR's draw 0 back, as --stage says")
    parser.add_argument("--recode", metavar="CODEC", help="the corpus's draw 0 written again with CODEC (bytes only; "
                        "a record of stage recode-CODEC)")
    parser.add_argument("--report", action="store_true", help="print the tables of bench/work/billion.jsonl")
    args = parser.parse_args(argv)
    if args.report:
        report()
        return
    if args.read_draw:
        read_draw(args.read_draw, args.stage if args.stage in ("read_loader", "read_feed") else "read_loader")
        return
    if args.recode:
        if not args.corpus:
            parser.error("--recode needs --corpus")
        name, _ = resolve(args.corpus)
        figures = recode_draw(WORK / f"billion-{name}", args.recode)
        print(json.dumps(figures))
        with open(RESULTS, "a") as handle:
            handle.write(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_facts(),
                                     "corpus": name, "stage": f"recode-{args.recode}", "figures": figures}) + "\n")
        return
    if not args.corpus or not args.stage:
        parser.error("--corpus and --stage are needed (or --report)")
    TRAIN_S, RESUME_S, CHECKPOINT_MINUTES = args.train_s, args.resume_s, args.checkpoint_minutes
    AUTOGROUP_NICE, COMPRESSION = args.autogroup_nice, args.compression
    name, path = resolve(args.corpus)
    header = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_facts(), "corpus": name,
              "path": str(path), "stage": args.stage}
    figures = measure(name, path, args.stage)
    header["load_average_end"] = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps({**header, "figures": figures}) + "\n")
    print(f"appended to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
