"""Which starting learning rate gives the best vectors: train.py over the same pairs with each --lr, then evaluate.

    .venv/bin/python bench/lr_sweep.py --corpus text8 --data-dir bench/work/text8-e1/ours/data --lrs 0.0125,0.025,0.05

Takes a data dir that bench/peers.py (or the pipeline) left with pairs/ and unigram_table.npy, trains on it once per
learning rate with the benchmark's settings (dim of the corpus, 2 threads, seed 1, word2vec's linear decay), keeps
nothing but the scores, and prints one row per rate. Appends one JSON line to bench/work/lr_sweep.jsonl.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import CORPORA, SETTINGS, evaluate, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="text8", help="picks the dim and the eval sets")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "work" / "text8-e1" / "ours" / "data")
    parser.add_argument("--lrs", default="0.0125,0.025,0.05", help="starting learning rates, comma-separated")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--loss", choices=["ns", "hs"], default="ns")
    args = parser.parse_args()
    rows = []
    for lr in (float(value) for value in args.lrs.split(",")):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "train.py"), "--data-dir", str(args.data_dir), "--epochs",
                        str(args.epochs), "--dim", str(CORPORA[args.corpus]["dim"]), "--lr", str(lr), "--loss",
                        args.loss, "--threads", str(SETTINGS["workers"]), "--device", "cpu", "--seed", "1"],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stats = json.loads((args.data_dir / "stats" / "train.json").read_text())
        scores = evaluate(args.corpus, args.data_dir / "model" / "vectors.txt")
        rows.append({"lr": lr, "train_s": stats["train_s"], "final_loss": stats["final_loss"], "scores": scores,
                     "wall_s": round(time.perf_counter() - started, 1)})
        shown = "  ".join(f"{name} {next(v for k, v in score.items() if k != 'support'):.4f}"
                          for name, score in scores.items())
        print(f"lr {lr:<8} train {stats['train_s']:7.1f} s  loss {stats['final_loss']:.4f}  {shown}", flush=True)
    with open(ROOT / "bench" / "work" / "lr_sweep.jsonl", "a") as handle:
        handle.write(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine(), "corpus": args.corpus,
                                 "data_dir": str(args.data_dir), "epochs": args.epochs, "loss": args.loss,
                                 "rows": rows}) + "\n")


if __name__ == "__main__":
    main()
