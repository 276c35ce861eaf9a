"""The torch (GPU) step's vectors measured on CPU: train.py's schedule over the same pairs, then the scores.

    .venv/bin/python bench/torch_step.py --corpus text8 --data-dir bench/work/torchstep/text8/data \\
        --kernel shared --group 32 --micro-batch 8192 --lr 0.04          # the lean step, proposed GPU default
    .venv/bin/python bench/torch_step.py ... --kernel torch --micro-batch 65536 --count-power 1 --count-free 256
    .venv/bin/python bench/torch_step.py ... --kernel numba                  # the CPU kernel over the same batches
    .venv/bin/python bench/torch_step.py ... --pairs-limit 14000000          # the first 14M pairs only
    .venv/bin/python bench/torch_step.py --row-counts --data-dir ...         # repeats of a row per micro-batch
    .venv/bin/python bench/torch_step.py --traffic --dim 300 --threads 1     # bytes and launches per pair
    .venv/bin/python bench/torch_step.py --window-speed --data-dir DIR       # window step vs shared step, same pairs

train.py runs the numba kernel on CPU, so this script has its own loop with exactly train.py's schedule: the
learning rate decays linearly over all pairs of all epochs, epoch e reads draw e % draws, the shards in
`dataset.epoch_shards` order, batches of 300K pairs from `dataset.PairsDataset` with draw_negatives=False, and
negatives drawn as train.py's CUDA path draws them (torch.randint on a torch.Generator seeded per shard, over the
unigram table). `--kernel numba` runs the CPU kernel over the same batches with the loader's negatives, as
train.py does on CPU. A loss that turns non-finite stops the run (the vectors are useless from then on) and the
row records where. One JSON line per run is appended to bench/work/torch_step.jsonl.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import load_vocab, read_json  # noqa: E402
from dataset import PairsDataset, draw_pairs, epoch_shards  # noqa: E402
from machine_facts import machine_facts  # noqa: E402
from traffic import TrafficCount  # noqa: E402
from peers import CORPORA, evaluate  # noqa: E402
from vectors_io import save_word2vec_text  # noqa: E402
from word2vec import (SkipGram, sg_window_step_cpu, sg_window_step_torch, sgns_step_cpu,  # noqa: E402
                      sgns_step_shared, sgns_step_torch, shared_negative_groups, window_chunks)

WORK = ROOT / "bench" / "work"
BATCH_SIZE = 300_000  # train.py's BATCH_SIZE
NEGATIVES = 5
MIN_LR_FRACTION = 0.0001  # train.py's floor of the decay
LOSS_EVERY = 16  # train.py's, for the numba kernel


def draw_negatives(table: torch.Tensor, generator: torch.Generator, n_pairs: int, kernel: str, group: int,
                   negatives: int) -> torch.Tensor:
    """train.py's CUDA draw: uniform picks into the unigram table (one set per group for the shared step)."""
    rows = shared_negative_groups(n_pairs, group) if kernel == "shared" else n_pairs
    picks = torch.randint(len(table), (rows, negatives), generator=generator)
    return table[picks]


def train(args: argparse.Namespace) -> dict:
    """train.py's loop with the chosen step; returns the run's figures (and leaves vectors.txt in args.out)."""
    data_dir = args.data_dir
    meta = read_json(data_dir / "pairs" / "meta.json", "pairs_dataset.py")
    words, _ = load_vocab(data_dir)
    pairs_per_draw = draw_pairs(meta)
    total_pairs = sum(pairs_per_draw[epoch % len(pairs_per_draw)] for epoch in range(args.epochs))
    if args.pairs_limit:  # a shorter run: the same schedule, decayed over the first pairs_limit pairs only
        total_pairs = min(total_pairs, args.pairs_limit)
    model = SkipGram(len(words), args.dim, seed=args.seed, words=words)
    table_np = np.load(data_dir / "unigram_table.npy", mmap_mode="c")
    table = torch.as_tensor(np.asarray(table_np))
    generator = torch.Generator()
    input_w, output_w = model.input.weight.data.numpy(), model.output.weight.data.numpy()
    pairs_done, losses, diverged_at = 0, [], None
    norms = []  # (pairs done, largest output-row norm, largest input-row norm) after every batch
    started = time.perf_counter()
    progress = tqdm(total=total_pairs, unit="pair", unit_scale=True, desc=variant_name(args), mininterval=10)
    for epoch in range(args.epochs):
        for shard in epoch_shards(meta, args.seed, epoch):
            dataset = PairsDataset(data_dir, batch_size=BATCH_SIZE, negatives=args.negatives, seed=args.seed,
                                   epoch=epoch, shards=[shard], table=table_np,
                                   draw_negatives=args.kernel == "numba")
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=1)
            generator.manual_seed(args.seed * 1_000_003 + epoch * 10_007 + shard)  # as train.py
            for target, context, negatives, _ in loader:
                n_pairs = int(target.shape[0])
                lr_start = args.lr * max(MIN_LR_FRACTION, 1.0 - pairs_done / total_pairs)
                lr_end = args.lr * max(MIN_LR_FRACTION, 1.0 - (pairs_done + n_pairs) / total_pairs)
                if args.kernel == "numba":
                    loss = sgns_step_cpu(input_w, output_w, target.numpy(), context.numpy(), negatives.numpy(),
                                         lr_start, lr_end, args.threads, LOSS_EVERY)
                else:
                    negatives = draw_negatives(table, generator, n_pairs, args.kernel, args.group, args.negatives)
                    if args.kernel == "torch":
                        loss = sgns_step_torch(model, target, context, negatives, lr_start, lr_end,
                                               args.micro_batch, count_power=args.count_power,
                                               count_free=args.count_free)
                    else:
                        loss = sgns_step_shared(model, target, context, negatives, lr_start, lr_end,
                                                args.micro_batch, args.group, count_power=args.count_power,
                                                count_free=args.count_free, layout=args.layout)
                pairs_done += n_pairs
                progress.update(n_pairs)
                losses.append(loss / n_pairs)
                norms.append((pairs_done, float(model.output.weight.data.norm(dim=1).max()),
                              float(model.input.weight.data.norm(dim=1).max())))
                if not math.isfinite(loss):
                    diverged_at = pairs_done / total_pairs
                    break
                if pairs_done >= min(total_pairs, args.max_pairs or total_pairs):
                    break
            if diverged_at is not None or pairs_done >= min(total_pairs, args.max_pairs or total_pairs):
                break
        if diverged_at is not None or pairs_done >= min(total_pairs, args.max_pairs or total_pairs):
            break
    progress.close()
    train_s = time.perf_counter() - started
    figures = {"pairs": pairs_done, "total_pairs": total_pairs, "train_s": round(train_s, 1),
               "pairs_per_s": round(pairs_done / train_s), "diverged_at": diverged_at,
               "loss_first": losses[0] if losses else None, "loss_last": losses[-1] if losses else None,
               "loss_last10": float(np.mean(losses[-10:])) if losses else None, "norms": norms}
    vectors = model.input.weight.detach().numpy()
    if diverged_at is None and np.isfinite(vectors).all():
        args.out.mkdir(parents=True, exist_ok=True)
        save_word2vec_text(args.out / "vectors.txt", words, vectors)
        figures["scores"] = evaluate(args.corpus, args.out / "vectors.txt")
    return figures


def variant_name(args: argparse.Namespace) -> str:
    if args.kernel == "numba":
        return "numba"
    name = f"{args.kernel} mb{args.micro_batch or BATCH_SIZE}"
    if args.kernel == "shared":
        name += f" g{args.group}" + ("" if args.layout == "block" else " split")
    if args.count_power:
        name += f" p{args.count_power:g}" + (f" free{args.count_free:g}" if args.count_free != 1 else "")
    return name


def row_counts(args: argparse.Namespace) -> dict:
    """How often the most repeated rows occur in one micro-batch, per micro-batch size (first 300K-pair batch)."""
    meta = read_json(args.data_dir / "pairs" / "meta.json", "pairs_dataset.py")
    words, _ = load_vocab(args.data_dir)
    table_np = np.load(args.data_dir / "unigram_table.npy", mmap_mode="c")
    table = torch.as_tensor(np.asarray(table_np))
    dataset = PairsDataset(args.data_dir, batch_size=BATCH_SIZE, negatives=args.negatives, seed=args.seed, epoch=0,
                           shards=epoch_shards(meta, args.seed, 0)[:1], table=table_np, draw_negatives=False)
    target, context, _ = next(iter(dataset))
    negatives = draw_negatives(table, torch.Generator().manual_seed(1), len(target), "torch", 1, args.negatives)
    result = {}
    for micro_batch in (1024, 8192, 32768, 65536, BATCH_SIZE):
        t = target[:micro_batch].long()
        out_ids = torch.cat([context[:micro_batch, None], negatives[:micro_batch]], 1).long().reshape(-1)
        in_counts = torch.bincount(t, minlength=len(words))
        out_counts = torch.bincount(out_ids, minlength=len(words))
        top_out = int(out_counts.argmax())
        top_in = int(in_counts.argmax())
        result[micro_batch] = {"max_input_count": int(in_counts.max()), "top_input_word": words[top_in],
                               "max_output_count": int(out_counts.max()), "top_output_word": words[top_out],
                               "output_rows_seen_over_10x": int((out_counts > 10).sum()),
                               "output_updates_in_rows_over_10x": round(float(out_counts[out_counts > 10].sum()
                                                                              / out_counts.sum()), 3)}
        print(micro_batch, result[micro_batch], flush=True)
    return result


# Ops that only make a new view of the same memory: no kernel runs, nothing is read or written.
def traffic(args: argparse.Namespace) -> dict:
    """Bytes per pair and launches per micro-batch of each variant at args.dim, with the GPU projections."""
    vocab_size, micro_batch = 131_950, 65536  # the Russian corpus's vocabulary
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(vocab_size, (micro_batch,), generator=generator, dtype=torch.int32)
    context = torch.randint(vocab_size, (micro_batch,), generator=generator, dtype=torch.int32)
    result = {}
    for kernel, group, power, layout in [("torch", 1, 0.0, ""), ("torch", 1, 1.0, ""), ("shared", 64, 0.0, "split"),
                                         ("shared", 64, 1.0, "split"), ("shared", 16, 0.0, "block"),
                                         ("shared", 32, 0.0, "block"), ("shared", 64, 0.0, "block"),
                                         ("shared", 32, 1.0, "block"), ("shared", 64, 1.0, "block")]:
        model = SkipGram(vocab_size, args.dim, seed=1)
        rows = shared_negative_groups(micro_batch, group) if kernel == "shared" else micro_batch
        negatives = torch.randint(vocab_size, (rows, args.negatives), generator=generator, dtype=torch.int32)
        with TrafficCount() as count:
            if kernel == "torch":
                sgns_step_torch(model, target, context, negatives, 0.025, 0.025, micro_batch, count_power=power)
            else:
                sgns_step_shared(model, target, context, negatives, 0.025, 0.025, micro_batch, group,
                                 count_power=power, layout=layout)
        per_pair = count.bytes / micro_batch
        launch_bound = {name: micro_batch / (count.launches * 5e-6) for name in ("T4", "H100")}
        name = f"{kernel} g{group} p{power:g} {layout}"
        # multiply-adds per pair of the bmms: (1 + K) rows per pair for torch, (group + K) for the block layout
        result[name] = {"bytes_per_pair": round(per_pair), "launches_per_micro_batch": count.launches,
                        "T4_bandwidth_bound": round(320e9 / per_pair),
                        "H100_bandwidth_bound": round(3.35e12 / per_pair),
                        "launch_bound_at_65536": round(launch_bound["T4"]), "ops": count.ops}
        print(f"{name:<26} {per_pair:>9,.0f} B/pair {count.launches:>4} launches  T4 {320e9 / per_pair / 1e6:6.1f}M  "
              f"H100 {3.35e12 / per_pair / 1e6:6.1f}M  launch-bound {launch_bound['T4'] / 1e6:7.1f}M pairs/s",
              flush=True)
    return result


def window_speed(args: argparse.Namespace) -> dict:
    """The torch window step (train.py --kernel torch on shards of order windows) against the shared step (its
    step on order pairs) and the numba window kernel, on the same batches of a windows draw, interleaved.

    The first --speed-batches 300K-pair batches of epoch 0 are read into memory first (the loader is not timed);
    then each round runs every step once over all of them, each from the same starting tables, the steps in turn,
    --rounds rounds. Also the padding the window step adds at --micro-batch (padded contexts / pairs) and the mean
    window size: what memory_plan's step temporaries are held against.
    """
    meta = read_json(args.data_dir / "pairs" / "meta.json", "pairs_dataset.py")
    if meta.get("order") != "windows":
        raise SystemExit(f"error: {args.data_dir / 'pairs'} is of order {meta.get('order', 'pairs')}, not windows")
    words, _ = load_vocab(args.data_dir)
    table_np = np.load(args.data_dir / "unigram_table.npy", mmap_mode="c")
    table = torch.as_tensor(np.asarray(table_np))
    dataset = PairsDataset(args.data_dir, batch_size=BATCH_SIZE, negatives=args.negatives, seed=args.seed, epoch=0,
                           table=table_np, draw_negatives=False)
    batches = []
    for target, context, _, window_starts in dataset:
        batches.append((target, context, window_starts))
        if len(batches) == args.speed_batches:
            break
    n_pairs = sum(len(target) for target, _, _ in batches)
    n_windows = sum(len(starts) - 1 for _, _, starts in batches)
    padded = 0
    for _, _, starts in batches:
        sizes = (starts[1:] - starts[:-1]).numpy()
        for first, end in window_chunks(starts, args.micro_batch):
            padded += int(sizes[first:end].max()) * (end - first)
    generator = torch.Generator()
    start_model = SkipGram(len(words), args.dim, seed=args.seed, words=words)
    with torch.no_grad():  # trained-looking tables: the scores are not all 0 (the output table starts at 0)
        start_model.output.weight.copy_(torch.randn(start_model.output.weight.shape,
                                                    generator=torch.Generator().manual_seed(1)) * 0.1)
    steps = ["torch window", f"torch shared g{args.group}", "numba window"]
    seconds = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name in steps:
            model = SkipGram(len(words), args.dim, seed=args.seed, words=words)
            model.load_state_dict(start_model.state_dict())
            input_w, output_w = model.input.weight.data, model.output.weight.data
            started = time.perf_counter()
            for batch, (target, context, starts) in enumerate(batches):
                generator.manual_seed(batch)
                if name == "torch window":
                    draws = torch.randint(len(table), (len(starts) - 1, args.negatives), generator=generator)
                    sg_window_step_torch(model, target, context, starts, table[draws], 0.025, 0.025,
                                         args.micro_batch)
                elif name.startswith("torch shared"):
                    draws = torch.randint(len(table), (shared_negative_groups(len(target), args.group),
                                                       args.negatives), generator=generator)
                    sgns_step_shared(model, target, context, table[draws], 0.025, 0.025, args.micro_batch, args.group)
                else:
                    sg_window_step_cpu(input_w.numpy(), output_w.numpy(), target.numpy(), context.numpy(),
                                       starts.numpy(), table_np, args.negatives, 0.025, 0.025, batch, args.threads,
                                       LOSS_EVERY)
            seconds[name].append(time.perf_counter() - started)
            print(f"{name:<18} {n_pairs / seconds[name][-1]:>12,.0f} pairs/s", flush=True)
    best = {name: min(values) for name, values in seconds.items()}
    result = {"pairs": n_pairs, "windows": n_windows, "mean_window": round(n_pairs / n_windows, 3),
              "padded_per_pair": round(padded / n_pairs, 3), "micro_batch": args.micro_batch,
              "rounds": args.rounds, "seconds": seconds,
              "best_pairs_per_s": {name: round(n_pairs / value) for name, value in best.items()},
              "window_over_shared": round(best[f"torch shared g{args.group}"] / best["torch window"], 3)}
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="text8", help="picks the dim and the eval sets")
    parser.add_argument("--data-dir", type=Path, default=WORK / "torchstep" / "text8" / "data")
    parser.add_argument("--kernel", choices=["numba", "torch", "shared"], default="torch")
    parser.add_argument("--micro-batch", type=int, default=8192, help="pairs per update (0 = the whole batch)")
    parser.add_argument("--group", type=int, default=64, help="shared step: pairs sharing one set of negatives")
    parser.add_argument("--layout", choices=["block", "split"], default="block", help="shared step's layout")
    parser.add_argument("--count-power", type=float, default=0.0,
                        help="divide a row's summed gradient by its count in the micro-batch to this power")
    parser.add_argument("--count-free", type=float, default=1.0,
                        help="rows seen at most this many times in a micro-batch keep their summed gradient")
    parser.add_argument("--lr", type=float, default=0.04)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dim", type=int, default=0, help="default: the corpus's (100 text8, 300 ru)")
    parser.add_argument("--negatives", type=int, default=NEGATIVES)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-pairs", type=int, default=0, help="stop after this many pairs (a quick look)")
    parser.add_argument("--pairs-limit", type=int, default=0,
                        help="train on the first this many pairs only, the learning rate decayed over them")
    parser.add_argument("--row-counts", action="store_true", help="repeats of the most frequent rows per micro-batch")
    parser.add_argument("--window-speed", action="store_true",
                        help="the torch window step against the shared step and the numba window kernel, same pairs")
    parser.add_argument("--speed-batches", type=int, default=4, help="--window-speed: 300K-pair batches timed")
    parser.add_argument("--rounds", type=int, default=3, help="--window-speed: rounds of every step")
    parser.add_argument("--traffic", action="store_true",
                        help="bytes per pair and launches per micro-batch of each step at --dim, GPU projections")
    args = parser.parse_args()
    args.dim = args.dim or CORPORA[args.corpus]["dim"]
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    record = {"date": time.strftime("%Y-%m-%d"), "machine": machine_facts(torch=torch.__version__),
              "command": " ".join(sys.argv), "corpus": args.corpus, "data_dir": str(args.data_dir),
              "dim": args.dim, "epochs": args.epochs}
    if args.traffic:
        record["traffic"] = traffic(args)
    elif args.window_speed:
        record.update(micro_batch=args.micro_batch, group=args.group, threads=args.threads,
                      window_speed=window_speed(args))
    elif args.row_counts:
        record["row_counts"] = row_counts(args)
    else:
        name = variant_name(args)
        limit = f"-first{args.pairs_limit // 1_000_000}M" if args.pairs_limit else ""
        run_name = f"{args.corpus}-e{args.epochs}{limit}-{name.replace(' ', '-')}-lr{args.lr:g}"
        args.out = WORK / "torchstep" / "runs" / run_name
        record.update(variant=name, kernel=args.kernel, micro_batch=args.micro_batch, group=args.group,
                      layout=args.layout if args.kernel == "shared" else None,
                      count_power=args.count_power, count_free=args.count_free, lr=args.lr,
                      pairs_limit=args.pairs_limit, **train(args))
        shown = "  ".join(f"{key} {next(v for k, v in score.items() if k != 'support'):.4f}"
                          for key, score in record.get("scores", {}).items())
        print(f"{args.corpus} e{args.epochs}{limit} {name:<24} lr {args.lr:<6g} {record['pairs_per_s']:>9,} pairs/s "
              f"loss {record['loss_last10']:.4f} diverged {record['diverged_at']}  {shown}", flush=True)
    with open(WORK / "torch_step.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
