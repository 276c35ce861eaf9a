"""`make gpu-check`: the pipeline on text8 on a CUDA GPU with each step (the fused Triton kernel where Triton
imports, then the torch step), in a few minutes, and their figures side by side.

    python gpu_check.py                  # on a CUDA machine: what `make gpu-check` runs
    python gpu_check.py --stage-only     # copy text8.zip and eval_en/ from ../shared/data to bench/work/gpu/
    python gpu_check.py --cpu-dry-run    # the same steps on the CPU: first 2M tokens of text8, 1 epoch, dim 100
    TRITON_INTERPRET=1 python gpu_check.py --cpu-dry-run --tokens 20000 --kernels triton,torch \
        --triton-group 64                      # the Triton kernel too, in Triton's interpreter (slow: a small slice)
    python gpu_check.py --loss hs        # hierarchical softmax: its Triton kernel and torch step

Prints, per step, the training pairs/s, the share of the memory-bandwidth bound they reach (bytes per pair of the
step's traffic model x pairs/s / the bandwidth of a device-to-device copy measured here, the card's nominal figure beside
it), the peak GPU memory (torch.cuda.max_memory_allocated) and the scores on eval_en (analogy, WordSim-353,
SimLex-999); all of it also goes to bench/work/gpu-check.json (the torch step's figures at the top level, each
step's under "steps"). Without CUDA it stops with one line.

Made for a bare GPU machine: no network and a python with torch (2.11 or later), numpy, pyarrow, numba, tqdm and
matplotlib, but neither datasets nor gensim nor scipy. So prep.py (which opens every source through datasets) is
replaced by writing its output format directly: text8 is already lower-case words separated by spaces, and it
becomes one document, as prep.py makes of it. The inputs come from bench/work/gpu/ (text8.zip 31 MB and eval_en/
0.6 MB; staged from ../shared/data when that exists), the folder a GPU-day command carries along; the pipeline's
own files go to bench/work/gpu-data/, which is never carried.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

from w2v.common import StageError, fail, peak_memory_mb, run
from w2v.model_card import machine_name

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent / "shared" / "data"  # where the inputs are staged from, when it exists (never on a GPU machine)
WORK = ROOT / "bench" / "work"  # scratch and results (git-ignored)

INPUTS = WORK / "gpu"
DATA = WORK / "gpu-data"
REPORT = WORK / "gpu-check.json"
EVAL_FILES = {"analogy": "questions-words.txt", "wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
# Nominal memory bandwidth (bytes/s) from the vendors' data sheets, by a part of torch's device name.
NOMINAL_BANDWIDTH = {"T4": 320e9, "A100": 1.555e12, "H100 PCIe": 2.0e12, "H100": 3.35e12, "H200": 4.8e12}
COPY_BYTES = {"cuda": 1 << 30, "cpu": 1 << 27}  # the buffer the bandwidth is measured on
COPY_REPEATS = 10


def stage_inputs(inputs: Path, shared: Path) -> None:
    """text8.zip and eval_en/ into `inputs`, copied from `shared` when missing there; stop if neither has them."""
    wanted = [Path("text8.zip")] + [Path("eval_en") / name for name in EVAL_FILES.values()]
    missing = [name for name in wanted if not (inputs / name).exists()]
    if not missing:
        return
    if not all((shared / name).exists() for name in missing):
        fail(f"{inputs / missing[0]} not found, nor in {shared}: run `make gpu-check` (or gpu_check.py "
             f"--stage-only) where ../shared/data exists and carry {_shown(inputs)} along")
    for name in missing:
        (inputs / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / name, inputs / name)
    print(f"staged {', '.join(map(str, missing))} from {shared} into {inputs}")


def _shown(path: Path) -> str:
    """`path` relative to the checkout when inside it (the form a GPU-day command's carry takes)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def write_prep(text8_zip: Path, data_dir: Path, max_tokens: int) -> int:
    """prep.py's output for text8 (one document of its first max_tokens words; 0: all); returns the tokens."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from w2v.common import atomic_output, write_json

    with zipfile.ZipFile(text8_zip) as archive:
        text = archive.read("text8").decode("ascii")
    # text8 starts with a space: trimmed first, or the split's first word would be ""
    words = pc.utf8_split_whitespace(pc.utf8_trim_whitespace(pa.array([text], pa.large_string()))).flatten()
    del text
    if max_tokens:
        words = words[:max_tokens]
    words = words.cast(pa.string())
    document = pa.ListArray.from_arrays(pa.array([0, len(words)], pa.int32()), words)
    with atomic_output(data_dir / "prep") as temp:
        temp.mkdir()
        pq.write_table(pa.table({"tokens": document}), temp / "part-00000.parquet")
    write_json(data_dir / "stats" / "prep.json", {"documents": 1, "tokens": len(words), "source": str(text8_zip)})
    return len(words)


def measure_bandwidth(device) -> float:
    """Bytes/s of a large tensor copy on `device` (each byte read once and written once), best of COPY_REPEATS."""
    import torch

    source = torch.empty(COPY_BYTES[device.type] // 4, dtype=torch.float32, device=device).fill_(1.0)
    target = torch.empty_like(source)
    best = float("inf")
    for repeat in range(COPY_REPEATS + 1):
        if device.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            target.copy_(source)
            stop.record()
            stop.synchronize()
            seconds = start.elapsed_time(stop) / 1e3
        else:
            started = time.perf_counter()
            target.copy_(source)
            seconds = time.perf_counter() - started
        if repeat:  # the first copy warms up
            best = min(best, seconds)
    del source, target
    return 2 * COPY_BYTES[device.type] / best


def nominal_bandwidth(device_name: str) -> float | None:
    for part, bandwidth in NOMINAL_BANDWIDTH.items():  # "H100 PCIe" is tried before "H100"
        if part in device_name:
            return bandwidth
    return None


# Window sizes of step_traffic's windows: 1, 2, ..., 10 over and over (mean 5.5), for word2vec's window 5
# (pairs_dataset.py makes 2b pairs for a drawn b in 1..5, fewer at document edges and after sub-sampling).
WINDOW_SIZES = (1, 10)


def step_traffic(dim: int, negatives: int, micro_batch: int, vocab_size: int = 131_950) -> dict[str, float]:
    """Bytes per pair of train.py's torch skip-gram ns step (the window step: one set of negatives per window,
    drawn on the device), tallied op by op on one micro-batch (w2v/traffic.py: every op reads its inputs and
    writes its outputs, no reuse between ops), and the floor: each row a pair needs (its context's input row and
    its window's share of 1 + negatives output rows) read and written once. The pairs come in windows of 1..10
    pairs in turn (WINDOW_SIZES)."""
    import numpy as np
    import torch

    from w2v.traffic import TrafficCount
    from word2vec import SkipGram

    from unigram_table import build_alias
    from w2v.kernels.torch_steps import sg_window_step_torch as window_step
    from w2v.kernels.torch_steps import window_negatives
    pairs = micro_batch or 8192
    model = SkipGram(vocab_size, dim, seed=1)
    unigram = torch.from_numpy(build_alias(np.ones(vocab_size), 1.0))  # the negatives' alias table
    generator = torch.Generator().manual_seed(2)
    sizes = torch.arange(WINDOW_SIZES[0], WINDOW_SIZES[1] + 1).repeat(pairs // WINDOW_SIZES[0] + 1)
    sizes = sizes[:int(torch.searchsorted(sizes.cumsum(0), pairs)) + 1]
    sizes[-1] -= int(sizes.sum()) - pairs  # the last window ends at the micro-batch's last pair
    window_starts = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    windows = len(sizes)
    target = torch.randint(vocab_size, (windows,), generator=generator, dtype=torch.int32).repeat_interleave(sizes)
    context = torch.randint(vocab_size, (pairs,), generator=generator, dtype=torch.int32)
    with TrafficCount() as count:  # the draw of the negatives counts: train.py's step draws them per batch
        drawn = window_negatives(1, unigram, windows, negatives)
        window_step(model, target[window_starts[:-1]], context, window_starts, drawn, 0.025, 0.025, pairs)
    rows = 1 + (1 + negatives) * windows / pairs
    return {"model": count.bytes / pairs, "floor": 2 * rows * dim * 4, "launches_per_micro_batch": count.launches}


def triton_traffic(dim: int, negatives: int, micro_batch: int = 8192) -> dict[str, float]:
    """Bytes per pair of triton_steps' fused skip-gram ns kernel, tallied from what it reads and writes on the
    windows step_traffic uses (1..10 pairs in turn): per window its window_starts pair and target (16 + 4 bytes),
    its negatives' alias-table entries (8 each), its contexts' ids (4 each), every context row and output row read once
    and written once (an atomic add: read and written at the cache, once to memory), its loss (4); the loss sum
    reads those again. The second pass's re-reads of a window's rows are taken as cache hits (a window's dozen
    rows, read a moment before). Launches per batch: the kernel and the loss sum (the per-window targets are
    gathered on the host)."""
    sizes = list(range(WINDOW_SIZES[0], WINDOW_SIZES[1] + 1))
    pairs = micro_batch or 8192
    total, windows, left = 0, 0, pairs
    while left > 0:
        k = min(sizes[windows % len(sizes)], left)
        total += 16 + 4 + 8 * negatives + 4 * k + 2 * (k + 1 + negatives) * dim * 4 + 4 + 4
        windows += 1
        left -= k
    rows = 1 + (1 + negatives) * windows / pairs
    return {"model": total / pairs, "floor": 2 * rows * dim * 4, "launches_per_micro_batch": 2}


def hs_window_bytes(k: int, path_length: float, dim: int, model: str = "sg") -> float:
    """Bytes a Triton hs kernel moves for one window of k contexts whose target's path has path_length inner
    nodes: its window_starts pair, target and path length (16 + 4 + 8), the path's node ids and bits (4 + 1 a
    node), its contexts' ids (4 each), every context row and node row read once and written once (an atomic add:
    read and written at the cache, once to memory), its loss (4) and the loss sum's read of it (4). sg and cbow
    move the same: CBOW's second read of a context (its dL/dh add after the mean) is taken as a cache hit, as sg's
    second pass is. The root's row counts as any node's: one program, one read and one add."""
    del model  # the same tally for both; kept so a caller says which kernel it means
    return 16 + 4 + 8 + 5 * path_length + 4 * k + 2 * (k + path_length) * dim * 4 + 4 + 4


def triton_hs_traffic(dim: int, mean_path_length: float, model: str = "sg",
                      micro_batch: int = 8192) -> dict[str, float]:
    """Bytes per pair of triton_steps' hs kernels on the windows step_traffic uses (1..10 pairs in turn), each
    window's target taking a path of mean_path_length nodes (the bytes are linear in it, so the mean gives the
    mean); the floor: each context row and each path row read and written once. Launches: the kernel and the loss
    sum."""
    sizes = list(range(WINDOW_SIZES[0], WINDOW_SIZES[1] + 1))
    pairs = micro_batch or 8192
    total, windows, left = 0.0, 0, pairs
    while left > 0:
        k = min(sizes[windows % len(sizes)], left)
        total += hs_window_bytes(k, mean_path_length, dim, model)
        windows += 1
        left -= k
    return {"model": total / pairs, "floor": 2 * (pairs + mean_path_length * windows) * dim * 4 / pairs,
            "launches_per_micro_batch": 2}


def hs_step_traffic(dim: int, tree, target_weights, micro_batch: int) -> dict[str, float]:
    """step_traffic for train.py's torch skip-gram hs step (sg_window_hs_step_torch) on one micro-batch of windows
    of 1..10 pairs in turn, their targets drawn by target_weights (a window per kept token: counts x the
    sub-sampling's keep probability) on `tree`."""
    import numpy as np
    import torch

    from w2v.traffic import TrafficCount
    from word2vec import SkipGram

    from w2v.kernels.torch_steps import sg_window_hs_step_torch as window_step
    pairs = micro_batch or 1024
    vocab_size = tree.vocab_size
    model = SkipGram(vocab_size, dim, seed=1, loss="hs")
    sizes = torch.arange(WINDOW_SIZES[0], WINDOW_SIZES[1] + 1).repeat(pairs // WINDOW_SIZES[0] + 1)
    sizes = sizes[:int(torch.searchsorted(sizes.cumsum(0), pairs)) + 1]
    sizes[-1] -= int(sizes.sum()) - pairs
    window_starts = torch.cat([torch.zeros(1, dtype=torch.int64), sizes.cumsum(0)])
    weights = np.asarray(target_weights, dtype=np.float64)
    rng = np.random.default_rng(2)
    window_target = torch.from_numpy(rng.choice(vocab_size, len(sizes), p=weights / weights.sum()).astype(np.int32))
    context = torch.from_numpy(rng.integers(vocab_size, size=pairs).astype(np.int32))
    with TrafficCount() as count:
        window_step(model, window_target, context, window_starts, tree, 0.025, 0.025, pairs)
    path = float((weights * tree.lengths).sum() / weights.sum())
    return {"model": count.bytes / pairs, "floor": 2 * (pairs + path * len(sizes)) * dim * 4 / pairs,
            "launches_per_micro_batch": count.launches}


def hs_targets(data_dir: Path, sample: float):
    """(tree, target weights, mean path length of a window's target) of the data's Huffman tree: a window per
    kept token, so a target's weight is its count times its keep probability."""

    from w2v.common import load_vocab
    from w2v.draws import keep_probabilities
    from w2v.huffman import huffman_for

    counts = load_vocab(data_dir, with_words=False)[1]
    tree = huffman_for(data_dir, counts)
    weights = counts * keep_probabilities(counts, sample)
    return tree, weights, float((weights * tree.lengths).sum() / weights.sum())


def scores(data_dir: Path, eval_dir: Path) -> dict:
    from evaluate import evaluate_analogies, evaluate_similarity
    from word2vec import load_trained

    words, vectors = load_trained(data_dir)
    analogy = evaluate_analogies(words, vectors, eval_dir / EVAL_FILES["analogy"])["total"]
    found = {"analogy": round(analogy["accuracy"], 4),
             "analogy_support": f"{analogy['scored']}/{analogy['scored'] + analogy['skipped']}"}
    for name in ("wordsim353", "simlex999"):
        result = evaluate_similarity(words, vectors, eval_dir / EVAL_FILES[name])
        found[name], found[f"{name}_support"] = round(result["spearman"], 4), result["support"]
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run every step on the CPU (default there: first 2M tokens, dim 100)")
    parser.add_argument("--stage-only", action="store_true", help="only copy the inputs into --inputs")
    parser.add_argument("--inputs", type=Path, default=INPUTS, help="folder holding text8.zip and eval_en/")
    parser.add_argument("--shared", type=Path, default=SHARED, help="where missing inputs are copied from")
    parser.add_argument("--work", type=Path, default=DATA, help="the pipeline's data folder (replaced)")
    parser.add_argument("--report", type=Path, default=REPORT, help="JSON file of the figures")
    parser.add_argument("--tokens", type=int, default=None, help="first N tokens of text8 (0: all; dry run: 2M)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dim", type=int, default=None, help="embedding size (300; dry run: 100)")
    parser.add_argument("--sample", type=float, default=1e-4, help="pairs_dataset.py --sample")
    parser.add_argument("--micro-batch", type=int, default=None, help="train.py --micro-batch (default: its own)")
    parser.add_argument("--lr", type=float, default=None, help="train.py --lr (default: its own)")
    parser.add_argument("--num-proc", type=int, default=0, help="stage worker processes (0: one per core)")
    parser.add_argument("--kernels", default="", help="train.py --kernel of each run, comma-separated (default: "
                        "triton,torch where the triton step runs on the device, else torch)")
    parser.add_argument("--triton-group", type=int, default=1, help="train.py --triton-group")
    parser.add_argument("--loss", choices=("ns", "hs"), default="ns",
                        help="train.py --loss: negative sampling, or hierarchical softmax (its kernels and tallies)")
    args = parser.parse_args(argv)
    dry = args.cpu_dry_run
    args.tokens = (2_000_000 if dry else 0) if args.tokens is None else args.tokens
    args.dim = (100 if dry else 300) if args.dim is None else args.dim
    args.kernels = [name for name in args.kernels.split(",") if name]
    return args


def default_kernels(device, loss: str = "ns") -> list[str]:
    """triton (where its step runs on the device: CUDA with Triton, or the interpreter), then torch."""
    from w2v.kernels import steps

    spec = steps.STEPS.get(("sg", loss, "triton"))
    return (["triton"] if spec is not None and spec.runs_on(device.type) else []) + ["torch"]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    stage_inputs(args.inputs, args.shared)
    if args.stage_only:
        return {}
    try:
        import torch
    except ImportError:
        fail(f"torch is not installed for {sys.executable}: make gpu-check needs a python with torch")
    if not args.cpu_dry_run and not torch.cuda.is_available():
        fail("CUDA not available: make gpu-check needs an NVIDIA GPU that torch sees "
             "(gpu_check.py --cpu-dry-run runs the same steps on the CPU)")
    device = torch.device("cpu" if args.cpu_dry_run else "cuda")

    import convert_to_int
    import pairs_dataset
    import train
    import unigram_table

    num_proc = str(args.num_proc or os.cpu_count() or 1)
    data_dir = args.work
    if data_dir.exists():
        shutil.rmtree(data_dir)
    common = ["--data-dir", str(data_dir)]
    started = time.perf_counter()
    tokens = write_prep(args.inputs / "text8.zip", data_dir, args.tokens)
    # bench/peers.py's settings for text8 (word2vec.c's defaults), so the scores compare with bench/RESULTS.md
    convert_to_int.main(common + ["--min-count", "5", "--num-proc", num_proc])
    pairs_dataset.main(common + ["--window", "5", "--sample", str(args.sample), "--draws", str(args.epochs),
                                 "--seed", "1", "--num-proc", num_proc])
    unigram_table.main(common)
    prepared_s = time.perf_counter() - started

    bandwidth = measure_bandwidth(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    nominal = nominal_bandwidth(name) if device.type == "cuda" else None
    runs = {}
    for kernel_name in args.kernels or default_kernels(device, args.loss):
        train_args = common + ["--epochs", str(args.epochs), "--dim", str(args.dim), "--kernel", kernel_name,
                               "--device", device.type, "--checkpoint-minutes", "0", "--num-workers", "1",
                               "--triton-group", str(args.triton_group), "--loss", args.loss]
        train_args += ["--micro-batch", str(args.micro_batch)] if args.micro_batch is not None else []
        train_args += ["--lr", str(args.lr)] if args.lr is not None else []
        train_args += ["--self-check", "on"] if kernel_name == "triton" else []  # its verdict printed below
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with SelfCheckLines() as verdict:
            try:
                trained = train.main(train_args)
            except StageError as error:  # the triton step failed its self-check (w2v/kernels/self_check.py)
                if kernel_name != "triton" or not str(error).startswith("self-check:"):
                    raise
                runs[kernel_name] = {"kernel": kernel_name, "self_check": str(error)}
                continue
        peak_device = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        if args.loss == "hs":
            tree, weights, path_length = hs_targets(data_dir, args.sample)
            traffic = (hs_step_traffic(args.dim, tree, weights, trained["hs_micro_batch"]) if kernel_name == "torch"
                       else triton_hs_traffic(args.dim, path_length))
        elif kernel_name == "torch":
            traffic = step_traffic(args.dim, train.NEGATIVES, trained["micro_batch"])
        else:
            traffic = triton_traffic(args.dim, train.NEGATIVES)
        pairs_per_s = trained["pairs_per_s"]
        runs[kernel_name] = {
            "kernel": trained["kernel"], "loss": args.loss,
            "micro_batch": trained["micro_batch"] if args.loss == "ns" else trained["hs_micro_batch"],
            "triton_group": args.triton_group if kernel_name == "triton" else None,
            "vocab_size": trained["vocab_size"], "pairs": trained["pairs"], "train_s": trained["train_s"],
            "pairs_per_s": pairs_per_s,
            "step_bytes_per_pair": round(traffic["model"]), "floor_bytes_per_pair": round(traffic["floor"]),
            "launches_per_micro_batch": traffic["launches_per_micro_batch"],
            "share_of_bandwidth_bound": round(pairs_per_s * traffic["model"] / bandwidth, 4),
            "share_of_floor_bound": round(pairs_per_s * traffic["floor"] / bandwidth, 4),
            "peak_gpu_memory_mb": round(peak_device / 1e6, 1) if peak_device is not None else None,
            "planned_memory_mb": trained["memory_needed_mb"],  # train.py's memory_plan, to hold against the peak
            "final_loss": trained["final_loss"], "self_check": verdict.line,
            **scores(data_dir, args.inputs / "eval_en")}
    # the top level keeps the torch step's figures (the last run's where torch did not run)
    trained_runs = {name: r for name, r in runs.items() if "pairs" in r}
    main_run = trained_runs.get("torch") or list(trained_runs.values())[-1]
    figures = {
        "date": time.strftime("%Y-%m-%d"), "device": name, "torch": torch.__version__,
        "host": {"cpu": machine_name("cpu"), "cores": os.cpu_count()},
        "cpu_dry_run": args.cpu_dry_run, "tokens": tokens, "epochs": args.epochs, "dim": args.dim, **main_run,
        "prepare_s": round(prepared_s, 1), "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "nominal_bandwidth_gb_s": round(nominal / 1e9, 1) if nominal else None,
        "peak_host_memory_mb": round(peak_memory_mb(), 1), "steps": runs,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(figures, indent=1) + "\n")
    print_summary(figures)
    return figures


class SelfCheckLines:
    """Within it, what is printed goes on to stdout, and the last line starting "self-check:" (train.py's verdict
    on its triton step, w2v/kernels/self_check.py) is kept in .line (None: no check ran)."""

    def __enter__(self):
        self.line, self.stdout = None, sys.stdout
        sys.stdout = self
        return self

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith("self-check:"):
                self.line = line
        return self.stdout.write(text)

    def flush(self) -> None:
        self.stdout.flush()

    def __exit__(self, *exc) -> None:
        sys.stdout = self.stdout


def print_summary(f: dict) -> None:
    nominal = f" (nominal {f['nominal_bandwidth_gb_s']:,} GB/s)" if f["nominal_bandwidth_gb_s"] else ""
    dry = " (CPU dry run)" if f["cpu_dry_run"] else ""
    print(f"\ngpu-check {f['date']} on {f['device']}{dry}, torch {f['torch']}: text8 {f['tokens']:,} tokens, "
          f"{f['epochs']} epoch(s), dim {f['dim']}, loss {f['loss']}; bandwidth {f['copy_bandwidth_gb_s']:,} GB/s measured by a "
          f"copy{nominal}")
    print("| step | pairs | pairs/s | bytes/pair (floor) | launches | of its bandwidth bound (of the floor's) | "
          "peak GPU memory MB (train.py planned) | analogy | WordSim-353 | SimLex-999 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in f["steps"].items():
        if "pairs" not in r:  # stopped by its self-check: the verdict below
            continue
        setting = (f"micro-batch {r['micro_batch']}" if r["micro_batch"] else f"group {r['triton_group']}")
        peak = "dry run" if r["peak_gpu_memory_mb"] is None else f"{r['peak_gpu_memory_mb']:,}"
        print(f"| {name} ({setting}) | {r['pairs']:,} | {r['pairs_per_s']:,} | {r['step_bytes_per_pair']:,} "
              f"({r['floor_bytes_per_pair']:,}) | {r['launches_per_micro_batch']} | "
              f"{r['share_of_bandwidth_bound']:.1%} ({r['share_of_floor_bound']:.1%}) | {peak} ({r['planned_memory_mb']:,}) | {r['analogy']:.1%} "
              f"({r['analogy_support']}) | {r['wordsim353']:.3f} | {r['simlex999']:.3f} |")
    for name, r in f["steps"].items():
        if r.get("self_check"):
            print(f"{name}: {r['self_check']}")
    print(f"pairs/s: training only; bytes/pair: each step's traffic model, the torch step's per micro-batch "
          f"(launches per micro-batch), the fused kernel's per batch; peak host memory "
          f"{f['peak_host_memory_mb']:,} MB; whole check {f['wall_s']} s")


if __name__ == "__main__":
    run(main)
