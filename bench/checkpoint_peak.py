"""Peak memory of train.py's checkpoint at the billion-token vocabulary (2,352,631 words, dim 300): the tables,
then check_finite, then save_checkpoint, as train.py does at a checkpoint (bench/RESULTS.md, *A billion tokens*).

    .venv/bin/python bench/checkpoint_peak.py [--vocab 2352631] [--dim 300]    # writes and deletes a checkpoint
"""
import argparse
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import torch, train
from word2vec import SkipGram

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--vocab", type=int, default=2_352_631)
parser.add_argument("--dim", type=int, default=300)
args = parser.parse_args()
vocab, dim = args.vocab, args.dim
path = ROOT / "bench" / "work" / "checkpoint_peak.pt"
path.parent.mkdir(parents=True, exist_ok=True)
base = peak_mb()
model = SkipGram(vocab, dim, seed=1)
tables = sum(p.numel() * 4 for p in model.parameters()) / 2**20
after_init = peak_mb()
t = time.perf_counter(); train.check_finite(model, "checkpoint"); check_s = time.perf_counter() - t
after_check = peak_mb()
cfg = SimpleNamespace(loss="ns", dim=dim, epochs=5, seed=1, lr=0.04, batch_size=300_000, negatives=5)
t = time.perf_counter()
train.save_checkpoint(path, model, {"epoch": 0, "epoch_batches": 1}, [], cfg)
save_s = time.perf_counter() - t
after_save = peak_mb()
print(f"import peak {base:.0f} MiB; tables {tables:.0f} MiB; peak after init {after_init:.0f}, after check_finite "
      f"{after_check:.0f} ({check_s:.1f} s), after save_checkpoint {after_save:.0f} ({save_s:.1f} s); "
      f"checkpoint {path.stat().st_size / 2**20:.0f} MiB")
path.unlink()
