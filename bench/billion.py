"""Every stage as `make run ROLLING=1` runs them, on one corpus: wall, memory, disk at peak, throughput.

    .venv/bin/python bench/zipf_corpus.py --scale 75                                  # once: ~1B tokens
    .venv/bin/python bench/billion.py --corpus zipf-x75 --stage prep
    ... --stage convert_to_int, --stage pairs_dataset, --stage unigram_table, --stage train
    .venv/bin/python bench/billion.py --report                                        # the tables, markdown

One stage per call, so a timed run holds the benchmark lock for one stage at a time; the stages share the data
directory bench/work/billion-<name>/ (kept between calls; delete it when done). The commands are the Makefile's
ROLLING=1 recipe: prep.py --dataset CORPUS, convert_to_int.py, pairs_dataset.py --draws EPOCHS --only-draws 0
--plan-draws 2 (plus --compression COMPRESSION), unigram_table.py, train.py --epochs EPOCHS --rolling-draws.

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

STAGES = ("prep", "convert_to_int", "pairs_dataset", "unigram_table", "train")
EPOCHS = 5  # the Makefile's EPOCHS: pairs_dataset.py --draws and train.py --epochs
COMPRESSION = "zstd"  # pairs_dataset.py --compression (lz4 is the default; zstd is 36% smaller)
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
         "pairs_dataset": ("pairs", "pairs/s"), "unigram_table": ("vocab_size", "words/s")}


def sample(pid: int, data_dir: Path) -> TreeSampler:
    """The stage's memory, the data directory's disk use, and whether train.py's rolling draw writer (a
    pairs_dataset.py below it, which takes a core) runs."""
    return TreeSampler(pid, SAMPLE_S, data_dir, DISK_SAMPLE_S, child_named="pairs_dataset.py")


def stage_command(stage: str, data_dir: Path, corpus: Path, resume: bool = False) -> list[str]:
    """The Makefile's ROLLING=1 command of `stage`, with --data-dir."""
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

    stats, process_s, sampled = run_logged(stage, stage_command(stage, data_dir, corpus), data_dir, log, watch,
                                           new_session=True)
    figures = {"process_s": round(process_s, 2), **sampled, "autogroup": autogroup[0]}
    figures["stats"] = stats
    figures["wall_s"] = stats["wall_s"]
    count, unit = UNITS[stage]
    figures["throughput"] = round(stats[count] / max(stats["wall_s"], 1e-9))
    figures["unit"] = unit
    return figures


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
    print("\n| stage | corpus | wall s | largest process MB | tree MB | disk at peak MB | throughput | x1 ratio "
          "| memory / x1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for stage in STAGES:
        for name in corpora:
            record = records.get((name, stage))
            if record is None:
                continue
            figures = record["figures"]
            baseline = records.get((base, stage), {}).get("figures", {})
            ratio = figures["throughput"] / baseline["throughput"] if baseline.get("throughput") else None
            memory = figures["process_peak_mb"] / baseline["process_peak_mb"] if baseline else None
            print(f"| {stage} | {name} | {figures['wall_s']:,.1f} | {figures['process_peak_mb']:,.0f} | "
                  f"{figures['tree_peak_mb']:,.0f} | {figures['disk_peak_mb']:,.0f} | {figures['throughput']:,} "
                  f"{figures['unit']} | {'-' if ratio is None else f'{ratio:.2f}'} | "
                  f"{'-' if memory is None else f'{memory:.2f}'} |")
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
    global TRAIN_S, RESUME_S, CHECKPOINT_MINUTES, AUTOGROUP_NICE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="ru, zipf-x<SCALE> or a path")
    parser.add_argument("--stage", choices=STAGES)
    parser.add_argument("--train-s", type=float, default=TRAIN_S, help="seconds of the first training run")
    parser.add_argument("--resume-s", type=float, default=RESUME_S, help="seconds of the --resume run")
    parser.add_argument("--checkpoint-minutes", type=float, default=CHECKPOINT_MINUTES)
    parser.add_argument("--autogroup-nice", type=int, default=AUTOGROUP_NICE,
                        help="nice of the stage's session autogroup (Linux; negative needs root)")
    parser.add_argument("--report", action="store_true", help="print the tables of bench/work/billion.jsonl")
    args = parser.parse_args(argv)
    if args.report:
        report()
        return
    if not args.corpus or not args.stage:
        parser.error("--corpus and --stage are needed (or --report)")
    TRAIN_S, RESUME_S, CHECKPOINT_MINUTES = args.train_s, args.resume_s, args.checkpoint_minutes
    AUTOGROUP_NICE = args.autogroup_nice
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
