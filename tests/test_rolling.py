"""train.py --rolling-draws: the same vectors as a run over every draw on disk (given the same schedule total),
draws written byte for byte as a full run writes them, never more than two on disk, exact resume after a stop,
a failing background writer stopping training with its one line."""
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pairs_dataset
import train
from w2v import draws
from w2v.common import StageError
from w2v.draws import schedule_pairs
from w2v.pairs_meta import PairsMeta
from helpers import TRAIN_ARGS, run_stages, write_corpus

PAIRS_FLAGS = ["--window", "4", "--sample", "0", "--pairs-per-shard", "20000", "--row-group-pairs", "20000",
               "--draws", "3"]  # run_stages' settings, 3 draws
EPOCHS = ["--epochs", "3"]


@pytest.fixture(scope="module")
def full_data(tmp_path_factory) -> Path:
    """Stages 1-4 with all 3 draws written at once: the reference."""
    folder = tmp_path_factory.mktemp("rolling")
    write_corpus(folder / "corpus.txt", documents=600)
    run_stages(folder / "data", folder / "corpus.txt", pairs_per_shard=20_000, draws=3)
    return folder / "data"


def shard_bytes(pairs_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in pairs_dir.glob("shard-*.parquet")}


@pytest.fixture
def rolling_data(full_data, tmp_path) -> Path:
    """A copy with draw 0 only, as `make run ROLLING=1` leaves it before train.py."""
    data_dir = tmp_path / "data"
    shutil.copytree(full_data, data_dir, ignore=shutil.ignore_patterns("model", "pairs"))
    pairs_dataset.main(["--data-dir", str(data_dir), *PAIRS_FLAGS, "--only-draws", "0", "--plan-draws", "2"])
    return data_dir


def draws_present(pairs_dir: Path, draw_of: dict[str, int]) -> set[int]:
    """Draws with a shard file under pairs/, finished (named as in the full run) or being written (staging)."""
    present = set()
    for path in pairs_dir.rglob("*.parquet"):
        staged = re.match(r"draw-(\d+)-shard-", path.name)
        present.add(int(staged.group(1)) if staged else draw_of[path.name])
    return present


@pytest.mark.slow
def test_rolling_run_equals_all_draws_on_disk_and_keeps_two(full_data, rolling_data, monkeypatch, capsys):
    full_meta = json.loads((full_data / "pairs" / "meta.json").read_text())
    draw_of = {shard["file"]: shard["draw"] for shard in full_meta["shards"]}
    full_shards = shard_bytes(full_data / "pairs")
    pairs_dir = rolling_data / "pairs"
    seen_at_batches: list[set[int]] = []
    compared: list[int] = []

    original_make_step = train.make_step

    def watching_make_step(*args, **kwargs):
        step = original_make_step(*args, **kwargs)

        def watched(*step_args):
            seen_at_batches.append(draws_present(pairs_dir, draw_of))
            return step(*step_args)
        return watched

    original_remove = draws.remove_draws

    def checking_remove(directory: Path, draws) -> int:
        # the peak: the finished draw and the next one, before the finished one goes; each equals the full run's
        present = draws_present(directory, draw_of)
        seen_at_batches.append(present)
        for name, content in shard_bytes(directory).items():
            assert content == full_shards[name], name
            compared.append(draw_of[name])
        return original_remove(directory, draws)

    monkeypatch.setattr(train, "make_step", watching_make_step)
    monkeypatch.setattr(draws, "remove_draws", checking_remove)
    rolling_args = ["--data-dir", str(rolling_data), *EPOCHS, *TRAIN_ARGS, "--rolling-draws"]
    figures = train.main(rolling_args)
    out = capsys.readouterr()
    assert figures["pairs"] == sum(full_meta["pairs_per_draw"])
    assert re.search(r"epoch 1 waited \d+\.\d s for draw 1", out.err + out.out)
    assert max(map(len, seen_at_batches)) == 2 and {0, 1} in seen_at_batches and {1, 2} in seen_at_batches
    assert sorted(set(compared)) == [0, 1, 2]  # every draw compared byte for byte before its deletion
    meta = json.loads((pairs_dir / "meta.json").read_text())
    assert meta["pairs_per_draw"] == [None, None, None] and meta["shards"] == [] and meta["bytes"] == 0
    assert sorted(path.name for path in pairs_dir.iterdir()) == ["meta.json"]  # no staging folder, no log left
    assert not list((rolling_data / "model").glob("pairs-draw-*.log"))

    # The schedule: draw 0's pairs plus the expected pairs of draws 1 and 2 (the disk plan's bound).
    import torch
    total = torch.load(rolling_data / "model" / "checkpoint.pt", weights_only=False)["position"]["total_pairs"]
    _, counts = train.load_vocab(rolling_data, with_words=False)
    expected = round(draws.expected_pairs_per_draw(counts, 4, 0.0, True))
    assert total == full_meta["pairs_per_draw"][0] + 2 * expected
    assert total > sum(full_meta["pairs_per_draw"])  # edges ignored: the estimate is above the pairs written

    monkeypatch.setattr(train, "make_step", original_make_step)
    monkeypatch.setattr(train, "schedule_pairs", lambda *args: total)
    train.main(["--data-dir", str(full_data), *EPOCHS, *TRAIN_ARGS])
    np.testing.assert_array_equal(np.load(rolling_data / "model" / "embeddings.npy"),
                                  np.load(full_data / "model" / "embeddings.npy"))
    assert (rolling_data / "model" / "loss.csv").read_text() == (full_data / "model" / "loss.csv").read_text()
    shutil.rmtree(full_data / "model")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


@pytest.mark.slow
def test_stop_then_resume_equals_an_unbroken_rolling_run(full_data, rolling_data, tmp_path):
    pristine = tmp_path / "pristine"
    shutil.copytree(rolling_data, pristine)
    args = ["--data-dir", str(rolling_data), *EPOCHS, *TRAIN_ARGS, "--rolling-draws"]
    train.main(args)
    unbroken = np.load(rolling_data / "model" / "embeddings.npy")
    unbroken_loss = (rolling_data / "model" / "loss.csv").read_text()
    shutil.rmtree(rolling_data)
    shutil.copytree(pristine, rolling_data)

    # 5,000-pair batches, ~39,000 pairs a draw: batch 3 is inside epoch 1, with draw 1's writer just started
    stopped = train.main(args + ["--stop-after-batches", "3"])
    assert (stopped["position"]["epoch"], stopped["position"]["epoch_batches"]) == (0, 3)
    assert not list((rolling_data / "pairs").glob(".draws.tmp-*"))  # the stopped writer's shards removed
    # A writer killed with train.py (SIGKILL: no clean-up) leaves its staging folder: the next writer removes it.
    stale = rolling_data / "pairs" / f".draws.tmp-{dead_pid()}"
    stale.mkdir()
    (stale / "draw-00001-shard-00000.parquet").write_bytes(b"half written")
    stopped = train.main(args + ["--resume", "--stop-after-batches", "7"])  # 10 batches: into epoch 2
    assert (stopped["position"]["epoch"], stopped["position"]["epoch_batches"]) == (1, 2)
    assert not stale.exists()
    meta = json.loads((rolling_data / "pairs" / "meta.json").read_text())
    assert meta["pairs_per_draw"][0] is None and meta["pairs_per_draw"][1] is not None  # draw 0 deleted
    train.main(args + ["--resume"])
    np.testing.assert_array_equal(np.load(rolling_data / "model" / "embeddings.npy"), unbroken)
    assert (rolling_data / "model" / "loss.csv").read_text() == unbroken_loss


def test_failing_background_writer_stops_training_with_its_line(rolling_data, monkeypatch):
    original = draws.pairs_dataset_argv
    monkeypatch.setattr(draws, "pairs_dataset_argv",
                        lambda data_dir, meta, draw: original(data_dir, meta, draw) + ["--window", "0"])
    with pytest.raises(StageError) as error:
        train.main(["--data-dir", str(rolling_data), *EPOCHS, *TRAIN_ARGS, "--rolling-draws"])
    log = rolling_data / "model" / "pairs-draw-1.log"
    assert str(error.value) == (f"writing draw 1 (pairs_dataset.py --only-draws 1) failed with exit status 2: "
                                f"--window must be at least 1 and at most 63, got 0 (log: {log})")
    assert "\n" not in str(error.value)
    # stopped inside epoch 1 or at its end, before the end-of-epoch checkpoint
    assert not (rolling_data / "model" / "checkpoint.pt").exists()


def test_schedule_counts_expected_pairs_of_absent_draws(full_data, rolling_data):
    meta = PairsMeta.read(rolling_data / "pairs")
    _, counts = train.load_vocab(rolling_data, with_words=False)
    expected = round(draws.expected_pairs_per_draw(counts, 4, 0.0, True))
    assert expected == 600 * 15 * 5  # sample 0: every token retained, (window + 1) pairs each
    written = meta.pairs_per_draw[0]
    assert schedule_pairs(meta, counts, 5, rolling=True) == 2 * written + 3 * expected  # draws 0 1 2 0 1
    with pytest.raises(StageError, match=r"^pairs/ holds no shards of draw 1: write it with pairs_dataset.py "
                                         r"--only-draws 1,2, or train with --rolling-draws$"):
        schedule_pairs(meta, counts, 3, rolling=False)
    full_meta = PairsMeta.read(full_data / "pairs")
    assert schedule_pairs(full_meta, counts, 3, rolling=False) == sum(full_meta.pairs_per_draw)


def test_plan_draws_counts_two_draws_on_disk(rolling_data, capsys):
    shutil.rmtree(rolling_data / "pairs")
    pairs_dataset.main(["--data-dir", str(rolling_data), *PAIRS_FLAGS, "--only-draws", "0", "--plan-draws", "2"])
    assert "disk plan: pairs need ~0.0 GB on disk: 2 draw(s) x" in capsys.readouterr().out
    pairs_dataset.main(["--data-dir", str(rolling_data), *PAIRS_FLAGS, "--only-draws", "1"])
    assert "disk plan: pairs need ~0.0 GB on disk: 1 draw(s) x" in capsys.readouterr().out


def test_background_writer_is_set_to_die_with_train():
    # PR_SET_PDEATHSIG survives exec: the child reads its own setting back with PR_GET_PDEATHSIG (2).
    read_back = ("import ctypes; value = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(value)); "
                 "print(value.value)")
    child = subprocess.run([sys.executable, "-c", read_back], capture_output=True, text=True, check=True,
                           preexec_fn=functools.partial(draws.die_with_parent, os.getpid()))
    assert int(child.stdout) == 9  # SIGKILL
    plain = subprocess.run([sys.executable, "-c", read_back], capture_output=True, text=True, check=True)
    assert int(plain.stdout) == 0
