"""Where CPU training time goes: pairs/s of the data path, the fused numba step, the batched torch step (with a
breakdown of its parts) and the seed's autograd + sparse-optimiser approach, for each embedding size.

    nice -n 19 .venv/bin/python bench/profile_train.py                           # dims 100,300; 3M pairs each
    nice -n 19 .venv/bin/python bench/profile_train.py --dims 300 --pairs 600000 # a quicker look

Every measurement trains on the same pairs: the first --pairs pairs (rounded up to whole batches) of the epoch-0
stream of `dataset.PairsDataset` over --data-dir. Before each one the tables are reset to the same state:
initialised like `word2vec.SkipGram(vocab, dim, seed=1)`, then trained by `sgns_step_cpu` on PRETRAIN_PAIRS pairs
of the epoch-1 stream (another draw), so the scores are those of a model in training: with word2vec.c's zero
output table every score would be 0 and no sigmoid would saturate.

Measured (wall time, time.perf_counter; ops run synchronously on the CPU, so each time is the op's own):
1. data path: PairsDataset iteration alone, without negatives (parquet read + int32 tensors), then with them;
   the difference is the cost of drawing negatives. One untimed pass first, so both read from the page cache.
2. `sgns_step_cpu`, the fused numba kernel train.py runs on CPU, with loss_every 1 and 16 (train.py's default).
3. `sgns_step_torch` with MICRO_BATCH pairs per update, and its parts timed separately on the first batch, the
   same ops in the same order (ids, gather, scores, loss, sigmoid, gradient products, scatter = the SGD update).
4. autograd: `SkipGram.forward` (sparse embeddings) + backward + torch.optim.SparseAdam or torch.optim.SGD, on
   AUTOGRAD_BATCHES batches only (slow, and several GB at dim 300): forward, backward, optimiser step.

Each row shows M pairs/s (for a part: the rate if that part were all the work), ns per pair, and its share of
the reference: the CPU step train.py runs, `sgns_step_cpu` with loss_every=16. Parts also show their share of
their own method's time. One JSON line per run is appended to --jsonl (machine, load average, date, figures).
Numbers move with whatever else runs on the machine: the load averages before and after are recorded.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch
from machine_facts import machine_facts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the pipeline modules live in the repository root

from common import load_vocab  # noqa: E402
from dataset import PairsDataset  # noqa: E402
from word2vec import MAX_SCORE, SkipGram, sgns_step_cpu, sgns_step_torch  # noqa: E402

DATA_DIR = ROOT / "bench" / "work" / "text8-e5" / "ours" / "data"  # has pairs/ and unigram_table.npy
JSONL = ROOT / "bench" / "work" / "profile_train.jsonl"  # one JSON line appended per run
DIMS = "100,300"  # embedding sizes, comma-separated
PAIRS = 3_000_000  # pairs per measurement (rounded up to whole batches)
THREADS = 2  # numba and torch threads (the 2-core CPU)
BATCH_SIZE = 300_000  # pairs per batch, as train.py
NEGATIVES = 5  # negatives per pair
MICRO_BATCH = 8192  # torch step: pairs per update, train.py's default
LR = 0.025  # word2vec.c's starting rate; kept constant, the decay does not change the work
SEED = 1  # seed of the tables, the shard order and the negatives, as train.py
PRETRAIN_PAIRS = 1_000_000  # pairs (epoch-1 stream, whole batches) trained before timing: realistic scores
WARMUP_PAIRS = 20_000  # pairs of the untimed calls that compile numba and warm torch's allocator
AUTOGRAD_BATCHES = 3  # batches timed with autograd (slow: a few are enough)
SPARSE_ADAM_LR = 0.001  # torch's default; the step's cost does not depend on it
LOSS_EVERY = (1, 16)  # sgns_step_cpu loss_every values timed; the last is train.py's default, the reference

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # dataset.Batch
Tables = tuple[np.ndarray, np.ndarray]


def figure(seconds: float, pairs: int, reference_s: float | None = None, method_s: float | None = None) -> dict:
    """One row: time, rate, and shares of the reference step and of the row's own method."""
    row = {"seconds": round(seconds, 4), "pairs": pairs, "mpairs_per_s": round(pairs / max(seconds, 1e-12) / 1e6, 3),
           "ns_per_pair": round(seconds / max(pairs, 1) * 1e9, 1)}
    if reference_s is not None:
        row["share_of_cpu_step"] = round(seconds / reference_s, 4)
    if method_s is not None:
        row["share_of_method"] = round(seconds / method_s, 4)
    return row


def read_batches(data_dir: Path, epoch: int, n_batches: int, batch_size: int, negatives: int, seed: int,
                 draw_negatives: bool, table: np.ndarray | None = None) -> tuple[list[Batch], float, int]:
    """The first n_batches batches of an epoch's stream, the seconds the iteration took (dataset built before),
    and the pairs decoded from parquet to yield them (whole row groups are read, and their negatives drawn)."""
    dataset = PairsDataset(data_dir, batch_size=batch_size, negatives=negatives, seed=seed, epoch=epoch,
                           table=table, draw_negatives=draw_negatives)
    batches: list[Batch] = []
    started = time.perf_counter()
    for batch in dataset:
        batches.append(batch)
        if len(batches) == n_batches:
            break
    elapsed = time.perf_counter() - started
    decoded = 0
    for _, _, rows in dataset.units:
        if decoded >= count(batches):
            break
        decoded += rows
    return batches, elapsed, decoded


def count(batches: list[Batch]) -> int:
    return sum(int(b[0].shape[0]) for b in batches)


def load_table(data_dir: Path) -> np.ndarray:
    # As train.py: one copy-on-write map ("c": torch.as_tensor warns on read-only maps) for the whole run.
    return np.load(Path(data_dir) / "unigram_table.npy", mmap_mode="c")


def data_path(args: argparse.Namespace, n_batches: int) -> tuple[dict, list[Batch]]:
    """Seconds of PairsDataset iteration without and with negatives; the batches with negatives, for the steps.

    The unigram table is big (text8: 1e8 entries, 400 MB) and the draws touch nearly all its pages: the first
    pass over a fresh map pays a page fault per page. train.py maps it once per run, so the main figures use a
    map already touched; the fresh-map pass is kept as its own figure (each new DataLoader worker pays it too).
    """
    def read(draw: bool, table: np.ndarray | None = None) -> tuple[list[Batch], float, int]:
        return read_batches(args.data_dir, 0, n_batches, args.batch_size, args.negatives, SEED, draw, table)

    read(False)  # untimed: brings the row groups into the page cache, so every timed pass reads alike
    table = load_table(args.data_dir)
    _, fresh_s, _ = read(True, table)  # fresh map: page faults on first touch
    plain, plain_s, decoded = read(False)
    batches, drawn_s, _ = read(True, table)  # same map, now touched
    return {"read_s": plain_s, "read_negatives_s": drawn_s, "read_negatives_fresh_map_s": fresh_s,
            "pairs": count(plain), "pairs_decoded": decoded}, batches


def pretrained_tables(vocab_size: int, dim: int, pretrain: list[Batch], threads: int) -> tuple[Tables, float]:
    """SkipGram's initial tables trained on the pre-training batches; and their loss per pair, as a check."""
    model = SkipGram(vocab_size, dim, seed=SEED)
    input_w = model.input.weight.data.numpy().copy()
    output_w = model.output.weight.data.numpy().copy()
    loss = pairs = 0
    for target, context, negatives, _ in pretrain:
        loss += sgns_step_cpu(input_w, output_w, target.numpy(), context.numpy(), negatives.numpy(), LR, LR,
                              threads, 16)
        pairs += int(target.shape[0])
    return (input_w, output_w), loss / max(pairs, 1)


def time_numba(tables: Tables, batches: list[Batch], threads: int, loss_every: int) -> tuple[float, float]:
    """Seconds of sgns_step_cpu over the batches from a copy of the tables; and the loss per pair."""
    input_w, output_w = tables[0].copy(), tables[1].copy()
    arrays = [(t.numpy(), c.numpy(), n.numpy()) for t, c, n, _ in batches]  # outside the timing: free views anyway
    loss = 0.0
    started = time.perf_counter()
    for target, context, negatives in arrays:
        loss += sgns_step_cpu(input_w, output_w, target, context, negatives, LR, LR, threads, loss_every)
    return time.perf_counter() - started, loss / count(batches)


def model_from(tables: Tables, dim: int) -> SkipGram:
    """A SkipGram (sparse embeddings) holding a copy of the tables."""
    model = SkipGram(tables[0].shape[0], dim, seed=SEED)
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(tables[0]))
        model.output.weight.copy_(torch.from_numpy(tables[1]))
    return model


def time_torch_step(tables: Tables, dim: int, batches: list[Batch], micro_batch: int) -> tuple[float, float]:
    """Seconds of sgns_step_torch over the batches (after an untimed warm-up); and the loss per pair."""
    t, c, n, _ = batches[0]
    sgns_step_torch(model_from(tables, dim), t[:WARMUP_PAIRS], c[:WARMUP_PAIRS], n[:WARMUP_PAIRS], LR, LR,
                    micro_batch)
    model = model_from(tables, dim)
    loss = 0.0
    started = time.perf_counter()
    for target, context, negatives, _ in batches:
        loss += sgns_step_torch(model, target, context, negatives, LR, LR, micro_batch)
    return time.perf_counter() - started, loss / count(batches)


TORCH_PARTS = ["ids (slice, cat, long)", "gather (in[t], out[ids])", "scores (bmm)", "loss (softplus, sum)",
               "sigmoid, clip, g", "gradient products", "scatter (index_add_ = SGD)"]


def torch_breakdown(tables: Tables, dim: int, batch: Batch, micro_batch: int) -> dict[str, float]:
    """Seconds of each part of sgns_step_torch over one batch: word2vec.py's loop, with a clock between the parts.

    Kept line for line with sgns_step_torch (labels, where, index_add_ on the same shapes) so the parts add up
    to the step; compare their sum with the step's own time in the output.
    """
    model = model_from(tables, dim)
    input_w, output_w = model.input.weight.data, model.output.weight.data
    target, context, negatives, _ = batch
    n_pairs = target.shape[0]
    step = micro_batch if micro_batch > 0 else n_pairs
    parts = dict.fromkeys(TORCH_PARTS, 0.0)
    total_loss = torch.zeros((), dtype=torch.float64)
    clock = time.perf_counter
    for start in range(0, n_pairs, step):
        stop = min(n_pairs, start + step)
        lr = LR  # sgns_step_torch interpolates lr_start..lr_end; both are LR here
        t0 = clock()
        t = target[start:stop].long()
        out_ids = torch.cat([context[start:stop, None], negatives[start:stop]], dim=1).long()
        t1 = clock()
        u = input_w[t]
        v = output_w[out_ids]
        t2 = clock()
        scores = torch.bmm(v, u.unsqueeze(2)).squeeze(2)
        t3 = clock()
        labels = torch.zeros_like(scores)
        labels[:, 0] = 1.0
        signed = torch.where(labels > 0, scores, -scores)
        total_loss += torch.nn.functional.softplus(-signed).sum(dtype=torch.float64)
        t4 = clock()
        sigma = torch.sigmoid(scores)
        sigma = torch.where(scores > MAX_SCORE, 1.0, torch.where(scores < -MAX_SCORE, 0.0, sigma))
        g = (labels - sigma) * lr
        t5 = clock()
        grad_u = torch.bmm(g.unsqueeze(1), v).squeeze(1)
        grad_v = g.unsqueeze(2) * u.unsqueeze(1)
        t6 = clock()
        input_w.index_add_(0, t, grad_u)
        output_w.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, grad_v.shape[-1]))
        t7 = clock()
        for name, (a, b) in zip(TORCH_PARTS, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6), (t6, t7)]):
            parts[name] += b - a
    float(total_loss)  # as sgns_step_torch returns it
    return parts


AUTOGRAD_PARTS = ["zero_grad", "forward (gather, scores, loss)", "backward (sparse grads)", "optimiser step"]


def time_autograd(tables: Tables, dim: int, batches: list[Batch], optimiser: str) -> dict[str, float]:
    """Seconds of each part of an autograd training step with sparse embeddings, summed over the batches.

    SkipGram's embeddings are nn.Embedding(sparse=True) and its forward returns the summed loss of a batch: the
    seed's approach. The loss is divided by the batch size so that plain SGD at LR does not blow up on rows
    that occur thousands of times in a batch (overflowing values would time differently); it changes no shape.
    """
    def make() -> tuple[SkipGram, torch.optim.Optimizer]:
        model = model_from(tables, dim)
        if optimiser == "SparseAdam":
            return model, torch.optim.SparseAdam(list(model.parameters()), lr=SPARSE_ADAM_LR)
        return model, torch.optim.SGD(model.parameters(), lr=LR)

    def train_step(model: SkipGram, opt: torch.optim.Optimizer, batch: Batch, parts: dict[str, float]) -> None:
        target, context, negatives, _ = batch
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        loss = model(target, context, negatives) / target.shape[0]
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        for name, (a, b) in zip(AUTOGRAD_PARTS, [(t0, t1), (t1, t2), (t2, t3), (t3, t4)]):
            parts[name] += b - a

    model, opt = make()
    warm = tuple(x[:WARMUP_PAIRS] for x in batches[0])
    train_step(model, opt, warm, dict.fromkeys(AUTOGRAD_PARTS, 0.0))  # untimed: first-call costs
    model, opt = make()  # fresh tables and optimiser state
    parts = dict.fromkeys(AUTOGRAD_PARTS, 0.0)
    for batch in batches:
        train_step(model, opt, batch, parts)
    del model, opt
    gc.collect()  # several GB of sparse gradients and Adam state at dim 300
    return parts


def print_table(dim: int, result: dict) -> None:
    header = f"{'dim ' + str(dim):<44}{'M pairs/s':>10}{'ns/pair':>10}{'% CPU step':>12}{'% method':>10}"
    print("\n" + header)
    print("-" * len(header))
    for label, row in result["rows"]:
        if row is None:
            print(label)
            continue
        share = f"{100 * row['share_of_cpu_step']:.1f}" if "share_of_cpu_step" in row else ""
        method = f"{100 * row['share_of_method']:.1f}" if "share_of_method" in row else ""
        print(f"{label:<44}{row['mpairs_per_s']:>10.3f}{row['ns_per_pair']:>10.1f}{share:>12}{method:>10}")


def profile_dim(args: argparse.Namespace, dim: int, vocab_size: int, data: dict, batches: list[Batch],
                pretrain: list[Batch]) -> dict:
    pairs = count(batches)
    tables, pretrain_loss = pretrained_tables(vocab_size, dim, pretrain, args.threads)
    steps: dict[int, tuple[float, float]] = {k: time_numba(tables, batches, args.threads, k) for k in LOSS_EVERY}
    ref_s = steps[LOSS_EVERY[-1]][0]  # the reference: the step train.py runs on CPU

    torch_s, torch_loss = time_torch_step(tables, dim, batches, args.micro_batch)
    # The breakdown covers the first batch; scaled to all the timed pairs so its rows compare with the others.
    first = int(batches[0][0].shape[0])
    parts = {name: s * pairs / first for name, s in torch_breakdown(tables, dim, batches[0], args.micro_batch).items()}
    parts_sum = sum(parts.values())

    autograd_batches = batches[:args.autograd_batches]
    autograd_pairs = count(autograd_batches)
    autograd = {opt: time_autograd(tables, dim, autograd_batches, opt) for opt in ("SparseAdam", "SGD")}

    # Per-pair times scaled to the timed pairs, so every row's share compares like with like.
    scale = pairs / max(autograd_pairs, 1)
    read_s = data["read_s"] * pairs / data["pairs"]
    drawn_s = data["read_negatives_s"] * pairs / data["pairs"]
    fresh_s = data["read_negatives_fresh_map_s"] * pairs / data["pairs"]
    rows: list[tuple[str, dict | None]] = [
        ("data path (PairsDataset, one process)", None),
        ("  read: parquet + int32 tensors", figure(read_s, pairs, ref_s)),
        ("  read + draw negatives", figure(drawn_s, pairs, ref_s)),
        ("  negatives alone (difference)", figure(drawn_s - read_s, pairs, ref_s)),
        ("  read + negatives, table freshly mapped", figure(fresh_s, pairs, ref_s)),
        (f"numba sgns_step_cpu, {args.threads} threads", None),
    ]
    for k in LOSS_EVERY:
        rows.append((f"  loss_every={k}" + ("  (reference)" if k == LOSS_EVERY[-1] else ""),
                     figure(steps[k][0], pairs, ref_s)))
    rows.append(("  + data path with negatives, serial (sum)", figure(ref_s + drawn_s, pairs, ref_s)))
    rows.append((f"torch sgns_step_torch, micro-batch {args.micro_batch}", figure(torch_s, pairs, ref_s)))
    rows.append((f"  parts (batch 0, scaled), sum vs step {parts_sum / torch_s:.2f}", None))
    rows += [(f"    {name}", figure(s, pairs, ref_s, parts_sum)) for name, s in parts.items()]
    for opt, opt_parts in autograd.items():
        total = sum(opt_parts.values()) * scale
        rows.append((f"autograd + {opt} ({len(autograd_batches)} batch{'es' if len(autograd_batches) > 1 else ''})",
                     figure(total, pairs, ref_s)))
        rows += [(f"    {name}", figure(s * scale, pairs, ref_s, total)) for name, s in opt_parts.items()]

    return {"rows": rows, "json": {
        "pairs": pairs, "pretrain_loss_per_pair": round(pretrain_loss, 4),
        "data": {"read": figure(read_s, pairs, ref_s), "read_negatives": figure(drawn_s, pairs, ref_s),
                 "negatives": figure(drawn_s - read_s, pairs, ref_s),
                 "read_negatives_fresh_map": figure(fresh_s, pairs, ref_s)},
        "numba": {f"loss_every_{k}": {**figure(s, pairs, ref_s), "loss_per_pair": round(loss, 4)}
                  for k, (s, loss) in steps.items()},
        "torch_step": {**figure(torch_s, pairs, ref_s), "loss_per_pair": round(torch_loss, 4),
                       "micro_batch": args.micro_batch},
        "torch_parts": {name: figure(s, pairs, ref_s, parts_sum) for name, s in parts.items()},
        "torch_parts_sum_over_step": round(parts_sum / torch_s, 3),
        "autograd": {opt: {"batches": len(autograd_batches), "pairs_timed": autograd_pairs,
                           "total": figure(sum(p.values()), autograd_pairs, ref_s * autograd_pairs / pairs),
                           "parts": {name: figure(s, autograd_pairs, ref_s * autograd_pairs / pairs,
                                                  sum(p.values())) for name, s in p.items()}}
                     for opt, p in autograd.items()},
    }}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each flag's default."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="holds pairs/ and unigram_table.npy")
    parser.add_argument("--dims", default=DIMS, help="embedding sizes, comma-separated")
    parser.add_argument("--pairs", type=int, default=PAIRS, help="pairs per measurement (whole batches)")
    parser.add_argument("--threads", type=int, default=THREADS, help="numba and torch threads")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="pairs per batch")
    parser.add_argument("--negatives", type=int, default=NEGATIVES, help="negatives per pair")
    parser.add_argument("--micro-batch", type=int, default=MICRO_BATCH, help="torch step: pairs per update")
    parser.add_argument("--pretrain-pairs", type=int, default=PRETRAIN_PAIRS, help="pairs trained before timing")
    parser.add_argument("--autograd-batches", type=int, default=AUTOGRAD_BATCHES, help="batches timed with autograd")
    parser.add_argument("--jsonl", type=Path, default=JSONL, help="file the run's JSON line is appended to")
    args = parser.parse_args()
    dims = [int(d) for d in args.dims.split(",") if d.strip()]
    if args.pairs < 1 or args.batch_size < 1 or args.negatives < 1 or args.threads < 1 or not dims:
        parser.error("--pairs, --batch-size, --negatives, --threads must be at least 1 and --dims non-empty")

    box = machine_facts(torch=torch.__version__, numba=numba.__version__)  # load average before our own work
    # Both thread pools as train.py sets them: numba for the fused step, torch for the data path's index_select
    # and the torch/autograd steps.
    numba.set_num_threads(max(1, min(args.threads, numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(args.threads)
    _, counts = load_vocab(args.data_dir, with_words=False)
    vocab_size = len(counts)
    n_batches = math.ceil(args.pairs / args.batch_size)
    print(f"{box['cpu']}, {box['cores']} cores, load average {box['load_average']}; {args.data_dir}: "
          f"vocabulary {vocab_size:,}; {n_batches} batch(es) of {args.batch_size:,}, {args.negatives} negatives, "
          f"{args.threads} threads")

    data, batches = data_path(args, n_batches)
    pairs = count(batches)
    if data["pairs_decoded"] > pairs:
        print(f"note: the data path decoded {data['pairs_decoded']:,} pairs (whole row groups, negatives drawn for "
              f"all) to yield {pairs:,}; its rates are per pair yielded, so they understate it: use --pairs a "
              f"multiple of the row-group size")
    pretrain, _, _ = read_batches(args.data_dir, 1, math.ceil(args.pretrain_pairs / args.batch_size),
                                  args.batch_size, args.negatives, SEED, True, load_table(args.data_dir))
    # Untimed numba call: compiles (or loads from numba's cache) before any timing.
    warm = [b[:WARMUP_PAIRS].numpy() for b in batches[0][:3]]
    scratch = SkipGram(vocab_size, 8, seed=SEED)
    sgns_step_cpu(scratch.input.weight.data.numpy(), scratch.output.weight.data.numpy(), *warm, LR, LR,
                  args.threads, 16)

    results: dict[str, dict] = {}
    for dim in dims:
        result = profile_dim(args, dim, vocab_size, data, batches, pretrain)
        print_table(dim, result)
        numba_loss = result["json"]["numba"][f"loss_every_{LOSS_EVERY[0]}"]["loss_per_pair"]
        print(f"(pre-trained on {count(pretrain):,} pairs, loss per pair on the timed pairs {numba_loss:.3f}, "
              f"zero output table: {(args.negatives + 1) * math.log(2):.3f}; timed on {pairs:,} pairs, autograd "
              f"on {result['json']['autograd']['SGD']['pairs_timed']:,})")
        results[str(dim)] = result["json"]
        gc.collect()

    # Load average after as well: another job starting mid-run shows here (a busy core stalls every 2-thread op).
    box["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    record = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": box,
              "data_dir": str(args.data_dir), "pairs": pairs, "batch_size": args.batch_size,
              "negatives": args.negatives, "threads": args.threads, "micro_batch": args.micro_batch,
              "pretrain_pairs": count(pretrain), "lr": LR,
              "data_path": {"pairs": data["pairs"],
                            "pairs_decoded": data["pairs_decoded"], "read_s": round(data["read_s"], 4),
                            "read_negatives_s": round(data["read_negatives_s"], 4),
                            "read_negatives_fresh_map_s": round(data["read_negatives_fresh_map_s"], 4)},
              "reference": f"sgns_step_cpu loss_every={LOSS_EVERY[-1]}", "dims": results}
    args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    with open(args.jsonl, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    print(f"\nload average after: {box['load_average_after']}; appended to {args.jsonl}")


if __name__ == "__main__":
    main()
