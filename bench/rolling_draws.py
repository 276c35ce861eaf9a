"""Rolling draws against all draws on disk: peak disk of pairs/, wall times and scores (bench/RESULTS.md).

    .venv/bin/python bench/rolling_draws.py --data-dir bench/work/rolling/data --epochs 3 --dim 100

DATA_DIR must hold prep/, ids/, vocab.json and unigram_table.npy (prep.py, convert_to_int.py, unigram_table.py).
Each variant writes pairs/ anew and trains: "all" runs pairs_dataset.py --draws EPOCHS then train.py; "rolling"
runs pairs_dataset.py --draws EPOCHS --only-draws 0 --plan-draws 2 then train.py --rolling-draws (what
`make run ROLLING=1` does). A thread sums the bytes of every file under pairs/ (staging folders included) every
SAMPLE_SECONDS; the vectors are scored by evaluate.py. Results go to DATA_DIR/../rolling_draws.json.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import parse_config, run  # noqa: E402

DATA_DIR = "bench/work/rolling/data"  # stage outputs of the corpus (prep/, ids/, vocab.json, unigram_table.npy)
EPOCHS = 3  # epochs, and draws (one per epoch)
DIM = 100  # embedding size
COMPRESSION = "zstd"  # codec of the shards
THREADS = 2  # train.py --threads
VARIANTS = ["all", "rolling"]  # which designs to run, in order
SAMPLE_SECONDS = 0.5  # interval of the pairs/ size samples
EVAL_DIR = "../shared/data/eval"  # SimLex965 and hj


def tree_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # deleted or renamed while walked
            pass
    return total


class DiskSampler(threading.Thread):
    def __init__(self, folder: Path, every: float):
        super().__init__(daemon=True)
        self.folder, self.every, self.peak, self.stopping = folder, every, 0, threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.peak = max(self.peak, tree_bytes(self.folder))
            self.stopping.wait(self.every)

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        self.peak = max(self.peak, tree_bytes(self.folder))
        return self.peak


def timed(command: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as handle:
        result = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed: see {log}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    data_dir = (ROOT / cfg.data_dir).resolve()
    out = data_dir.parent
    python = sys.executable
    pairs_dir, model_dir = data_dir / "pairs", data_dir / "model"
    results: dict = {"epochs": cfg.epochs, "dim": cfg.dim, "compression": cfg.compression, "variants": {}}
    for variant in cfg.variants:
        shutil.rmtree(pairs_dir, ignore_errors=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        pairs_cmd = [python, "pairs_dataset.py", "--data-dir", str(data_dir), "--draws", str(cfg.epochs),
                     "--compression", cfg.compression]
        train_cmd = [python, "train.py", "--data-dir", str(data_dir), "--epochs", str(cfg.epochs), "--dim",
                     str(cfg.dim), "--threads", str(cfg.threads)]
        if variant == "rolling":
            pairs_cmd += ["--only-draws", "0", "--plan-draws", "2"]
            train_cmd += ["--rolling-draws"]
        sampler = DiskSampler(pairs_dir, cfg.sample_seconds)
        sampler.start()
        pairs_s = timed(pairs_cmd, out / f"{variant}-pairs.log")
        after_pairs = tree_bytes(pairs_dir)
        train_s = timed(train_cmd, out / f"{variant}-train.log")
        peak = sampler.stop()
        import torch  # only here: the schedule's total kept in the checkpoint
        checkpoint = torch.load(model_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
        checkpoint_total = checkpoint["position"].get("total_pairs")
        pairs_done = checkpoint["position"]["pairs_done"]
        kept = out / f"model-{variant}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(model_dir, kept)
        eval_json = out / f"{variant}-eval.json"
        eval_dir = (ROOT / cfg.eval_dir).resolve()
        timed([python, "evaluate.py", "--vectors", str(kept / "vectors.txt"), "--similarity",
               str(eval_dir / "ru_simlex965.tsv"), str(eval_dir / "hj.csv"), "--json", str(eval_json)],
              out / f"{variant}-eval.log")
        results["variants"][variant] = {
            "pairs_s": round(pairs_s, 1), "train_s": round(train_s, 1), "peak_pairs_bytes": peak,
            "pairs_bytes_after_pairs_stage": after_pairs, "pairs_bytes_at_end": tree_bytes(pairs_dir),
            "schedule_total_pairs": checkpoint_total, "pairs_trained": pairs_done,
            "eval": json.loads(eval_json.read_text())}
        print(variant, json.dumps(results["variants"][variant]["eval"])[:300], flush=True)
        print(variant, {k: v for k, v in results["variants"][variant].items() if k != "eval"}, flush=True)
    (out / "rolling_draws.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    run(main)
