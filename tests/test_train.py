"""train.py's loop: --kernel torch learns, resume inside a shard is exact, checkpoints by (injected) time, the NaN
guard, the memory check; and dataset.py's start_batch, on which resume stands."""
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from w2v.kernels import steps
import train
from w2v.common import StageError, load_vocab
from dataset import PairsDataset
from w2v import memory
from w2v.memory import memory_plan, size_text
from w2v.pairs_meta import pairs_dataset_argv
from w2v.pairs_meta import PairsMeta
from w2v.shards import WindowShards, reader_bytes
from helpers import MODEL_FILES, TRAIN_ARGS, share_in_cluster, uninterrupted_then_reset

ROOT = Path(__file__).resolve().parent.parent

def batches_as_arrays(batches) -> list[np.ndarray]:
    """Each window batch as rows (target, context, whether the pair starts a window)."""
    arrays = []
    for batch in batches:
        starts = np.zeros(batch.n_pairs, dtype=np.int32)
        starts[batch.window_starts[:-1].numpy()] = 1
        arrays.append(np.stack([batch.pair_targets().numpy(), batch.context.numpy(), starts], 1))
    return arrays


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_start_batch_continues_the_loader_stream_exactly(data_dir, num_workers):  # noqa: F811
    def stream(start_batch: int) -> list[np.ndarray]:
        dataset = PairsDataset(data_dir, batch_size=300, seed=3, start_batch=start_batch)
        return batches_as_arrays(DataLoader(dataset, batch_size=None, num_workers=num_workers))

    full = stream(0)
    owners = PairsDataset(data_dir, batch_size=300, seed=3).plan.stream_workers(num_workers)
    assert len(owners) == len(full)
    # uneven workers: 16 units of ~400 pairs or less, so some workers run out before the others
    for start in sorted({1, 2, 5, len(full) // 2, len(full) - 2, len(full) - 1, len(full)}):
        resumed = stream(start)
        assert len(resumed) == len(full) - start, start
        for got, expected in zip(resumed, full[start:]):
            np.testing.assert_array_equal(got, expected)
    past_the_end = PairsDataset(data_dir, batch_size=300, seed=3, start_batch=len(full) + 1)
    with pytest.raises(StageError, match=fr"^start batch {len(full) + 1} is past the end of epoch 0's {len(full)} "
                                         fr"batches \(batch size 300, {max(1, num_workers)} readers\)$"):
        past_the_end.worker_plan(num_workers)


def test_start_batch_skips_trained_units_unread(data_dir, monkeypatch):  # noqa: F811
    read = []
    original = WindowShards.read_unit
    monkeypatch.setattr(WindowShards, "read_unit",
                        lambda self, shard, unit, scratch=None: read.append((shard, unit)) or
                        original(self, shard, unit, scratch))
    dataset = PairsDataset(data_dir, batch_size=1000, start_batch=3)
    resumed = list(dataset)
    # 3,000 pairs trained: the units that end by then are not read; the one holding pair 3,000 is read and cut
    ends = np.cumsum([rows for _, _, rows in dataset.units])
    first = int(np.searchsorted(ends, 3000, side="right"))
    assert first >= 5 and ends[first - 1] < 3000
    assert read == [unit[:2] for unit in dataset.units[first:]]
    full = np.concatenate(batches_as_arrays(PairsDataset(data_dir, batch_size=1000)))
    resumed = np.concatenate(batches_as_arrays(resumed))
    np.testing.assert_array_equal(resumed[:, :2], full[3000:, :2])
    np.testing.assert_array_equal(resumed[1:, 2], full[3001:, 2])  # the resumed stream's first pair starts a window



@pytest.mark.slow
def test_torch_kernel_learns_planted_clusters_at_the_default_micro_batch(data):
    data_dir, pairs_per_draw, clusters = data
    assert train.MICRO_BATCH == 8192
    # 20,000-pair batches: each is 3 updates of the default micro-batch (8,192, 8,192, 3,616 pairs). With 102 words
    # a word comes ~80 times into a micro-batch and moves by the sum of its stale gradients: at --lr 0.012 this
    # corpus diverges (loss 3.6e10 after 3 epochs), at 0.004-0.008 it learns the clusters (tried when writing this).
    args = ["--data-dir", str(data_dir), "--epochs", "3", *TRAIN_ARGS, "--kernel", "torch", "--batch-size", "20000",
            "--lr", "0.006"]
    figures = train.main(args)
    assert figures["kernel"] == "torch" and figures["micro_batch"] == 8192
    assert figures["pairs"] == 2 * pairs_per_draw[0] + pairs_per_draw[1]
    share = share_in_cluster(data_dir, clusters)
    assert share > 0.9, f"only {share:.0%} of the 5 nearest neighbours share the planted cluster"



@pytest.mark.slow
@pytest.mark.parametrize("loss, kernel, num_workers", [("ns", "torch", 0), ("hs", "torch", 0), ("ns", "window", 2),
                                                      ("hs", "window", 0)])
def test_resume_inside_a_shard_is_bit_exact(data, loss, kernel, num_workers):
    data_dir, pairs_per_draw, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--loss", loss, "--micro-batch", "1024",
            "--kernel", kernel, "--num-workers", str(num_workers)]
    vectors, loss_log = uninterrupted_then_reset(args, data_dir)
    batches_per_epoch = -(-pairs_per_draw[0] // 5000)
    # 5,000-pair batches in 20,000-pair shards: batch 3 ends inside the first shard, batch 6 inside the second
    stopped = train.main(args + ["--stop-after-batches", "3"])
    assert stopped["position"]["epoch_batches"] == 3 and stopped["checkpoints"] == 1
    if num_workers:  # the workers' interleaving places the batches: inside an epoch it must stay the same
        with pytest.raises(StageError, match="^checkpoint was trained with --num-workers 2, not 1: resume with the "
                                             "same number inside an epoch$"):
            train.main(args[:-1] + ["1", "--resume"])
    stopped = train.main(args + ["--resume", "--stop-after-batches", "3"])
    assert (stopped["position"]["epoch"], stopped["position"]["epoch_batches"]) == (0, 6)
    stopped = train.main(args + ["--resume", "--stop-after-batches", str(batches_per_epoch - 6 + 2)])
    assert (stopped["position"]["epoch"], stopped["position"]["epoch_batches"]) == (1, 2)
    assert stopped["checkpoints"] == 2  # the end of epoch 0 and the stop
    train.main(args + ["--resume"])
    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), vectors)
    assert (data_dir / "model" / "loss.csv").read_text() == loss_log


class FakeClock:
    """Time that passes only when a batch is trained: one minute per batch."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_time(monkeypatch, crash_at_batch: int = 0) -> tuple[FakeClock, list[tuple[int, int]]]:
    """Patch train's clock, its step (a minute per batch; optionally a crash) and record each checkpoint's place."""
    clock, saved, trained = FakeClock(), [], [0]
    monkeypatch.setattr(train, "clock", clock)
    make_step, save_checkpoint = train.make_step, train.save_checkpoint

    def make_timed_step(*args, **kwargs):
        step = make_step(*args, **kwargs)

        def timed(*batch):
            trained[0] += 1
            if trained[0] == crash_at_batch:
                raise KeyboardInterrupt  # as a kill: nothing after the last checkpoint is kept
            clock.now += 60.0
            return step(*batch)
        return timed

    def recording_save(path, model, position, loss_rows, cfg):
        saved.append((position["epoch"], position["epoch_batches"]))
        save_checkpoint(path, model, position, loss_rows, cfg)

    monkeypatch.setattr(train, "make_step", make_timed_step)
    monkeypatch.setattr(train, "save_checkpoint", recording_save)
    return clock, saved


@pytest.mark.slow
def test_checkpoints_by_time_and_a_crash_loses_at_most_the_interval(data, monkeypatch):
    data_dir, pairs_per_draw, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--checkpoint-minutes", "2.5"]
    batches = [-(-pairs // 5000) for pairs in pairs_per_draw]
    assert min(batches) >= 7
    _, saved = counting_time(monkeypatch)
    vectors, loss_log = uninterrupted_then_reset(args, data_dir)
    # a minute per batch, a checkpoint when 2.5 minutes have passed since the last: after batches 3, 6, 9, ...;
    # one at each epoch's end, from which the count starts again
    expected = ([(0, b) for b in range(3, batches[0], 3)] + [(1, 0)]
                + [(1, b) for b in range(3, batches[1], 3)] + [(2, 0)])
    assert saved == expected

    monkeypatch.undo()
    _, saved = counting_time(monkeypatch, crash_at_batch=batches[0] + 5)  # batch 5 of epoch 1
    with pytest.raises(KeyboardInterrupt):
        train.main(args)
    assert saved == [(0, b) for b in range(3, batches[0], 3)] + [(1, 0), (1, 3)]
    assert not (data_dir / "model" / "embeddings.npy").exists()
    monkeypatch.undo()
    figures = train.main(args + ["--resume"])  # from batch 3 of epoch 1: only batch 4 was lost
    assert figures["checkpoints"] == 1
    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), vectors)
    assert (data_dir / "model" / "loss.csv").read_text() == loss_log

    with pytest.raises(StageError, match=r"^--checkpoint-minutes must be at least 0, got -1.0$"):
        train.main(args + ["--checkpoint-minutes", "-1"])


def test_checkpoint_minutes_zero_checkpoints_at_epoch_ends_only(data, monkeypatch):
    data_dir, _, _ = data
    _, saved = counting_time(monkeypatch)
    figures = train.main(["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--checkpoint-minutes", "0"])
    assert saved == [(1, 0), (2, 0)] and figures["checkpoints"] == 2


def assert_nothing_written(data_dir: Path) -> None:
    assert not any((data_dir / "model" / name).exists() for name in MODEL_FILES)


@pytest.mark.slow
def test_non_finite_loss_stops_with_one_line_and_writes_nothing(data):
    data_dir, _, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--kernel", "torch", "--batch-size", "20000",
            "--lr", "1e6"]
    with pytest.raises(StageError, match=r"^training diverged: loss (nan|inf) at batch \d+ of epoch 1 \(kernel torch, "
                                         r"learning rate [0-9.e+]+ of --lr 1000000.0, micro-batch 8192\): lower --lr "
                                         r"or --micro-batch; the diverged tables were not saved$"):
        train.main(args)
    assert_nothing_written(data_dir)
    done = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: training diverged: loss ")
    assert "Traceback" not in done.stderr
    assert_nothing_written(data_dir)


def test_nan_loss_from_the_window_kernel_and_nan_tables_are_never_saved(data, monkeypatch):
    data_dir, _, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--kernel", "window"]
    make_step = train.make_step
    monkeypatch.setattr(train, "make_step", lambda *a, **k: lambda *batch: math.nan)
    with pytest.raises(StageError, match=r"^training diverged: loss nan at batch 1 of epoch 1 \(kernel window, "
                                         r"learning rate 0.025 of --lr 0.025, window by window\): lower --lr; the "
                                         r"diverged tables were not saved$"):
        train.main(args)
    assert_nothing_written(data_dir)

    # A table that turned NaN while the loss looked finite: neither a checkpoint nor vectors are written.
    def poisoning_step(model_name, loss, kernel, model, *rest):
        step = make_step(model_name, loss, kernel, model, *rest)

        def poisoned(*batch):
            result = step(*batch)
            model.output.weight.data[3, 0] = math.inf
            return result
        return poisoned

    monkeypatch.setattr(train, "make_step", poisoning_step)
    with pytest.raises(StageError, match=r"^output.weight holds NaN or infinite values: checkpoint not written$"):
        train.main(args + ["--stop-after-batches", "1"])
    assert_nothing_written(data_dir)


def test_memory_check_refuses_before_allocating_and_says_what_fits(data, monkeypatch):
    data_dir, _, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--kernel", "window"]  # the plan below
    cfg = train.parse_config(train.__file__, vars(train), args)
    vocab_size = len(load_vocab(data_dir)[1])

    held = reader_bytes(PairsMeta.read(data_dir / "pairs"))
    # two shards of 20,000 pairs: 11 bytes a row of each (ids, window bytes, windows), 14 a pair of a unit
    assert 2 * 11 * 20_000 / 6 < held - 14 * 20_000 < 2 * 11 * 20_000 / 2

    def plan(vocab: int, dim: int) -> int:
        return sum(memory_plan(vocab, dim, cfg, "window", torch.device("cpu"), 0, held).values())

    needed = plan(vocab_size, 24)
    # loader buffers: context, window target and offset (4 + 4 + 4) per pair of 3 batches, the worker's batch
    # buffer, and what the reader holds of its shards
    # the alias table of the negatives: 8 bytes a word
    assert needed == 2 * vocab_size * 24 * 4 + 8 * vocab_size + 3 * 5000 * 12 + 5000 * 12 + held
    available = needed - 5_000
    monkeypatch.setattr(memory, "available_memory", lambda device: available)
    monkeypatch.setattr(train, "SkipGram", lambda *a, **k: pytest.fail("allocated before the memory check"))
    with pytest.raises(StageError) as refused:
        train.main(args)
    # the largest vocabulary and dimension that fit, each found exactly
    max_vocab = max(v for v in range(1, vocab_size + 1) if plan(v, 24) <= available)
    max_dim = max(d for d in range(1, 25) if plan(vocab_size, d) <= available)
    assert 0 < max_vocab < vocab_size and 0 < max_dim < 24
    assert str(refused.value) == (
        f"not enough memory on cpu: training needs {size_text(needed)} (tables {size_text(2 * vocab_size * 24 * 4)}, "
        f"unigram table {size_text(8 * vocab_size)}, loader buffers {size_text(240_000 + held)}) but {size_text(available)} is "
        f"available: try "
        f"convert_to_int.py --max-vocab {max_vocab} (then pairs_dataset.py and unigram_table.py again), or "
        f"--dim {max_dim}, or a smaller --batch-size")
    assert_nothing_written(data_dir)
    monkeypatch.undo()
    assert train.main(args)["memory_needed_mb"] == round(needed / 1e6, 1)


def test_memory_plan_items():
    cfg = train.parse_config(train.__file__, vars(train), ["--dim", "100", "--num-workers", "2"])
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    for kernel in ("window",):  # every step draws its own negatives: none in the loader's buffers
        assert memory_plan(1000, 100, cfg, kernel, cpu, 0, 8 * 10**6) == {  # a reader holding 8 MB
            "tables": 2 * 1000 * 100 * 4, "unigram table": 8 * 1000, "huffman tree": 0,
            "loader buffers": (2 * 2 + 1) * 300_000 * 12 + 2 * (300_000 * 12 + 8 * 10**6)}
    # the torch kernel on CUDA: the batch and its negatives on the device, and one micro-batch's temporaries
    assert memory_plan(1000, 100, cfg, "torch", cuda, 0, 10**6) == {
        "tables": 800_000, "unigram table": 8 * 1000, "huffman tree": 0, "loader buffers": 300_000 * (12 + 5 * 40),
        "step temporaries": 8192 * (2 * 100 * 4 + 2 * 6 * 100 * 4 + 6 * 40 + 8)}
    hs = train.parse_config(train.__file__, vars(train), ["--dim", "100", "--loss", "hs", "--micro-batch", "0"])
    assert memory_plan(1000, 100, hs, "torch", cuda, 17, 10**6) == {
        "tables": 1999 * 100 * 4, "unigram table": 0, "huffman tree": 1000 * (17 * 5 + 8),
        "loader buffers": 300_000 * 12, "step temporaries": 300_000 * (2 * 100 * 4 + 2 * 18 * 100 * 4 + 18 * 40 + 8)}


def test_kernel_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    fused = ("sg", "ns", "triton") in steps.STEPS  # where Triton imports (requirements-dev.txt)
    for model in ("sg", "cbow"):
        for loss in ("ns", "hs"):
            # auto: the numba window kernel on the CPU; on CUDA the fused Triton kernel, else the torch step
            assert train.choose_kernel("auto", cpu, model, loss) == "window"
            assert train.choose_kernel("auto", cuda, model, loss) == ("triton" if fused else "torch")
            assert train.choose_kernel("torch", cpu, model, loss) == "torch"
    on_cuda = " or ".join(name for (model, loss, name), spec in steps.STEPS.items()
                          if (model, loss) == ("sg", "ns") and spec.runs_on("cuda"))  # triton or torch, or torch
    with pytest.raises(StageError, match=f"^--kernel window runs on the CPU only, not on cuda: use --kernel "
                                         f"{on_cuda} or --device cpu$"):
        train.choose_kernel("window", cuda, "sg", "ns")
    kernels = ", ".join(["auto", *steps.kernel_names()])
    with pytest.raises(StageError, match=f"^--kernel must be {kernels}, not 'numba'$"):
        train.choose_kernel("numba", cpu, "sg", "ns")


def test_a_new_kernel_is_one_registration(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(steps, "STEPS", dict(steps.STEPS))
    before = train.choose_kernel("auto", cuda, "sg", "ns")
    built = []
    steps.register("sg", "ns", "fused", frozenset({"cuda"}), micro_batched=True)(
        lambda model, cfg, tree, unigram: built.append(model) or (lambda *batch: 0.0))
    assert train.choose_kernel("fused", cuda, "sg", "ns") == "fused" and train.micro_batched("fused")
    assert train.choose_kernel("auto", cuda, "sg", "ns") == before  # registered last: auto keeps its choice
    others = " or ".join(name for name in steps.kernel_names() if name not in ("fused",)
                         and steps.STEPS.get(("sg", "ns", name)) and steps.STEPS[("sg", "ns", name)].runs_on("cpu"))
    with pytest.raises(StageError, match=f"^--kernel fused runs on cuda only, not on cpu: use --kernel {others} "
                                         "or --device cuda$"):
        train.choose_kernel("fused", cpu, "sg", "ns")
    model = train.SkipGram(10, 4)
    assert train.make_step("sg", "ns", "fused", model, SimpleNamespace())() == 0.0 and built == [model]
    with pytest.raises(StageError, match="^no training step for --model cbow --loss ns --kernel fused"):
        train.make_step("cbow", "ns", "fused", model, SimpleNamespace())


# --- models, orders and window_starts ------------------------------------------------------------------

def test_the_step_gets_each_batchs_windows(data, monkeypatch):
    data_dir, pairs_per_draw, _ = data
    seen = []
    make_step = train.make_step

    def recording_make_step(*args, **kwargs):
        step = make_step(*args, **kwargs)

        def recording(batch, *rest):
            seen.append((batch.pair_targets().numpy().copy(), batch.window_starts.numpy().copy()))
            return step(batch, *rest)
        return recording

    monkeypatch.setattr(train, "make_step", recording_make_step)
    figures = train.main(["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS])
    assert figures["order"] == "windows" and figures["model"] == "sg"
    assert figures["kernel"] == "window"
    assert sum(len(target) for target, _ in seen) == pairs_per_draw[0]
    for target, starts in seen:
        assert starts[0] == 0 and starts[-1] == len(target) and np.all(np.diff(starts) > 0)
        run_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
        assert np.all(target[1:][run_of[1:] == run_of[:-1]] == target[:-1][run_of[1:] == run_of[:-1]])
    # window 4 over sub-sampling 0: most windows hold several pairs
    assert sum(len(target) for target, _ in seen) > 3 * sum(len(starts) - 1 for _, starts in seen)


@pytest.mark.parametrize("loss", ["ns", "hs"])
def test_window_kernels_learn_planted_clusters_through_train(data, loss):
    data_dir, pairs_per_draw, clusters = data
    figures = train.main(["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--loss", loss, "--lr", "0.05"])
    assert figures["kernel"] == "window" and figures["order"] == "windows"  # auto on shards of order windows
    assert figures["pairs"] == sum(pairs_per_draw)
    share = share_in_cluster(data_dir, clusters)
    assert share > 0.9, f"only {share:.0%} of the 5 nearest neighbours share the planted cluster"


def test_model_refusals(data):
    data_dir, _, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS]
    with pytest.raises(StageError, match=r"^--model must be sg or cbow, not 'skipgram'$"):
        train.main(args + ["--model", "skipgram"])
    kernels = ", ".join(["auto", *steps.kernel_names()])  # window, torch; triton where Triton imports
    with pytest.raises(StageError, match=f"^--kernel must be {kernels}, not 'fast'$"):
        train.main(args + ["--kernel", "fast"])
    # the checkpoint records the model: a resume with another is refused
    train.main(args + ["--stop-after-batches", "1"])
    with pytest.raises(StageError, match=r"^checkpoint was trained with --model sg, not cbow$"):
        train.main(args + ["--model", "cbow", "--resume"])


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sg", "cbow"])
def test_a_pairs_dir_of_the_retired_pair_order_is_refused_with_one_line(data, model):
    # an old pairs/: written in pair order ("order" "pairs"), or before orders existed (no "order": pair order)
    data_dir, _, _ = data
    meta_path = data_dir / "pairs" / "meta.json"
    meta = {key: value for key, value in json.loads(meta_path.read_text()).items() if key != "order"}
    line = (f"{data_dir / 'pairs'} was written in pair order, which this version no longer reads: rebuild it with "
            f"pairs_dataset.py")
    for old in ({**meta, "order": "pairs"}, meta):
        meta_path.write_text(json.dumps(old))
        for rolling in ([], ["--rolling-draws"]):
            with pytest.raises(StageError) as error:
                train.main(["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--model", model, *rolling])
            assert str(error.value) == line
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data-dir", str(data_dir), "--epochs", "1",
                             *TRAIN_ARGS], capture_output=True, text=True)
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1] == f"error: {line}"
    assert not (data_dir / "model").exists()


def test_make_step_names_the_steps_there_are():
    cfg = train.parse_config(train.__file__, vars(train), ["--model", "cbow"])
    model = train.SkipGram(10, 4, seed=1)
    built = ", ".join(f"--model {m} --loss {l} --kernel {k}" for m, l, k in steps.STEPS)
    assert "--model sg --loss ns --kernel window" in built and "--model cbow --loss hs --kernel torch" in built
    with pytest.raises(StageError) as error:
        train.make_step(cfg.model, "ns", "fused", model, cfg, None, None)
    assert str(error.value) == (f"no training step for --model cbow --loss ns --kernel fused in this train.py "
                                f"(there are: {built})")


def test_rolling_draws_write_a_draw_with_the_settings_of_meta_json():
    import pairs_dataset
    from w2v.pairs_meta import PairsMeta
    meta = {"shards": [], "draws": 3, "window": 5, "sample": 1e-4, "seed": 1, "compression": "zstd",
            "pairs_per_shard": 10, "row_group_pairs": 5, "order": "windows", "dynamic_window": False}
    for shuffle in (True, False):
        argv = pairs_dataset_argv(Path("d"), PairsMeta.from_dict({**meta, "shuffle": shuffle}), 2)
        cfg = pairs_dataset.parse_config(pairs_dataset.__file__, vars(pairs_dataset), argv)
        assert (cfg.only_draws, cfg.num_proc, cfg.draws, cfg.window, cfg.sample, cfg.seed, cfg.compression,
                cfg.pairs_per_shard, cfg.row_group_pairs, cfg.dynamic_window, cfg.shuffle) == \
            ("2", 1, 3, 5, 1e-4, 1, "zstd", 10, 5, False, shuffle)
    # a meta.json from before "shuffle" was shuffled
    assert pairs_dataset_argv(Path("d"), PairsMeta.from_dict(meta), 2)[-1] == "--shuffle"


def test_check_finite_finds_a_nan_in_any_block(monkeypatch):
    from word2vec import SkipGram
    monkeypatch.setattr(train, "CHECK_ROWS", 4)  # 10 rows: blocks of 4, 4 and 2
    model = SkipGram(10, 3, seed=1)
    train.check_finite(model, "checkpoint")
    with torch.no_grad():
        model.output.weight[9, 2] = float("inf")  # in the last, short block
    with pytest.raises(StageError, match=r"^output\.weight holds NaN or infinite values: checkpoint not written$"):
        train.check_finite(model, "checkpoint")


@pytest.mark.slow
def test_check_finite_makes_no_float64_copy_of_a_table():
    # sum(dtype=float64) over a whole table first converts it: a 200 MB table would add 400 MB to the peak.
    code = ("import resource, torch, train\n"
            "from word2vec import SkipGram\n"
            "model = SkipGram(200_000, 125, seed=1)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "train.check_finite(model, 'checkpoint')\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(train.__file__).parent)
    assert int(result.stdout.strip()) < 100  # MB of peak growth: blocks of CHECK_ROWS rows, 64 MB each at dim 125


@pytest.mark.parametrize("model", ["sg", "cbow"])
def test_loss_csv_is_per_training_example(data, model):
    # With the output table at zero every score is 0, so an example (a skip-gram pair, or a CBOW window, which
    # predicts its target once whatever its size) costs (1 + K) log 2 until the tables move; at a learning rate of
    # 1e-9 they do not. A negative equal to the target is skipped, so a little less; per pair, CBOW's would be a
    # fraction of it (several pairs per window).
    data_dir, _, _ = data
    train.main(["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--model", model, "--lr", "1e-9",
                "--negatives", "5"])
    import csv
    rows = list(csv.DictReader(open(data_dir / "model" / "loss.csv")))
    first = float(rows[0]["loss"])
    assert 6 * math.log(2) * 0.9 < first <= 6 * math.log(2) + 1e-4, first


def test_hs_takes_its_own_micro_batch(data):
    # every Huffman path starts at the root, so hs's torch step sums a micro-batch's stale gradients on the top
    # nodes: it has its own, smaller micro-batch (HS_MICRO_BATCH), whatever --micro-batch says
    assert train.MICRO_BATCH == 8192 and train.HS_MICRO_BATCH == 1024
    for extra, expected in (([], 8192), (["--loss", "hs"], 1024),
                            (["--loss", "hs", "--hs-micro-batch", "512", "--micro-batch", "4096"], 512)):
        cfg = train.parse_config(train.__file__, vars(train), extra)
        assert train.micro_batch(cfg, cfg.loss) == train.step_config(cfg).micro_batch == expected, extra


@pytest.mark.slow
def test_the_config_recorded_is_the_config_the_user_set(data):
    # the checkpoint's config and the stats name the micro-batches the user set, not the one the step uses
    data_dir, _, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, "--kernel", "torch"]
    for extra, figures_expected in (([], {"micro_batch": 4096, "hs_micro_batch": None}),
                                    (["--loss", "hs"], {"micro_batch": None, "hs_micro_batch": 512})):
        stopped = train.main(args + extra + ["--micro-batch", "4096", "--hs-micro-batch", "512",
                                             "--stop-after-batches", "1"])
        assert stopped["stopped"]
        checkpoint = data_dir / "model" / "checkpoint.pt"
        saved = torch.load(checkpoint, weights_only=False)["config"]
        assert (saved["micro_batch"], saved["hs_micro_batch"]) == (4096, 512), extra
        figures = train.main(args + extra + ["--micro-batch", "4096", "--hs-micro-batch", "512", "--resume"])
        assert {key: figures[key] for key in figures_expected} == figures_expected, extra
        saved = json.loads((data_dir / "stats" / "train.json").read_text())
        assert {key: saved[key] for key in figures_expected} == figures_expected, extra
        checkpoint.unlink()
