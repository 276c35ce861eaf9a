"""Robustness: workers die with their parent, dead runs' temporaries go, a full disk is one line, numeric flags are
checked, invalid UTF-8 is replaced and counted, an evaluation file with no usable row is an error."""
import errno
import importlib
import json
import os
import select
import signal
import subprocess
import sys
from types import SimpleNamespace
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from w2v import common
import dataset
import prep
import unigram_table
from w2v.common import DiskFullError, StageError, at_least, atomic_output, check_flags, parse_config

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("prep", "convert_to_int", "pairs_dataset", "unigram_table", "dataset", "word2vec", "train", "evaluate")


# ---------------------------------------------------------------- workers die with their parent


def wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once process `pid` has exited (zombie or reaped), waiting on its pidfd: no polling loop."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout_s)[0])
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_pool_workers_die_when_the_parent_is_sigkilled(tmp_path):
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from w2v.workers import WorkerPool

        def report_and_block(item):
            os.write(1, b"%d\\n" % os.getpid())  # one write: two workers' lines never interleave
            time.sleep(600)

        if __name__ == "__main__":
            with WorkerPool(2) as pool:
                list(pool.map(report_and_block, range(4)))
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = {int(parent.stdout.readline()) for _ in range(2)}
        assert len(workers) == 2 and parent.pid not in workers
        parent.kill()
        parent.wait()
        assert all(wait_gone(pid) for pid in workers)
    finally:
        parent.kill()


def test_die_with_parent_ends_a_worker_whose_parent_already_died(tmp_path):
    # The race: the parent died before the worker set PR_SET_PDEATHSIG; the worker sees another parent.
    done = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from w2v import workers; "
                           "workers.die_with_parent(1 if workers.os.getppid() != 1 else 2); print('alive')", str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL and done.stdout == ""


def test_dataloader_workers_are_tied_to_the_process_that_made_the_dataset(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(dataset, "die_with_parent", calls.append)
    pairs = dataset.PairsDataset.__new__(dataset.PairsDataset)
    pairs._owner_pid, pairs.batch_size = 12345, 1
    pairs.plan = SimpleNamespace(worker_plan=lambda num_workers: [([], 0)] * num_workers,
                                 batches=lambda units, skip, next_buffer: iter(()))
    monkeypatch.setattr(dataset, "get_worker_info", lambda: None)
    list(iter(pairs))
    assert calls == []  # not in a worker: nothing to tie
    monkeypatch.setattr(dataset, "get_worker_info", lambda: type("Info", (), {"id": 0, "num_workers": 1})())
    list(iter(pairs))
    assert calls == [12345]


# ---------------------------------------------------------------- temporaries of dead runs


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_output_removes_dead_runs_temporaries_only(tmp_path):
    final = tmp_path / "pairs"
    dead = dead_pid()
    live = os.getppid()  # pytest's parent: alive, and started before these temporaries were written
    (tmp_path / f".pairs.tmp-{dead}").mkdir()
    (tmp_path / f".pairs.tmp-{dead}" / "shard-00000.parquet").write_bytes(b"partial")
    (tmp_path / f".pairs.old-{dead}").mkdir()
    (tmp_path / f".pairs.tmp-{live}").mkdir()
    (tmp_path / f".other.tmp-{dead}").write_text("another output's: not ours to remove")
    (tmp_path / f".pairs.tmp-{dead}x").write_text("not the pattern")
    with atomic_output(final) as temp:
        temp.mkdir()
        (temp / "meta.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["pairs", f".pairs.tmp-{live}", f".other.tmp-{dead}", f".pairs.tmp-{dead}x"])


def test_a_reused_pid_does_not_keep_a_dead_runs_temporary(tmp_path):
    # A live process that started after the temporary was last written cannot be its writer.
    later = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        old, recent = tmp_path / f".table.npy.tmp-{later.pid}", tmp_path / f".vocab.json.tmp-{later.pid}"
        old.write_bytes(b"x")
        recent.write_bytes(b"x")
        an_hour_ago = time.time() - 3600
        os.utime(old, (an_hour_ago, an_hour_ago))
        assert common.remove_dead_temporaries(tmp_path / "table.npy") == [old]
        assert common.remove_dead_temporaries(tmp_path / "vocab.json") == []
        assert recent.exists()
    finally:
        later.kill()
        later.wait()


def test_directory_replaced_in_one_step_leaves_nothing_beside_it(tmp_path):
    final = tmp_path / "ids"
    for content in ("first", "second"):
        with atomic_output(final) as temp:
            temp.mkdir()
            (temp / "part-00000.parquet").write_text(content)
    assert (final / "part-00000.parquet").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["ids"]


# ---------------------------------------------------------------- a full disk


def tiny_vocab(data_dir: Path) -> None:
    common.write_vocab(data_dir / "vocab.json", __import__("pyarrow").array(["а", "б", "в"]), np.array([5, 3, 2]))


def test_enospc_from_a_write_is_one_line_and_keeps_the_earlier_output(tmp_path, monkeypatch):
    data = tmp_path / "data"
    tiny_vocab(data)
    unigram_table.main(["--data-dir", str(data), "--power", "1"])
    earlier = (data / "unigram_alias.npy").read_bytes()

    def full_disk(file, array):
        file.write(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(unigram_table.np, "save", full_disk)
    with pytest.raises(DiskFullError) as caught:
        unigram_table.main(["--data-dir", str(data)])
    message = str(caught.value)
    assert message.startswith(f"disk full: no space left on {common._mount_point(data)} for "
                              f"{data / 'unigram_alias.npy'} (it needs about 0.0 MB, ")
    assert "\n" not in message and "earlier outputs are untouched" in message
    assert (data / "unigram_alias.npy").read_bytes() == earlier
    assert sorted(p.name for p in data.iterdir()) == ["stats", "unigram_alias.npy", "vocab.json"]


def test_enospc_in_a_nested_output_names_the_outer_one(tmp_path, monkeypatch):
    real_write_text = Path.write_text

    def full(self, *args, **kwargs):
        if self.name.startswith(".meta.json.tmp-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(DiskFullError, match=r"for .*/pairs \(it needed more than the 0\.0 MB written"):
        with atomic_output(tmp_path / "pairs") as temp:
            temp.mkdir()
            common.write_json(temp / "meta.json", {"shards": []})
    assert list(tmp_path.iterdir()) == []


def test_needed_bytes_named_when_known(tmp_path):
    with pytest.raises(DiskFullError, match=r"\(it needs about 2\.0 MB, "):
        with atomic_output(tmp_path / "x.bin", needed_bytes=2 << 20):
            raise OSError(errno.ENOSPC, "No space left on device")


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError, match="^boom$"):
        with atomic_output(tmp_path / "x.bin") as temp:
            temp.write_bytes(b"x")
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (skips where this process may not mount one)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or mounted.returncode}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_full_tmpfs_stage_says_one_line_and_keeps_earlier_output(small_disk, tmp_path):
    tiny_vocab(small_disk)
    unigram_table.main(["--data-dir", str(small_disk)])
    earlier = (small_disk / "unigram_alias.npy").read_bytes()
    # a 600,000-word vocabulary (kept off the small disk, linked): an alias table of 4.6 MB on a 4 MB disk; numpy
    # reports the short write without ENOSPC
    common.write_vocab(tmp_path / "big_vocab.json", __import__("pyarrow").array([f"w{i}" for i in range(600_000)]),
                       np.ones(600_000, dtype=np.int64))
    (small_disk / "vocab.json").unlink()
    (small_disk / "vocab.json").symlink_to(tmp_path / "big_vocab.json")
    done = subprocess.run([sys.executable, str(ROOT / "unigram_table.py"), "--data-dir", str(small_disk)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: disk full: no space left on {small_disk} for "
                                  f"{small_disk / 'unigram_alias.npy'} (it needs about 4.6 MB, ")
    assert done.stderr.count("\n") == 1
    assert (small_disk / "unigram_alias.npy").read_bytes() == earlier
    assert sorted(p.name for p in small_disk.iterdir()) == ["stats", "unigram_alias.npy", "vocab.json"]


def test_full_tmpfs_torch_checkpoint_is_disk_full(small_disk):
    torch = pytest.importorskip("torch")
    with pytest.raises(DiskFullError, match=f"no space left on {small_disk} for {small_disk / 'checkpoint.pt'}"):
        with atomic_output(small_disk / "checkpoint.pt") as temp:
            torch.save({"model": torch.zeros(2 << 20)}, temp)  # torch says "unexpected pos", not ENOSPC
    assert list(small_disk.iterdir()) == []


# ---------------------------------------------------------------- numeric flags


def numeric_flags(stage: str) -> list[tuple[str, object]]:
    module = importlib.import_module(stage)
    defaults = parse_config(module.__file__, vars(module), [])
    return [(name, value) for name, value in vars(defaults).items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)]


@pytest.mark.parametrize("stage, flag, bad", [
    (stage, name, bad) for stage in STAGES for name, value in numeric_flags(stage)
    for bad in ((["nan", "-1e300"] if isinstance(value, float) else ["-1000000000"]))])
def test_every_numeric_flag_of_every_stage_is_checked(stage, flag, bad, tmp_path):
    value = dict(numeric_flags(stage))[flag]
    module = importlib.import_module(stage)
    option = "--" + flag.replace("_", "-")
    with pytest.raises(StageError) as caught:
        module.main(["--data-dir", str(tmp_path / "none"), f"{option}={bad}"]
                    + (["--neighbors", "x"] if stage == "evaluate" else []))
    message = str(caught.value)
    assert message.startswith(f"{option} must be ") and message.endswith(f", got {type(value)(bad)!r}")


@pytest.mark.parametrize("argv, message", [
    (["--dim", "-5"], "--dim must be at least 1, got -5"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--lr", "-0.5"], "--lr must be at least 0, got -0.5"),
    (["--min-lr-fraction", "1.5"], "--min-lr-fraction must be at least 0 and at most 1, got 1.5"),
    (["--negatives", "-1"], "--negatives must be at least 0, got -1"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_train_flags_exact_messages(argv, message, tmp_path):
    import train

    with pytest.raises(StageError, match=f"^{message}$"):
        train.main(["--data-dir", str(tmp_path)] + argv)


def test_non_finite_float_message_says_finite(tmp_path):
    import pairs_dataset

    with pytest.raises(StageError, match="^--sample must be a finite number at least 0, got nan$"):
        pairs_dataset.main(["--data-dir", str(tmp_path), "--sample", "nan"])


def test_window_beyond_int8_arithmetic_is_refused(tmp_path):
    import pairs_dataset

    with pytest.raises(StageError, match="^--window must be at least 1 and at most 63, got 64$"):
        pairs_dataset.main(["--data-dir", str(tmp_path), "--window", "64"])


@pytest.mark.slow
def test_train_epochs_zero_from_the_command_line_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data-dir", str(tmp_path), "--epochs", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stderr) == (2, "error: --epochs must be at least 1, got 0\n")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_check_flags_leaves_strings_and_bools_alone():
    cfg = type("Cfg", (), {})()
    cfg.__dict__.update(name="x", flag=True, size=3, rate=0.5)
    check_flags(cfg, size=at_least(1))
    with pytest.raises(StageError, match=r"^--rate must be a finite number, got inf$"):
        cfg.rate = float("inf")
        check_flags(cfg, size=at_least(1))


# ---------------------------------------------------------------- invalid UTF-8


def test_invalid_utf8_is_replaced_cleaned_and_counted(tmp_path):
    (tmp_path / "c.txt").write_bytes(b"hello w\xffrld good\n\xd0\xbf\xd0\xbb\xd0\xbe\xd1\x85\xd0 \xd0\xb4\xd0\xb0\n"
                                     b"clean line\n\xfe\xfe\n")
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "bad \xc3 byte"}\n{"text": "fine"}\n')
    data = tmp_path / "data"
    figures = prep.main(["--dataset", f"{tmp_path / 'c.txt'},{tmp_path / 'd.jsonl'}", "--data-dir", str(data),
                         "--num-proc", "1"])
    tokens = __import__("pyarrow.parquet").parquet.read_table(data / "prep" / "part-00000.parquet")
    assert tokens.column("tokens").to_pylist() == [["hello", "w", "rld", "good"], ["плох", "да"], ["clean", "line"],
                                                   ["bad", "byte"], ["fine"]]
    # \xff, a truncated \xd0, \xfe\xfe (one U+FFFD each byte), a truncated \xc3
    assert (figures["replacement_chars"], figures["texts_with_replacements"]) == (5, 4)
    assert figures["documents"] == 5
    stats = json.loads((data / "stats" / "prep.json").read_text())
    assert stats["replacement_chars"] == 5


def test_clean_texts_counts_replacements_only_when_asked():
    texts = __import__("pyarrow").array(["a\ufffdb", "plain", "\ufffd\ufffd", "ё"])
    counters = {"replacement_chars": 0, "texts_with_replacements": 0}
    assert prep.clean_texts(texts, counters).to_pylist() == [["a", "b"], ["plain"], [], ["ё"]]
    assert counters == {"replacement_chars": 3, "texts_with_replacements": 2}


# ---------------------------------------------------------------- evaluation files without a usable row


def write_vectors(tmp_path: Path) -> Path:
    from w2v.vectors_io import save_word2vec_text

    path = tmp_path / "v.txt"
    save_word2vec_text(path, ["a", "b", "c", "d"], np.eye(4, dtype=np.float32))
    return path


@pytest.mark.slow
def test_similarity_file_without_a_usable_row_is_an_error(tmp_path):
    vectors = write_vectors(tmp_path)
    (tmp_path / "sim.tsv").write_text("# comment\nword1\tword2\tscore\na b\n\n")
    done = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--vectors", str(vectors), "--similarity",
                           str(tmp_path / "sim.tsv")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr == (f"error: {tmp_path / 'sim.tsv'} holds no usable row (two words and a number, tab, comma "
                           f"or space separated; 2 lines of another shape)\n")


def test_analogy_file_without_a_question_is_an_error(tmp_path):
    from evaluate import evaluate_analogies

    (tmp_path / "q.txt").write_text(": capitals\na b c\n: empty\n")
    with pytest.raises(StageError, match=r"q\.txt holds no usable question \(four words on a line after a "
                                         r"': section' line; 1 lines of another shape\)$"):
        evaluate_analogies(["a", "b", "c", "d"], np.eye(4), tmp_path / "q.txt")
