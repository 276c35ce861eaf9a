"""gpu_check.py (make gpu-check): end to end as a CPU dry run on a small text8-like file, with datasets,
gensim, scipy and pandas made unimportable as on the bare GPU machine; its one-line failures; its traffic model."""
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
import gpu_check  # noqa: E402

ABSENT = ("datasets", "gensim", "scipy", "pandas", "psutil", "sklearn")
BLOCKER = f'''import importlib.util
import sys


class AbsentModules:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {ABSENT!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


# As for a module that is not installed, importlib.util.find_spec answers None (torch probes optional modules so).
_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.partition(".")[0] in {ABSENT!r} else _find_spec(name, package))
sys.meta_path.insert(0, AbsentModules())
'''


def bare_python_env(tmp_path: Path) -> dict:
    """An environment whose python (and every process it spawns) cannot import ABSENT: a sitecustomize on
    PYTHONPATH, which site.py imports at start-up."""
    folder = tmp_path / "bare"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": str(folder)}


def fake_inputs(folder: Path) -> None:
    """text8.zip (one line of lower-case words: 6 topics of 8 words, plus fillers) and eval_en/ files about them."""
    rng = np.random.default_rng(0)
    topics = [[f"t{t}w{w}" for w in range(8)] for t in range(6)]
    fillers = ["the", "of", "and", "in"]
    tokens = []
    for _ in range(2500):
        topic = topics[rng.integers(len(topics))]
        tokens += [topic[i] if rng.random() > 0.2 else fillers[rng.integers(4)] for i in rng.integers(8, size=10)]
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "text8.zip", "w") as archive:
        archive.writestr("text8", " " + " ".join(tokens))
    (folder / "eval_en").mkdir()
    (folder / "eval_en" / "questions-words.txt").write_text(
        ": topics\n" + "".join(f"{a[0]} {a[1]} {b[0]} {b[1]}\n" for a, b in zip(topics, topics[1:])))
    pairs = "".join(f"{a[0]}\t{a[w]}\t9.0\n{a[0]}\t{b[w]}\t1.0\n" for a, b in zip(topics, topics[1:]) for w in (1, 2))
    for name in ("wordsim353.tsv", "simlex999.txt"):
        (folder / "eval_en" / name).write_text("# Word 1\tWord 2\tHuman (mean)\n" + pairs)


def run_check(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "gpu_check.py"), "--inputs", str(tmp_path / "inputs"),
                           "--shared", str(tmp_path / "no-shared"), "--work", str(tmp_path / "work"),
                           "--report", str(tmp_path / "report.json"), *flags],
                          cwd=ROOT, capture_output=True, text=True, env=bare_python_env(tmp_path))


@pytest.mark.slow
def test_cpu_dry_run_end_to_end_without_datasets_or_gensim(tmp_path):
    env = bare_python_env(tmp_path / "probe")  # the blocker works: the check below runs without these
    for name in ABSENT:
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env)
        assert probe.returncode == 1 and f"No module named '{name}'" in probe.stderr
    fake_inputs(tmp_path / "inputs")
    # no sub-sampling and a low rate: 52 words come ~150 times each into an 8,192-pair micro-batch
    done = run_check(tmp_path, "--cpu-dry-run", "--tokens", "0", "--dim", "16", "--num-proc", "1", "--sample", "0",
                     "--lr", "0.006", "--epochs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cpu_dry_run"] and report["device"] == "cpu" and report["kernel"] == "torch"
    assert len(report["date"]) == 10 and report["host"]["cores"] == os.cpu_count()
    assert report["tokens"] == 25_000 and report["vocab_size"] == 6 * 8 + 4 and report["pairs"] > 200_000
    # the window step on windows of 1..10 pairs: 1,490 windows in an 8,192-pair micro-batch; per pair the context's
    # input row and its window's share of 6 output rows, 64 bytes each, read and written once at the floor
    assert report["micro_batch"] == 8192
    assert report["floor_bytes_per_pair"] == round(2 * (1 + 6 * 1490 / 8192) * 16 * 4)
    assert report["step_bytes_per_pair"] > 2 * report["floor_bytes_per_pair"] and report["launches_per_micro_batch"] > 0
    # the report rounds the share to 4 decimals: on a slow machine the share is ~0.004, where that rounding is >1%
    assert report["share_of_bandwidth_bound"] == pytest.approx(
        report["pairs_per_s"] * report["step_bytes_per_pair"] / (report["copy_bandwidth_gb_s"] * 1e9), rel=0.01,
        abs=0.00006)
    assert report["peak_gpu_memory_mb"] is None and report["analogy_support"] == "5/5"
    assert report["planned_memory_mb"] > 0 and "train.py planned" in done.stdout
    assert report["wordsim353_support"] == report["simlex999_support"] == "20/20"
    # the vectors learned the topics: same-topic pairs (9.0) rank above cross-topic ones (1.0)
    assert report["wordsim353"] == report["simlex999"] > 0.8
    assert "pairs/s" in done.stdout and "of its bandwidth bound" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_cpu_dry_run_puts_the_triton_kernel_beside_the_torch_step_in_the_interpreter(tmp_path):
    fake_inputs(tmp_path / "inputs")
    env = {**bare_python_env(tmp_path), "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "gpu_check.py"), "--inputs", str(tmp_path / "inputs"),
                           "--shared", str(tmp_path / "no-shared"), "--work", str(tmp_path / "work"),
                           "--report", str(tmp_path / "report.json"), "--cpu-dry-run", "--tokens", "6000", "--dim",
                           "16", "--num-proc", "1", "--sample", "0", "--triton-group", "64"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    fused, torch_step = report["steps"]["triton"], report["steps"]["torch"]
    assert list(report["steps"]) == ["triton", "torch"] and report["kernel"] == "torch"  # the default: both
    assert fused["kernel"] == "triton" and fused["pairs"] == torch_step["pairs"] > 10_000
    assert fused["launches_per_micro_batch"] == 2 and fused["micro_batch"] is None and fused["triton_group"] == 64
    # the fused kernel moves each row once: within a few index bytes of the floor, a fraction of the torch step's
    assert fused["floor_bytes_per_pair"] < fused["step_bytes_per_pair"] < 1.2 * fused["floor_bytes_per_pair"]
    assert fused["step_bytes_per_pair"] < torch_step["step_bytes_per_pair"] / 2
    assert fused["analogy_support"] == "5/5" and np.isfinite(fused["final_loss"])
    assert "| triton (group 64) |" in done.stdout and "| torch (micro-batch 8192) |" in done.stdout
    # the triton step's self-check ran before it trained (--self-check on), its verdict in the report and printed
    assert fused["self_check"].startswith("self-check: the triton sg ns step") and "equals" in fused["self_check"]
    assert "triton: self-check: the triton sg ns step" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_cpu_dry_run_with_hs_puts_the_triton_hs_kernel_beside_the_torch_hs_step(tmp_path):
    fake_inputs(tmp_path / "inputs")
    env = {**bare_python_env(tmp_path), "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "gpu_check.py"), "--inputs", str(tmp_path / "inputs"),
                           "--shared", str(tmp_path / "no-shared"), "--work", str(tmp_path / "work"),
                           "--report", str(tmp_path / "report.json"), "--cpu-dry-run", "--tokens", "6000", "--dim",
                           "16", "--num-proc", "1", "--sample", "0", "--triton-group", "64", "--loss", "hs"],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    fused, torch_step = report["steps"]["triton"], report["steps"]["torch"]
    assert list(report["steps"]) == ["triton", "torch"] and report["loss"] == fused["loss"] == "hs"
    assert fused["kernel"] == "triton" and fused["pairs"] == torch_step["pairs"] > 10_000
    assert fused["launches_per_micro_batch"] == 2 and torch_step["micro_batch"] == 1024  # --hs-micro-batch
    # 52 words: paths of ~5.7 nodes; the fused kernel within index bytes of the floor, under the torch step's
    assert fused["floor_bytes_per_pair"] < fused["step_bytes_per_pair"] < 1.3 * fused["floor_bytes_per_pair"]
    assert fused["step_bytes_per_pair"] < torch_step["step_bytes_per_pair"] / 2
    assert fused["analogy_support"] == "5/5" and np.isfinite(fused["final_loss"])
    assert "| triton (group 64) |" in done.stdout and "| torch (micro-batch 1024) |" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_one_line_and_exit_2(tmp_path):
    fake_inputs(tmp_path / "inputs")
    done = run_check(tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: CUDA not available: make gpu-check needs an NVIDIA GPU that torch "
                                        "sees (gpu_check.py --cpu-dry-run runs the same steps on the CPU)"]
    assert not (tmp_path / "work").exists()


@pytest.mark.slow
def test_inputs_are_staged_or_named_when_missing(tmp_path):
    fake_inputs(tmp_path / "shared")
    gpu_check.stage_inputs(tmp_path / "inputs", tmp_path / "shared")
    assert (tmp_path / "inputs" / "text8.zip").read_bytes() == (tmp_path / "shared" / "text8.zip").read_bytes()
    assert (tmp_path / "inputs" / "eval_en" / "simlex999.txt").exists()
    (tmp_path / "inputs" / "eval_en" / "wordsim353.tsv").unlink()
    done = run_check(tmp_path, "--stage-only")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: {tmp_path}/inputs/eval_en/wordsim353.tsv not found, nor in {tmp_path}/no-shared: run `make "
        f"gpu-check` (or gpu_check.py --stage-only) where ../shared/data exists and carry "
        f"{tmp_path}/inputs along"]

@pytest.mark.slow
def test_traffic_model_and_nominal_bandwidth():
    # dim 300, 5 negatives, windows of 1, 2, ..., 10 pairs, the last cut at the micro-batch's end (188 in 1,024
    # pairs): per pair its context's input row and its window's share of 6 output rows of 1,200 bytes
    windows = gpu_check.step_traffic(300, 5, 1024, vocab_size=5000)
    assert windows["floor"] == pytest.approx(2 * (1 + 6 * 188 / 1024) * 1200)
    # the gathers alone read and write every row a pair uses: the model is never below the floor
    assert windows["model"] > 2 * windows["floor"] and windows["launches_per_micro_batch"] > 0
    # more negatives per window: more rows moved per pair
    assert gpu_check.step_traffic(300, 15, 1024, vocab_size=5000)["model"] > windows["model"]
    assert gpu_check.nominal_bandwidth("Tesla T4") == 320e9
    assert gpu_check.nominal_bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12
    assert gpu_check.nominal_bandwidth("NVIDIA H100 PCIe") == 2.0e12
    assert gpu_check.nominal_bandwidth("NVIDIA H200") == 4.8e12
    assert gpu_check.nominal_bandwidth("NVIDIA GeForce RTX 4090") is None
