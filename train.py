"""Stage 7: train skip-gram over the pair shards; checkpoint after each shard; write the final vectors.

    python train.py                      # CUDA when available, else CPU
    python train.py --epochs 1 --dim 100
    python train.py --resume             # continue from data/model/checkpoint.pt

Epoch e trains on pairs_dataset.py's draw e % draws (its own sub-sampling and windows, as word2vec.c and gensim
redraw them every epoch); with fewer draws than epochs the draws are reused in turn.

Outputs in DATA_DIR/model: vectors.txt and vectors.bin (word2vec formats, gensim loads both), embeddings.npy,
loss.csv, loss.png, checkpoint.pt.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

import numba
import numpy as np
import torch
from tqdm import tqdm

from common import (StageReport, above, at_least, atomic_output, check_flags, default_num_proc, fail, load_vocab,
                    parse_config, read_json, require, run)
from dataset import PairsDataset, draw_pairs, epoch_shards
from vectors_io import save_word2vec_binary, save_word2vec_text
from word2vec import (SkipGram, hs_step_cpu, hs_step_torch, huffman_for, nearest_neighbours, sgns_step_cpu,
                      sgns_step_torch)

DATA_DIR = "data"  # where stage outputs live
EPOCHS = 5  # passes over the pairs; epoch e reads pairs_dataset.py's draw e mod its --draws
DIM = 300  # embedding size
BATCH_SIZE = 300_000  # pairs per batch read from the shards
LOSS = "ns"  # ns (negative sampling) or hs (hierarchical softmax)
NEGATIVES = 5  # negatives per pair, drawn from the unigram^0.75 table
LR = 0.04  # starting learning rate, decayed linearly to LR * MIN_LR_FRACTION (word2vec.c: 0.025; 0.04 measured better, bench/RESULTS.md)
MIN_LR_FRACTION = 0.0001  # floor of the decay, as word2vec.c
SEED = 1  # seeds the initial vectors, the shard order and the negatives
DEVICE = ""  # "cuda", "cpu", or "" for CUDA when available
THREADS = default_num_proc()  # CPU threads sharing the tables (Hogwild); 1 gives bit-exact reproducible runs
LOSS_EVERY = 16  # CPU: loss computed on every LOSS_EVERY-th pair only (its log/exp cost ~30 percent of a step)
MICRO_BATCH = 8192  # CUDA/torch step only: pairs per update within a batch (0 = the whole batch)
NUM_WORKERS = 1  # data-loader processes reading shards while the trainer computes
RESUME = False  # continue from model/checkpoint.pt
STOP_AFTER_SHARDS = 0  # stop (after checkpointing) when this many shards were trained in this run; 0 = never
NEIGHBOUR_WORDS = ["москва", "король", "хороший", "говорить"]  # printed at the end when in the vocabulary


def learning_rate(cfg, pairs_done: int, total_pairs: int) -> float:
    """word2vec.c's schedule: linear from LR to LR * MIN_LR_FRACTION over all pairs of all epochs."""
    return cfg.lr * max(cfg.min_lr_fraction, 1.0 - pairs_done / max(1, total_pairs))


def save_checkpoint(path: Path, model: SkipGram, position: dict, loss_rows: list, cfg) -> None:
    with atomic_output(path) as temp:
        torch.save({"model": model.state_dict(), "position": position, "loss_rows": loss_rows,
                    "config": vars(cfg)}, temp)


def write_outputs(model_dir: Path, words: list[str], model: SkipGram, loss_rows: list) -> None:
    vectors = model.input.weight.detach().cpu().numpy()
    with atomic_output(model_dir / "embeddings.npy") as temp:
        with open(temp, "wb") as handle:
            np.save(handle, vectors)
    save_word2vec_text(model_dir / "vectors.txt", words, vectors)
    save_word2vec_binary(model_dir / "vectors.bin", words, vectors)
    with atomic_output(model_dir / "loss.csv") as temp:
        with open(temp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["batch", "epoch", "pairs_done", "lr", "loss"])
            writer.writerows(loss_rows)
    plot_loss(model_dir / "loss.png", loss_rows)


def plot_loss(path: Path, loss_rows: list) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.asarray([(row[2], row[4]) for row in loss_rows], dtype=np.float64).reshape(-1, 2)
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(rows[:, 0] / 1e6, rows[:, 1], lw=0.8, label="batch")
    if len(rows) >= 20:
        width = max(1, len(rows) // 50)
        smooth = np.convolve(rows[:, 1], np.ones(width) / width, mode="valid")
        axis.plot(rows[width - 1:, 0] / 1e6, smooth, lw=1.5, label=f"mean of {width}")
    axis.set_xlabel("pairs trained (millions)")
    axis.set_ylabel("loss per pair")
    axis.set_title("skip-gram training loss")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png", dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, epochs=at_least(1), dim=at_least(1), batch_size=at_least(1), negatives=at_least(0),
                lr=above(0), min_lr_fraction=at_least(0, 1), seed=at_least(0), threads=at_least(1),
                loss_every=at_least(1), micro_batch=at_least(0), num_workers=at_least(0), stop_after_shards=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("train", data_dir)
    model_dir = data_dir / "model"
    meta = read_json(data_dir / "pairs" / "meta.json", "pairs_dataset.py")
    words, counts = load_vocab(data_dir)
    if cfg.loss not in ("ns", "hs"):
        fail(f"--loss must be ns or hs, not {cfg.loss!r}")
    hs = cfg.loss == "hs"
    # HS draws no negatives; its Huffman tree is built once from the counts and kept beside vocab.json.
    table_path = None if hs else require(data_dir / "unigram_table.npy", "unigram_table.py")
    tree = huffman_for(data_dir, counts) if hs else None
    if meta.get("vocab_size", len(words)) != len(words):
        fail("pairs/ was made from another vocabulary than vocab.json: run pairs_dataset.py again")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        fail("--device cuda asked for, but torch sees no CUDA device")
    on_cpu = device.type == "cpu"
    numba.set_num_threads(max(1, min(cfg.threads, numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(max(1, cfg.threads))

    pairs_per_draw = draw_pairs(meta)
    n_draws = len(pairs_per_draw)
    if n_draws < cfg.epochs:
        print(f"pairs/ holds {n_draws} draw(s) for {cfg.epochs} epochs: epoch e reads draw e % {n_draws} "
              f"(pairs_dataset.py --draws {cfg.epochs} gives every epoch its own)")
    # The learning rate decays over the pairs of all epochs; draws differ a little in size.
    total_pairs = sum(pairs_per_draw[epoch % n_draws] for epoch in range(cfg.epochs))
    model = SkipGram(len(words), cfg.dim, seed=cfg.seed, words=words, loss=cfg.loss).to(device)
    position = {"epoch": 0, "shard": 0, "pairs_done": 0, "batches": 0, "train_s": 0.0}
    loss_rows: list = []
    checkpoint_path = model_dir / "checkpoint.pt"
    if cfg.resume:
        checkpoint = torch.load(require(checkpoint_path, "train.py (without --resume)"), map_location=device)
        saved = checkpoint["config"]
        saved.setdefault("loss", "ns")  # checkpoints from before --loss
        for key in ("loss", "dim", "epochs", "seed", "lr", "batch_size", "negatives"):
            if saved[key] != getattr(cfg, key):
                fail(f"checkpoint was trained with --{key.replace('_', '-')} {saved[key]}, not {getattr(cfg, key)}")
        model.load_state_dict(checkpoint["model"])
        position, loss_rows = checkpoint["position"], checkpoint["loss_rows"]
        print(f"resuming at epoch {position['epoch'] + 1}, shard {position['shard'] + 1}/"
              f"{len(epoch_shards(meta, cfg.seed, position['epoch']))}, {position['pairs_done']:,} pairs done")

    table = None if hs else np.load(table_path, mmap_mode="c")  # "c": torch.as_tensor warns on read-only maps
    device_table = None if on_cpu or hs else torch.as_tensor(np.asarray(table), device=device)
    device_generator = None if on_cpu else torch.Generator(device=device)
    input_w = model.input.weight.data.numpy() if on_cpu else None
    output_w = (model.inner if hs else model.output).weight.data.numpy() if on_cpu else None

    shards_this_run, stopped_early = 0, False
    start_epoch, start_shard = position["epoch"], position["shard"]
    progress = tqdm(total=total_pairs, initial=position["pairs_done"], unit="pair", unit_scale=True,
                    desc="train", smoothing=0.05)
    for epoch in range(start_epoch, cfg.epochs):
        order = epoch_shards(meta, cfg.seed, epoch)  # indices into meta["shards"]: this epoch's draw only
        for shard_pos in range(start_shard if epoch == start_epoch else 0, len(order)):
            shard = order[shard_pos]
            dataset = PairsDataset(data_dir, batch_size=cfg.batch_size, negatives=cfg.negatives, seed=cfg.seed,
                                   epoch=epoch, shards=[shard], table=table, draw_negatives=on_cpu and not hs)
            loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=cfg.num_workers,
                                                 pin_memory=not on_cpu)
            if device_generator is not None:
                device_generator.manual_seed(cfg.seed * 1_000_003 + epoch * 10_007 + shard)
            started = time.perf_counter()
            for target, context, negatives in loader:
                n_pairs = int(target.shape[0])
                lr_start = learning_rate(cfg, position["pairs_done"], total_pairs)
                lr_end = learning_rate(cfg, position["pairs_done"] + n_pairs, total_pairs)
                if hs and on_cpu:
                    loss = hs_step_cpu(input_w, output_w, target.numpy(), context.numpy(), tree.paths, tree.codes,
                                       tree.lengths, lr_start, lr_end, cfg.threads, cfg.loss_every)
                elif hs:
                    loss = hs_step_torch(model, target.to(device, non_blocking=True),
                                         context.to(device, non_blocking=True), tree, lr_start, lr_end,
                                         cfg.micro_batch)
                elif on_cpu:
                    loss = sgns_step_cpu(input_w, output_w, target.numpy(), context.numpy(), negatives.numpy(),
                                         lr_start, lr_end, cfg.threads, cfg.loss_every)
                else:
                    target = target.to(device, non_blocking=True)
                    context = context.to(device, non_blocking=True)
                    draws = torch.randint(len(device_table), (n_pairs, cfg.negatives), device=device,
                                          generator=device_generator)
                    loss = sgns_step_torch(model, target, context, device_table[draws], lr_start, lr_end,
                                           cfg.micro_batch)
                position["pairs_done"] += n_pairs
                position["batches"] += 1
                loss_rows.append([position["batches"], epoch + 1, position["pairs_done"], round(lr_start, 7),
                                  round(loss / n_pairs, 5)])
                progress.update(n_pairs)
                progress.set_postfix(epoch=epoch + 1, loss=f"{loss / n_pairs:.3f}", lr=f"{lr_start:.5f}")
            if not on_cpu:
                torch.cuda.synchronize(device)
            position["train_s"] += time.perf_counter() - started
            finished_epoch = shard_pos + 1 == len(order)
            position["epoch"], position["shard"] = (epoch + 1, 0) if finished_epoch else (epoch, shard_pos + 1)
            save_checkpoint(checkpoint_path, model, position, loss_rows, cfg)
            shards_this_run += 1
            if cfg.stop_after_shards and shards_this_run >= cfg.stop_after_shards:
                stopped_early = True
                break
        if stopped_early:
            break
    progress.close()

    if stopped_early and position["epoch"] < cfg.epochs:
        print(f"stopped after {shards_this_run} shard(s); continue with --resume")
        return {"stopped": True, "position": position}
    write_outputs(model_dir, words, model, loss_rows)
    vocabulary = set(words)
    known = [word for word in cfg.neighbour_words if word in vocabulary]
    for word, found in nearest_neighbours(words, model.input.weight.detach().cpu(), known, 8).items():
        print(f"  {word}: " + ", ".join(f"{w} ({s:.2f})" for w, s in found))
    train_s = max(position["train_s"], 1e-9)
    return report.finish(
        device=str(device), epochs=cfg.epochs, dim=cfg.dim, vocab_size=len(words), pairs=position["pairs_done"],
        loss=cfg.loss, train_s=round(train_s, 2), pairs_per_s=round(position["pairs_done"] / train_s),
        corpus_words_per_s=round(meta["tokens"] * cfg.epochs / train_s),
        final_loss=loss_rows[-1][4] if loss_rows else None)


if __name__ == "__main__":
    run(main)
