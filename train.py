"""Stage 7: train skip-gram (or CBOW) over the pair shards; checkpoint every few minutes; write the final vectors.

    python train.py                      # CUDA when available, else CPU
    python train.py --epochs 1 --dim 100
    python train.py --kernel torch       # the batched step the GPU runs, here on the CPU
    python train.py --resume             # continue from data/model/checkpoint.pt

Epoch e trains on pairs_dataset.py's draw e % draws (its own sub-sampling and windows, as word2vec.c and gensim
redraw them every epoch); with fewer draws than epochs the draws are reused in turn. One DataLoader reads an
epoch's whole stream of batches (dataset.py), so shards neither restart its workers nor synchronise the device.
pairs/meta.json is read through pairs_meta.PairsMeta: a pairs/ not written in window order stops training
with one line (rebuild it with pairs_dataset.py). `main` sets up (flags, data, device, memory, model, step) and
hands the epoch loop to `Training`.

MODEL sg (skip-gram) or cbow (the mean of a window's context vectors predicts its target); both read shards that
keep each window's pairs together (pairs_dataset.py). The step comes from the table in w2v/kernels/steps.py,
keyed by model, loss and kernel, which also stops with one line for a combination it has no step for. Kernels:
window, the numba window kernels (a window's pairs trained together, negatives drawn inside the kernel), CPU only;
torch, the batched closed-form steps in micro-batches that CUDA runs, negatives drawn on the device from the alias
table by the window kernels' counter draw (the same words), on the CPU as on the GPU, so CPU runs train what the GPU
trains;
triton, the fused kernels of w2v/kernels/triton_steps.py (sg and cbow, ns and hs), one launch per batch, negatives drawn
inside as the window kernels draw them, on CUDA (on the CPU only in Triton's interpreter, TRITON_INTERPRET=1, for
the tests), fed by feed.WindowFeed (contexts, one target per window and offsets only, read by --num-workers
threads, the same batches as the DataLoader's) instead of a DataLoader; auto, window on the CPU, and on CUDA triton
where Triton imports, else torch.

Checkpoints: every CHECKPOINT_MINUTES of training and at the end of every epoch. The checkpoint's position is the
batch reached in the epoch's stream, so --resume skips what was trained (whole row groups unread) and loses at most
the minutes since the last checkpoint; with --threads 1 it ends with the same vectors as an unbroken run.
Before allocating, the tables, loader buffers and step temporaries are summed and compared with the memory free
on the device (`memory_plan`); a non-finite loss stops training before anything is written (`check_finite`).

Rolling draws (--rolling-draws), for a corpus whose draws cannot all be on disk at once: the next epoch's draw is
written in the background while an epoch trains, and each draw is deleted after its last epoch, through the hooks
of w2v/draws.py's `RollingDraws`, which states what is on disk when, what a failure or --resume does, and how the
learning rate schedule counts draws not yet written.

Outputs in DATA_DIR/model: vectors.txt and vectors.bin (word2vec formats, gensim loads both), embeddings.npy,
loss.csv (per batch: the mean loss of a training example, a pair in skip-gram, a window in CBOW), loss.png
(redrawn at checkpoints, at most every 30 s, epochs marked: views.LossPlot), checkpoint.pt, and the model card,
card.json and README.md (model_card.py: corpus, preprocessing, settings, time, machine, and with CARD_SCORES the
scores on the shipped Russian sets, through evaluate.py; evaluate.py --card adds others).
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numba
import numpy as np
import torch
from tqdm import tqdm

import dataset
import evaluate
import unigram_table
from dataset import PairsDataset
from w2v.batch import WindowBatch
from w2v import common
from w2v.common import StageReport, at_least, atomic_output, check_flags, fail, load_vocab, parse_config, require, run
from w2v.draws import RollingDraws, schedule_pairs
from w2v.feed import WindowFeed
from w2v.huffman import HuffmanTree, huffman_for
from w2v.kernels.steps import Step, choose_kernel, make_step, micro_batch, micro_batched, reads_feed
from w2v.kernels import self_check
from w2v.memory import check_memory, size_text
from w2v.model_card import write_card
from w2v.shards import reader_bytes
from w2v.pairs_meta import PairsMeta
from w2v.vectors_io import save_word2vec_binary, save_word2vec_text
from w2v.views import LossPlot
from w2v.workers import default_num_proc
from word2vec import SkipGram, nearest_neighbours

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
EPOCHS = 5  # passes over the pairs; epoch e reads pairs_dataset.py's draw e mod its --draws
DIM = 300  # embedding size
BATCH_SIZE = dataset.BATCH_SIZE  # pairs per batch read from the shards (the default is dataset.py's BATCH_SIZE: edit it there)
LOSS = "ns"  # ns (negative sampling) or hs (hierarchical softmax)
NEGATIVES = 5  # negatives per pair, drawn from the unigram^0.75 table
LR = 0.0  # starting learning rate, decayed linearly to LR * MIN_LR_FRACTION; 0: the model's default, DEFAULT_LR (sg 0.04, cbow 0.05; word2vec.c: 0.025 and 0.05; measured, bench/LOG.md)
MIN_LR_FRACTION = 0.0001  # floor of the decay, as word2vec.c
INIT_RANGE = 0.0  # input rows start uniform in +-INIT_RANGE/dim; 0: the model's default, DEFAULT_INIT_RANGE (sg 0.5 as word2vec.c, cbow 1.0 as gensim 4; measured, bench/LOG.md)
SEED = common.SEED  # seeds the initial vectors, the shard order and the negatives (the pipeline's, set in w2v/common.py)
DEVICE = ""  # "cuda", "cpu", or "" for CUDA when available
MODEL = "sg"  # sg (skip-gram: each word predicts its context) or cbow (the mean of the context predicts the word)
KERNEL = "auto"  # training step (w2v/kernels/steps.py's table): window (the numba window kernels, a window's pairs at once, CPU only), torch (batched, the CUDA step, runs on CPU too), triton (the fused kernels, sg and cbow, ns and hs, w2v/kernels/triton_steps.py: CUDA, or the CPU under TRITON_INTERPRET=1), auto (window on CPU; on CUDA triton where Triton imports, else torch)
THREADS = default_num_proc()  # CPU threads sharing the tables (Hogwild); 1 gives bit-exact reproducible runs
LOSS_EVERY = 16  # window kernels: loss computed on every LOSS_EVERY-th pair only (its log/exp cost ~30 percent of a step)
MICRO_BATCH = 8192  # torch kernel only, ns: pairs per update within a batch (0 = the whole batch)
HS_MICRO_BATCH = 1024  # torch kernel only, hs: pairs per update (every path starts at the root, so the top nodes sum a micro-batch's stale gradients: 8,192 blew text8 up, bench/LOG.md)
TRITON_GROUP = 1  # triton kernel only: windows per program, trained one after another (a power of two); sg hs adds the top 4 levels' rows once per program, after its windows (1 = the CPU kernel's update)
SELF_CHECK = "auto"  # triton kernel only: before training, its step and the torch step train one check batch from equal rows and must agree (w2v/kernels/self_check.py); auto: on CUDA (a failure trains with --kernel torch, or stops when --kernel triton was asked for), on: on any device, off: never
NUM_WORKERS = dataset.NUM_WORKERS  # reader processes (threads for the GPU kernels) reading shards while the trainer computes (dataset.py's NUM_WORKERS: edit it there)
CHECKPOINT_MINUTES = 10.0  # minutes of training between checkpoints (one also ends every epoch); 0: at epoch ends only
RESUME = False  # continue from model/checkpoint.pt
STOP_AFTER_BATCHES = 0  # stop (after checkpointing) when this many batches were trained in this run; 0 = never
ROLLING_DRAWS = False  # keep two draws on disk: write the next epoch's draw in the background, delete each after its last epoch
CARD_SCORES = True  # at the end, score the vectors on the shipped Russian sets (evaluate.py) and add the scores to the model card
NEIGHBOUR_WORDS = ["москва", "король", "хороший", "говорить"]  # printed at the end when in the vocabulary

CHECK_ROWS = 1 << 16  # table rows per block of check_finite's float64 sum (its temporary: rows x dim x 8 bytes)

# The clock of the time-based checkpoints (a module attribute so tests can drive it without sleeping).
clock: Callable[[], float] = time.monotonic

# Below this many corpus tokens the defaults (5 epochs, pairs_dataset.py's window 5: made for Taiga's billions)
# leave similarity scores on the table: a run says so in one line (docs/training.md, "Settings by corpus size").
SMALL_CORPUS_TOKENS = 100_000_000

MODELS = ("sg", "cbow")
# --lr 0 takes the model's own: skip-gram 0.04 (better than word2vec.c's 0.025 on both corpora), CBOW 0.05
# (word2vec.c's CBOW default; 0.025, gensim's, scored far lower on text8: bench/LOG.md, "CBOW").
DEFAULT_LR = {"sg": 0.04, "cbow": 0.05}
# --init-range 0 takes the model's own: skip-gram word2vec.c's +-0.5/dim, CBOW gensim 4's +-1/dim (0.5 cost CBOW
# 1 point of text8 analogy accuracy and 0.01 of WordSim353 after one epoch: bench/LOG.md, "CBOW").
DEFAULT_INIT_RANGE = {"sg": 0.5, "cbow": 1.0}

def learning_rate(cfg, pairs_done: int, total_pairs: int) -> float:
    """word2vec.c's schedule: linear from LR to LR * MIN_LR_FRACTION over all pairs of all epochs."""
    return cfg.lr * max(cfg.min_lr_fraction, 1.0 - pairs_done / max(1, total_pairs))


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """Seed of the negatives of batch `batch` of epoch `epoch` (every kernel's): a resumed run draws the same."""
    # The trailing 7 keeps these seeds apart from dataset.unit_seed's [seed, epoch, shard, row group].
    state = np.random.SeedSequence([seed, epoch, batch, 7]).generate_state(1, np.uint64)[0]
    return int(state) & (2**63 - 1)




def diverged(loss: float, epoch: int, batch: int, kernel: str, lr: float, cfg) -> None:
    """Stop with one line on a non-finite loss, naming what sets the step's size."""
    batched = micro_batched(kernel)
    size = f"micro-batch {cfg.micro_batch or cfg.batch_size}" if batched else "window by window"
    fail(f"training diverged: loss {loss} at batch {batch + 1} of epoch {epoch + 1} (kernel {kernel}, learning rate "
         f"{lr:.6g} of --lr {cfg.lr}, {size}): lower --lr" + (" or --micro-batch" if batched else "")
         + "; the diverged tables were not saved")


def check_finite(model: SkipGram, what: str) -> None:
    """Stop with one line when a table holds NaN or infinity: nothing non-finite is ever written."""
    for name, table in model.named_parameters():
        # A float64 sum: finite float32 values cannot overflow it, a NaN or infinity always shows. By blocks of
        # rows: sum(dtype=float64) converts its whole input first, a float64 copy twice the table's size.
        for block in table.detach().split(CHECK_ROWS):
            if not math.isfinite(float(block.sum(dtype=torch.float64))):
                fail(f"{name} holds NaN or infinite values: {what} not written")


def save_checkpoint(path: Path, model: SkipGram, position: dict, loss_rows: list, cfg) -> None:
    check_finite(model, "checkpoint")
    with atomic_output(path) as temp:
        torch.save({"model": model.state_dict(), "position": position, "loss_rows": loss_rows,
                    "config": vars(cfg)}, temp)


def load_checkpoint(path: Path, cfg, model: SkipGram) -> tuple[dict, list]:
    """Load `path` into `model` after checking it was trained with these settings; (position, loss rows)."""
    # Mapped, not read: the saved tables are copied into the model without a second copy in memory.
    checkpoint = torch.load(require(path, "train.py (without --resume)"), map_location="cpu", mmap=True)
    saved = checkpoint["config"]
    for key in ("model", "loss", "dim", "epochs", "seed", "lr", "batch_size", "negatives"):
        if saved[key] != getattr(cfg, key):
            fail(f"checkpoint was trained with --{key.replace('_', '-')} {saved[key]}, not {getattr(cfg, key)}")
    position = checkpoint["position"]
    # The workers' interleaving fixes which batch comes where in an epoch (0 and 1 workers read one stream): a
    # half-read epoch goes on with as many.
    if position["epoch_batches"] and max(1, saved.get("num_workers", 1)) != max(1, cfg.num_workers):
        fail(f"checkpoint was trained with --num-workers {saved.get('num_workers', 1)}, not {cfg.num_workers}: "
             f"resume with the same number inside an epoch")
    model.load_state_dict(checkpoint["model"])
    return position, checkpoint["loss_rows"]


def write_outputs(model_dir: Path, words: list[str], model: SkipGram, loss_rows: list, example: str = "pair"
                  ) -> None:
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


def settle_flags(cfg) -> None:
    """Stop with one line on a flag out of range; --lr 0 and --init-range 0 take the model's own."""
    check_flags(cfg, epochs=at_least(1), dim=at_least(1), batch_size=at_least(1), negatives=at_least(0),
                lr=at_least(0), init_range=at_least(0), min_lr_fraction=at_least(0, 1), seed=at_least(0),
                threads=at_least(1), loss_every=at_least(1), micro_batch=at_least(0), hs_micro_batch=at_least(0),
                num_workers=at_least(0), stop_after_batches=at_least(0), checkpoint_minutes=at_least(0),
                check_rows=at_least(1), triton_group=at_least(1))
    if cfg.triton_group & (cfg.triton_group - 1):
        fail(f"--triton-group must be a power of two (1, 2, 4, ...), got {cfg.triton_group}")
    if cfg.loss not in ("ns", "hs"):
        fail(f"--loss must be ns or hs, not {cfg.loss!r}")
    if cfg.model not in MODELS:
        fail(f"--model must be sg or cbow, not {cfg.model!r}")
    cfg.lr = cfg.lr or DEFAULT_LR[cfg.model]
    cfg.init_range = cfg.init_range or DEFAULT_INIT_RANGE[cfg.model]


def step_config(cfg) -> SimpleNamespace:
    """cfg with micro_batch the loss's own (steps.micro_batch), for the memory plan and the divergence line; cfg
    itself, the config the user set and the checkpoint records, is left as it is."""
    return SimpleNamespace(**{**vars(cfg), "micro_batch": micro_batch(cfg, cfg.loss)})


@dataclass
class TrainingData:
    """What training reads besides the shards: pairs/meta.json, the vocabulary, and the loss's table or tree."""

    meta: PairsMeta
    words: list[str]
    counts: np.ndarray
    tree: HuffmanTree | None  # hierarchical softmax: the Huffman tree, kept beside vocab.json
    table: np.ndarray | None  # negative sampling: the alias table of count^0.75 (unigram_table.py), int64 [V]


def load_data(data_dir: Path, loss: str) -> TrainingData:
    """pairs/meta.json (one line for a pairs/ in pair order), vocab.json, and the alias table (ns) or
    the Huffman tree (hs); one line naming the stage to run for what is missing or stale."""
    meta = PairsMeta.read(data_dir / "pairs")
    words, counts = load_vocab(data_dir)
    hs = loss == "hs"
    if not hs and not (data_dir / unigram_table.OUTPUT).exists() and (data_dir / unigram_table.RETIRED).exists():
        fail(f"{data_dir / unigram_table.RETIRED} is word2vec.c's 1e8-entry table, no longer read: run "
             f"unigram_table.py again (it writes {unigram_table.OUTPUT}, the alias table)")
    table_path = None if hs else require(data_dir / unigram_table.OUTPUT, "unigram_table.py")
    tree = huffman_for(data_dir, counts) if hs else None
    if meta.vocab_size not in (None, len(words)):
        fail("pairs/ was made from another vocabulary than vocab.json: run pairs_dataset.py again")
    table = None if hs else np.load(table_path)
    if table is not None and (table.dtype != np.int64 or table.shape != (len(words),)):
        fail(f"{table_path} does not match vocab.json: run unigram_table.py again")
    return TrainingData(meta, words, counts, tree, table)


def pick_device(name: str, threads: int) -> torch.device:
    """--device (CUDA when available for ""), with the CPU threads numba and torch may use."""
    device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        fail("--device cuda asked for, but torch sees no CUDA device")
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(max(1, threads))
    return device


def start_position(cfg, model: SkipGram, checkpoint_path: Path, total_pairs: int) -> tuple[dict, list]:
    """Where training starts, with the loss rows so far: the checkpoint's place with --resume (and the schedule
    the run began with: a rolling run's draws not yet written counted at their expected size), else the start."""
    if not cfg.resume:
        return {"epoch": 0, "epoch_batches": 0, "pairs_done": 0, "batches": 0, "train_s": 0.0,
                "total_pairs": total_pairs}, []
    position, loss_rows = load_checkpoint(checkpoint_path, cfg, model)
    print(f"resuming at epoch {position['epoch'] + 1}, batch {position['epoch_batches'] + 1}, "
          f"{position['pairs_done']:,} pairs done")
    position.setdefault("total_pairs", total_pairs)
    return position, loss_rows


class Training:
    """The epoch loop: each batch through the step at the scheduled learning rate, the position in the epoch's
    stream, the loss rows, the checkpoints (every CHECKPOINT_MINUTES and at every epoch's end) and the rolling
    draws' hooks."""

    def __init__(self, cfg, data: TrainingData, model: SkipGram, step: Step, kernel: str, device: torch.device,
                 position: dict, loss_rows: list):
        self.cfg, self.data, self.model, self.step, self.kernel = cfg, data, model, step, kernel
        self.device, self.position, self.loss_rows = device, position, loss_rows
        self.data_dir = Path(cfg.data_dir)
        self.checkpoint_path = self.data_dir / "model" / "checkpoint.pt"
        self.checkpoints = self.batches_this_run = 0
        self.last_checkpoint = clock()
        self.progress = tqdm(total=position["total_pairs"], initial=position["pairs_done"], unit="pair",
                             unit_scale=True, desc="train", smoothing=0.05)
        self.rolling = RollingDraws(self.data_dir, cfg.epochs, data.meta.draws, self.progress, cfg.rolling_draws)
        self.segment_started = time.perf_counter()
        self.loss_plot = LossPlot(self.checkpoint_path.with_name("loss.png"), cfg.model, cfg.loss,
                                  "window" if cfg.model == "cbow" else "pair")

    def run(self) -> bool:
        """Train from the position on to the last epoch; True when --stop-after-batches stopped it first."""
        try:  # the bar closed first, so an error line stands on a line of its own
            for epoch in range(self.position["epoch"], self.cfg.epochs):
                self.rolling.before_epoch(epoch)
                if self.train_epoch(epoch):
                    return self.position["epoch"] < self.cfg.epochs
            return False
        finally:
            self.rolling.close()
            self.progress.close()

    def train_epoch(self, epoch: int) -> bool:
        """The epoch's batches from the position on, its end checkpointed; True when stopped early."""
        cfg, position = self.cfg, self.position
        epoch_data = PairsDataset(self.data_dir, batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                  start_batch=position["epoch_batches"])
        epoch_length = len(epoch_data.plan.stream_workers(cfg.num_workers))  # batches in the epoch's stream
        threads = reads_feed(cfg.model, cfg.loss, self.kernel)
        if threads:  # the GPU kernels: reader threads into pinned buffers, copied to the device (w2v/feed.py)
            loader = WindowFeed(epoch_data.plan, cfg.num_workers, self.device)
        else:
            loader = torch.utils.data.DataLoader(epoch_data, batch_size=None, num_workers=cfg.num_workers,
                                                 pin_memory=self.device.type != "cpu")
        stopped = False
        for batch in loader:
            self.train_batch(epoch, batch)
            stopped = bool(cfg.stop_after_batches) and self.batches_this_run >= cfg.stop_after_batches
            due = cfg.checkpoint_minutes and clock() - self.last_checkpoint >= 60 * cfg.checkpoint_minutes
            # The epoch's last batch is followed by the end-of-epoch checkpoint: not two in a row.
            if (stopped or due) and position["epoch_batches"] < epoch_length:
                self.checkpoint()
            if stopped:
                break
        if threads:
            loader.close()
        del loader  # its workers end before the next epoch's start
        if not stopped or position["epoch_batches"] == epoch_length:
            self.rolling.after_epoch(epoch)
            position["epoch"], position["epoch_batches"] = epoch + 1, 0
            self.checkpoint()
            self.rolling.drop_finished(epoch + 1)
        return stopped

    def train_batch(self, epoch: int, batch: WindowBatch) -> None:
        """One batch of windows through the step at the scheduled learning rate."""
        cfg, position = self.cfg, self.position
        n_pairs, n_windows = batch.n_pairs, batch.n_windows
        lr_start = learning_rate(cfg, position["pairs_done"], position["total_pairs"])
        lr_end = learning_rate(cfg, position["pairs_done"] + n_pairs, position["total_pairs"])
        seed = batch_seed(cfg.seed, epoch, position["epoch_batches"])
        loss = self.step(batch, lr_start, lr_end, seed)
        if not math.isfinite(loss):
            diverged(loss, epoch, position["epoch_batches"], self.kernel, lr_start, step_config(cfg))
        self.rolling.check()  # a failed writer stops training now, not at the epoch's end
        position["pairs_done"] += n_pairs
        position["batches"] += 1
        position["epoch_batches"] += 1
        self.batches_this_run += 1
        # per training example: a pair in skip-gram, a window (one prediction of its target) in CBOW
        examples = max(1, n_windows if cfg.model == "cbow" else n_pairs)
        self.loss_rows.append([position["batches"], epoch + 1, position["pairs_done"], round(lr_start, 7),
                               round(loss / examples, 5)])
        self.progress.update(n_pairs)
        self.progress.set_postfix(epoch=epoch + 1, loss=f"{loss / examples:.3f}", lr=f"{lr_start:.5f}")

    def checkpoint(self) -> None:
        self.position["train_s"] += time.perf_counter() - self.segment_started
        save_checkpoint(self.checkpoint_path, self.model, self.position, self.loss_rows, self.cfg)
        # redrawn at checkpoints (at most every views.REDRAW_SECONDS, and after the last epoch): a run can be watched
        self.loss_plot.update(self.loss_rows, final=self.position["epoch"] >= self.cfg.epochs)
        self.checkpoints += 1
        self.last_checkpoint, self.segment_started = clock(), time.perf_counter()


def print_neighbours(words: list[str], model: SkipGram, wanted: list[str]) -> None:
    vocabulary = set(words)
    known = [word for word in wanted if word in vocabulary]
    for word, found in nearest_neighbours(words, model.input.weight.detach().cpu(), known, 8).items():
        print(f"  {word}: " + ", ".join(f"{w} ({s:.2f})" for w, s in found))


def run_figures(cfg, training: Training, device: torch.device, needed: int, available: int) -> dict:
    """The stats of a finished run: the settings it trained with (as the user set them) and its rates."""
    meta, position, loss_rows = training.data.meta, training.position, training.loss_rows
    torch_step, hs = training.kernel == "torch", cfg.loss == "hs"
    train_s = max(position["train_s"], 1e-9)
    return dict(
        device=str(device), model=cfg.model, order=meta.order, shuffled=meta.shuffle, kernel=training.kernel,
        micro_batch=cfg.micro_batch if torch_step and not hs else None,
        hs_micro_batch=cfg.hs_micro_batch if torch_step and hs else None,
        epochs=cfg.epochs, dim=cfg.dim, vocab_size=len(training.data.words), pairs=position["pairs_done"],
        loss=cfg.loss, train_s=round(train_s, 2), pairs_per_s=round(position["pairs_done"] / train_s),
        corpus_words_per_s=round(meta.tokens * cfg.epochs / train_s),
        final_loss=loss_rows[-1][4] if loss_rows else None, checkpoints=training.checkpoints,
        memory_needed_mb=round(needed / 1e6, 1), memory_available_mb=round(available / 1e6, 1))


def small_corpus_advice(tokens: int | None, epochs: int, window: int | None) -> str | None:
    """One line for a corpus under SMALL_CORPUS_TOKENS trained with the defaults made for Taiga (EPOCHS epochs,
    pairs_dataset.py's window 5), naming the settings measured better on a corpus of that size; None otherwise."""
    if not tokens or tokens >= SMALL_CORPUS_TOKENS or (epochs, window) != (EPOCHS, 5):
        return None
    return (f"a small corpus ({tokens / 1e6:.1f}M tokens): the defaults are made for billions; on the 13.5M-word "
            f"Russian corpus --epochs 10 with pairs_dataset.py --window 2 --draws 10 scored higher on SimLex965 "
            f"(docs/training.md, Settings by corpus size)")


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    settle_flags(cfg)
    data_dir = Path(cfg.data_dir)
    report = StageReport("train", data_dir)
    data = load_data(data_dir, cfg.loss)
    device = pick_device(cfg.device, cfg.threads)
    kernel = choose_kernel(cfg.kernel, device, cfg.model, cfg.loss)
    if data.meta.draws < cfg.epochs:
        print(f"pairs/ holds {data.meta.draws} draw(s) for {cfg.epochs} epochs: epoch e reads draw e % "
              f"{data.meta.draws} (pairs_dataset.py --draws {cfg.epochs} gives every epoch its own)"
              + (": rolling draws keep each on disk until its last epoch" if cfg.rolling_draws else ""))
    advice = small_corpus_advice(data.meta.tokens, cfg.epochs, data.meta.window)
    if advice:
        print(advice)
    # The learning rate decays over the pairs of all epochs; draws differ a little in size.
    total_pairs = schedule_pairs(data.meta, data.counts, cfg.epochs, cfg.rolling_draws)
    needed, available = check_memory(len(data.words), step_config(cfg), kernel, device,
                                     data.tree.max_len if data.tree else 0, reader_bytes(data.meta))
    print(f"memory: {size_text(needed)} needed on {device.type}, {size_text(available)} available; kernel {kernel}")

    model = SkipGram(len(data.words), cfg.dim, seed=cfg.seed, words=data.words, loss=cfg.loss,
                     init_range=cfg.init_range).to(device)
    position, loss_rows = start_position(cfg, model, data_dir / "model" / "checkpoint.pt", total_pairs)
    unigram = None if data.table is None else torch.as_tensor(np.asarray(data.table), device=device)
    step = make_step(cfg.model, cfg.loss, kernel, model, cfg, data.tree, unigram)
    kernel, step = self_check.first_run(cfg, kernel, model, step, data.tree, unigram, data.counts, device)
    training = Training(cfg, data, model, step, kernel, device, position, loss_rows)
    if training.run():
        print(f"stopped after {training.batches_this_run} batch(es); continue with --resume")
        return {"stopped": True, "position": position, "checkpoints": training.checkpoints}

    check_finite(model, "vectors")
    write_outputs(data_dir / "model", data.words, model, loss_rows, "window" if cfg.model == "cbow" else "pair")
    print_neighbours(data.words, model, cfg.neighbour_words)
    figures = run_figures(cfg, training, device, needed, available)
    write_card(data_dir, vars(cfg), figures)  # model/card.json and model/README.md (w2v/model_card.py)
    if cfg.card_scores:  # evaluate.py's default sets, the scores added to the card
        evaluate.main(["--data-dir", str(data_dir), "--vectors", str(data_dir / "model" / "embeddings.npy"),
                       "--card"])
    return report.finish(**figures)


if __name__ == "__main__":
    run(main)
