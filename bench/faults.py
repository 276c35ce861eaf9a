"""Fault injection: each stage SIGKILLed at random moments, then run again; the invariants below checked each time.

    .venv/bin/python bench/faults.py                                  # 20 kills per stage, bench/work/faults/
    .venv/bin/python bench/faults.py --kills 3 --stages prep,train    # a quick look
    .venv/bin/python bench/faults.py --stages train --after-first-write --span 0,0.5   # kills mid-training

A small corpus is generated (Zipf-distributed made-up Cyrillic words, punctuation, digits, and a few bytes that
are not UTF-8), and the five stages (prep, convert_to_int, pairs_dataset, unigram_table, train) run once
uninterrupted: the reference. Then, stage by stage, in a copy of the reference data directory, the stage is
started as a user starts it, in its own session, and its main process is SIGKILLed after a random delay
(uniform over --span, by default 5%..100%, of the reference run's wall time, seeded), its workers left to the kernel; then it runs
again (train with --resume when a checkpoint is there). Settings are small (many parts, shards and checkpoints)
so that kills land while outputs are being written. With --after-first-write the delay counts from the moment
the run's first output or checkpoint appears (polled every 10 ms), which aims kills past imports and JIT whatever
the machine's load. Trials alternate between a stage with no earlier output and
a stage over the output of the trial before.

Invariants, checked after every kill:
- nothing half-done looks finished: each output of the stage is either absent or identical to the reference
  (for train: the final vectors; a checkpoint.pt left behind must load);
- no process of the killed run (its session) is alive, zombies aside, one second after the kill;
- after the next run, no temporary (`.NAME.tmp-PID`, `.NAME.old-PID`) is left anywhere in the data directory;
- the next run's outputs are identical to the reference: every file byte for byte for stages 1-4 (stats/*.json
  aside: they hold timings), the final vectors (embeddings.npy, vectors.txt, vectors.bin) bit for bit for train,
  which runs with --threads 1.

Counts per stage are printed and appended as JSON lines to bench/work/faults.jsonl (with the machine and date);
bench/test_faults.py runs a short version in CI. Exit status 1 when an invariant was broken.
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
import time
from pathlib import Path

import numpy as np
from benchlib import ROOT, WORK, machine_facts, script_command

STAGES = ("prep", "convert_to_int", "pairs_dataset", "unigram_table", "train")
# Each stage's settings: several workers, parts, shards and checkpoints for kills to land among.
STAGE_ARGS = {
    "prep": ["--dataset", "{corpus}", "--num-proc", "2", "--docs-per-part", "200"],
    "convert_to_int": ["--num-proc", "2", "--min-count", "2"],
    "pairs_dataset": ["--num-proc", "2", "--draws", "3", "--pairs-per-shard", "60000", "--row-group-pairs", "15000",
                      "--chunk-tokens", "20000"],
    "unigram_table": [],
    "train": ["--epochs", "2", "--dim", "24", "--threads", "1", "--num-workers", "1", "--batch-size", "20000",
              "--device", "cpu", "--neighbour-words"],
}
# What each stage writes, relative to the data directory; checked against the reference.
OUTPUTS = {
    "prep": ["prep"],
    "convert_to_int": ["vocab.json", "ids"],
    "pairs_dataset": ["pairs"],
    "unigram_table": ["unigram_alias.npy"],
    "train": ["model/embeddings.npy", "model/vectors.txt", "model/vectors.bin"],
}
CHECKPOINT = "model/checkpoint.pt"
TEMPORARY = re.compile(r"\..+\.(?:tmp|old)-\d+")
MOMENTS = ("before writing", "while writing", "between writes", "after it ended")
GRACE_S = 1.0  # the killed run's processes must be gone this long after the kill


def make_corpus(path: Path, documents: int = 3000, seed: int = 7) -> Path:
    """One text per line: Zipf-distributed made-up words with punctuation, digits and a few invalid UTF-8 bytes."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё"))
    types = 4000
    lengths = np.minimum(2 + rng.poisson(np.linspace(1, 8, types)), 14)
    vocabulary = np.array(["".join(rng.choice(letters, n)) for n in lengths])
    weights = 1.0 / (np.arange(types) + 2.7) ** 1.05
    words = rng.choice(vocabulary, size=(documents, 60), p=weights / weights.sum())
    lines = []
    for row, count in zip(words, rng.integers(5, 60, documents)):
        text = " ".join(row[:count]).encode()
        if rng.random() < 0.3:
            text += b", 42 -- " + " ".join(row[-3:]).encode()
        if rng.random() < 0.01:
            text += b" \xff\xfe " + row[0].encode()  # web text has such bytes
        lines.append(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def stage_command(stage: str, data_dir: Path, corpus: Path, resume: bool = False) -> list[str]:
    args = [arg.format(corpus=corpus) for arg in STAGE_ARGS[stage]]
    return script_command(stage, data_dir, *args, *(["--resume"] if resume else []))


def run_stage(stage: str, data_dir: Path, corpus: Path, log: Path, resume: bool = False) -> float:
    """Run a stage to its end; its wall time. RuntimeError when it fails."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        done = subprocess.run(stage_command(stage, data_dir, corpus, resume), stdout=out, stderr=subprocess.STDOUT,
                              cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{stage} exited {done.returncode}: see {log}")
    return time.perf_counter() - started


def session_processes(session: int) -> list[tuple[int, str]]:
    """(pid, command) of the processes of a session that are not zombies."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[3]) == session and fields[0] != "Z":  # state, ppid, pgrp, session
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def temporaries(data_dir: Path) -> list[Path]:
    return sorted(path for path in data_dir.rglob(".*") if TEMPORARY.fullmatch(path.name))


def files_of(path: Path) -> dict[str, bytes] | None:
    """Relative name -> content of a file or of every file under a directory; None when absent."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def differences(data_dir: Path, reference: Path, outputs: list[str], absent_ok: bool) -> list[str]:
    """The outputs that differ from the reference (or are absent, unless absent_ok)."""
    found = []
    for name in outputs:
        ours, theirs = files_of(data_dir / name), files_of(reference / name)
        if ours is None and absent_ok:
            continue
        if ours != theirs:
            found.append(name if ours is None or theirs is None else
                         f"{name} ({sorted(set(ours) ^ set(theirs)) or [k for k in ours if ours[k] != theirs[k]]})")
    return found


def checkpoint_loads(path: Path) -> bool:
    import torch

    try:
        torch.load(path, map_location="cpu")
        return True
    except Exception:  # a truncated or half-written checkpoint, whatever torch says about it
        return False


def first_write(process: subprocess.Popen, data_dir: Path, names: list[str], since: float) -> None:
    """Wait until one of `names` under data_dir was written after `since`, or the process ended."""
    while process.poll() is None:
        if any((data_dir / name).exists() and (data_dir / name).stat().st_mtime >= since for name in names):
            return
        time.sleep(0.01)


def kill_trial(stage: str, data_dir: Path, reference: Path, corpus: Path, delay: float, log: Path,
               after_first_write: bool = False) -> dict:
    """Start the stage, SIGKILL its main process after `delay` s, check, run it again, check. Returns the record."""
    record = {"stage": stage, "delay_s": round(delay, 2), "violations": []}
    written = OUTPUTS[stage] + ([CHECKPOINT] if stage == "train" else [])
    started = time.time()
    with open(log, "ab") as out:
        process = subprocess.Popen(stage_command(stage, data_dir, corpus), stdout=out, stderr=subprocess.STDOUT,
                                   cwd=ROOT, start_new_session=True)
        if after_first_write:
            first_write(process, data_dir, written, started)
        try:
            process.wait(timeout=delay)
            record["moment"] = "after it ended"
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            # Where the kill landed: a temporary left (while writing one), an output or checkpoint already
            # replaced (between writes), neither (before writing: imports, reading, computing).
            replaced = any((data_dir / name).exists() and (data_dir / name).stat().st_mtime >= started
                           for name in written)
            record["moment"] = ("while writing" if temporaries(data_dir) else
                                "between writes" if replaced else "before writing")
    time.sleep(GRACE_S)
    alive = session_processes(process.pid)
    if alive:
        record["violations"].append(f"alive {GRACE_S:g} s after the kill: {alive}")
        for pid, _ in alive:  # do not let them disturb the next trials
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    partial = differences(data_dir, reference, OUTPUTS[stage], absent_ok=True)
    if partial:
        record["violations"].append(f"finished-looking output differs after the kill: {partial}")
    resume = stage == "train" and (data_dir / CHECKPOINT).exists()
    if resume and not checkpoint_loads(data_dir / CHECKPOINT):
        record["violations"].append("checkpoint.pt left by the kill does not load")
    record["resumed"] = resume
    try:
        run_stage(stage, data_dir, corpus, log, resume=resume)
    except RuntimeError as error:
        record["violations"].append(f"the next run failed: {error}")
        return record
    left = temporaries(data_dir)
    if left:
        record["violations"].append(f"temporaries left after the next run: {[str(p) for p in left]}")
    wrong = differences(data_dir, reference, OUTPUTS[stage], absent_ok=False)
    if wrong:
        record["violations"].append(f"outputs of the next run differ from the reference: {wrong}")
    return record


def run_faults(work: Path, stages: list[str], kills: int, seed: int = 13, documents: int = 3000,
               echo: bool = True, span: tuple[float, float] = (0.05, 1.0), after_first_write: bool = False) -> dict:
    """The reference run, then `kills` trials per stage; {"reference_s", "stages": {stage: counts}, "records"}."""
    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    corpus = make_corpus(work / "corpus.txt", documents)
    reference = work / "reference"
    log = work / "stages.log"
    wall = {stage: run_stage(stage, reference, corpus, log) for stage in STAGES}
    if echo:
        print("reference run: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in wall.items()), flush=True)
    rng = np.random.default_rng(seed)
    records, summary = [], {}
    for stage in stages:
        data_dir = work / stage
        shutil.copytree(reference, data_dir)
        for trial in range(kills):
            fresh = trial % 2 == 0  # else over the output the trial before left (identical to the reference)
            for name in OUTPUTS[stage] + ([CHECKPOINT] if stage == "train" else []):
                if fresh or name == CHECKPOINT:  # a train run without --resume starts over anyway
                    path = data_dir / name
                    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            delay = float(rng.uniform(*span)) * wall[stage]
            record = kill_trial(stage, data_dir, reference, corpus, delay, log, after_first_write)
            record["earlier_output"] = not fresh
            records.append(record)
            if echo:
                print(f"{stage} kill {trial + 1}/{kills} at {delay:.2f} s ({record['moment']}"
                      f"{', resumed' if record.get('resumed') else ''}): "
                      f"{'; '.join(record['violations']) or 'ok'}", flush=True)
        mine = [r for r in records if r["stage"] == stage]
        summary[stage] = {"kills": len(mine), "ok": sum(not r["violations"] for r in mine),
                          **{moment: sum(r["moment"] == moment for r in mine)
                             for moment in MOMENTS},
                          "resumed": sum(bool(r.get("resumed")) for r in mine),
                          "reference_s": round(wall[stage], 2)}
        shutil.rmtree(data_dir)
    return {"reference_s": {k: round(v, 2) for k, v in wall.items()}, "stages": summary, "records": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per stage")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages to kill")
    parser.add_argument("--seed", type=int, default=13, help="seed of the kill moments")
    parser.add_argument("--documents", type=int, default=3000, help="texts in the generated corpus")
    parser.add_argument("--span", default="0.05,1.0",
                        help="kill moments: uniform over this range, in fractions of the reference run's wall time")
    parser.add_argument("--after-first-write", action="store_true",
                        help="count the delay from the run's first output or checkpoint, not from its start")
    parser.add_argument("--work", default=str(WORK / "faults"), help="scratch folder")
    args = parser.parse_args()
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}: choose among {', '.join(STAGES)}")
    facts = machine_facts()
    started = time.perf_counter()
    span = tuple(float(x) for x in args.span.split(","))
    if len(span) != 2 or not 0 <= span[0] <= span[1]:
        parser.error(f"--span must be LOW,HIGH with 0 <= LOW <= HIGH, got {args.span!r}")
    result = run_faults(Path(args.work), stages, args.kills, args.seed, args.documents, span=span,
                        after_first_write=args.after_first_write)
    print(f"\n{'stage':<16} {'kills':>5} {'ok':>3} " + " ".join(f"{m:>14}" for m in MOMENTS) + "  resumed")
    for stage, counts in result["stages"].items():
        print(f"{stage:<16} {counts['kills']:>5} {counts['ok']:>3} "
              + " ".join(f"{counts[m]:>14}" for m in MOMENTS) + f" {counts['resumed']:>8}")
    line = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": facts,
            "command": " ".join(["bench/faults.py", *sys.argv[1:]]), "total_s": round(time.perf_counter() - started),
            **result}
    WORK.mkdir(exist_ok=True)
    with open(WORK / "faults.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    broken = [r for r in result["records"] if r["violations"]]
    print(f"{len(result['records'])} kills, {len(broken)} with a broken invariant; {line['total_s']} s")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
