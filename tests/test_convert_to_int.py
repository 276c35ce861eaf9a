"""convert_to_int.py: vocabulary order and filters, exact ids, parts, errors."""
import collections
import functools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import convert_to_int
import prep
from w2v import counting
from w2v.common import StageError, load_vocab
from helpers import read_ids, run_convert, write_prep

REPO = Path(__file__).resolve().parent.parent

# Two prep parts. Counts: б 4, а 3, в 3, г 1, д 1, ё 1, я 1 (ties by code point: а before в; ё after я).
PARTS = [
    [["б", "а", "в", "а"], ["г", "б"]],
    [["а", "в", "б", "д"], ["ё", "я"], ["в", "б"]],
]



def test_vocab_order_and_ids_min_count_1(tmp_path):
    write_prep(tmp_path, PARTS)
    figures = run_convert(tmp_path, "--min-count", "1")
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == {"words": ["б", "а", "в", "г", "д", "я", "ё"], "counts": [4, 3, 3, 1, 1, 1, 1],
                     "min_count": 1, "max_vocab": 0, "corpus_tokens": 14, "vocab_tokens": 14}
    assert read_ids(tmp_path) == [[[0, 1, 2, 1], [3, 0]], [[1, 2, 0, 4], [6, 5], [2, 0]]]
    assert pq.read_schema(tmp_path / "ids" / "part-00000.parquet").field("ids").type.value_type == pa.int32()
    assert figures["documents"] == 5 and figures["corpus_tokens"] == 14 and figures["vocab_size"] == 7
    assert figures["vocab_tokens"] == 14 and figures["tokens_per_s"] > 0
    assert figures["counted_entries"] == 4 + 6 and figures["count_files_bytes"] > 0  # distinct words of each part
    assert figures["distinct_words"] == 7  # of the corpus: the buckets hold each word once
    assert json.loads((tmp_path / "stats" / "convert_to_int.json").read_text())["vocab_size"] == 7


def test_min_count_drops_words_and_empty_documents(tmp_path):
    write_prep(tmp_path, PARTS)
    figures = run_convert(tmp_path, "--min-count", "3")
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["words"] == ["б", "а", "в"] and vocab["counts"] == [4, 3, 3]
    assert vocab["corpus_tokens"] == 14 and vocab["vocab_tokens"] == 10 and vocab["min_count"] == 3
    # г and д go from their documents; [ё, я] is left empty and is dropped.
    assert read_ids(tmp_path) == [[[0, 1, 2, 1], [0]], [[1, 2, 0], [2, 0]]]
    assert figures["documents"] == 4 and figures["empty_documents_dropped"] == 1


def test_max_vocab_keeps_most_frequent(tmp_path):
    write_prep(tmp_path, PARTS)
    run_convert(tmp_path, "--min-count", "1", "--max-vocab", "2")
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["words"] == ["б", "а"] and vocab["max_vocab"] == 2 and vocab["vocab_tokens"] == 7
    assert read_ids(tmp_path) == [[[0, 1, 1], [0]], [[1, 0], [0]]]


def test_part_left_empty_is_skipped_and_parts_renumbered(tmp_path):
    write_prep(tmp_path, [[["a", "b"]], [["rare"]], [["b", "a", "a"]]])
    run_convert(tmp_path, "--min-count", "2")
    assert sorted(p.name for p in (tmp_path / "ids").iterdir()) == ["part-00000.parquet", "part-00001.parquet",
                                                                    "vocab.json"]
    assert read_ids(tmp_path) == [[[0, 1]], [[1, 0, 0]]]


@pytest.mark.parametrize("buckets", ["1", "3", "64"])
def test_matches_plain_python_on_random_corpus(tmp_path, buckets):
    rng = random.Random(5)
    words = [f"w{i}" for i in range(300)]
    weights = [1 / (rank + 1) for rank in range(300)]
    parts = [[rng.choices(words, weights, k=rng.randint(0, 30)) for _ in range(200)] for _ in range(3)]
    parts = [[row for row in part if row] for part in parts]
    # a part without dictionary pages and a part of several row groups read the same
    (tmp_path / "prep").mkdir()
    for index, rows in enumerate(parts):
        options = [{}, {"use_dictionary": False}, {"row_group_size": 17}][index]
        pq.write_table(pa.table({"tokens": pa.array(rows, pa.list_(pa.string()))}),
                       tmp_path / "prep" / f"part-{index:05d}.parquet", **options)
    run_convert(tmp_path, "--min-count", "4", "--buckets", buckets)
    counts = collections.Counter(word for part in parts for row in part for word in row)
    expected = sorted((word for word in counts if counts[word] >= 4), key=lambda word: (-counts[word], word))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab["words"] == expected and vocab["counts"] == [counts[word] for word in expected]
    index = {word: i for i, word in enumerate(expected)}
    want = [[[index[w] for w in row if w in index] for row in part] for part in parts]
    assert read_ids(tmp_path) == [[row for row in part if row] for part in want]


@pytest.mark.slow
def test_two_workers_same_output_as_one(tmp_path):
    rng = random.Random(9)
    parts = [[[rng.choice("абвгдежз") for _ in range(rng.randint(1, 9))] for _ in range(40)] for _ in range(4)]
    outputs = []
    for num_proc in ("1", "2"):
        data = tmp_path / num_proc
        write_prep(data, parts)
        convert_to_int.main(["--data-dir", str(data), "--num-proc", num_proc, "--min-count", "2"])
        outputs.append(((data / "vocab.json").read_text(), read_ids(data)))
    assert outputs[0] == outputs[1]


def test_after_prep(tmp_path):
    (tmp_path / "c.txt").write_text("Кот и пёс.\nПёс, кот, КОТ!\n42\nИ снова кто-то.\n", encoding="utf-8")
    prep.main(["--dataset", str(tmp_path / "c.txt"), "--data-dir", str(tmp_path), "--num-proc", "1"])
    run_convert(tmp_path, "--min-count", "2")
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["words"] == ["кот", "и", "пёс"] and vocab["counts"] == [3, 2, 2] and vocab["corpus_tokens"] == 9
    assert read_ids(tmp_path) == [[[0, 1, 2], [2, 0, 0], [1]]]


def test_missing_prep(tmp_path):
    with pytest.raises(StageError, match="run prep.py first"):
        run_convert(tmp_path)
    (tmp_path / "prep").mkdir()
    (tmp_path / "prep" / "notes.txt").write_text("x")
    with pytest.raises(StageError, match="run prep.py first"):
        run_convert(tmp_path)


def test_bad_parquet_names_the_file(tmp_path):
    write_prep(tmp_path, PARTS)
    (tmp_path / "prep" / "part-00001.parquet").write_bytes(b"garbage, not parquet" * 10)
    with pytest.raises(StageError, match=r"part-00001\.parquet is not a readable prep part .*run prep.py again"):
        run_convert(tmp_path)
    pq.write_table(pa.table({"words": [["a"]]}), tmp_path / "prep" / "part-00001.parquet")
    with pytest.raises(StageError, match=r"part-00001\.parquet has no column tokens"):
        run_convert(tmp_path)
    assert not (tmp_path / "ids").exists() and not (tmp_path / "vocab.json").exists()


def test_empty_vocabulary_suggests_lower_min_count(tmp_path):
    write_prep(tmp_path, PARTS)
    with pytest.raises(StageError, match=r"no word occurs 5 times.*lower --min-count"):
        run_convert(tmp_path)


def test_shell_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "convert_to_int.py"), "--data-dir", str(tmp_path / "X")],
                            capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "run prep.py first" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_vocab_json_round_trips_through_arrow_and_plain_json(tmp_path):
    import numpy as np

    from w2v.common import load_vocab, write_vocab
    words = ["и", 'say "hi"', "back\\slash", "ёлка", "кто-то", "x" * 70_000] + [f"w{i}" for i in range(70_000)]
    counts = np.arange(len(words), 0, -1, dtype=np.int64) * 3
    write_vocab(tmp_path / "vocab.json", pa.array(words), counts, min_count=5, vocab_tokens=int(counts.sum()))
    stored = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))  # valid JSON for any tool
    assert stored["words"] == words and stored["counts"] == counts.tolist() and stored["min_count"] == 5
    loaded_words, loaded_counts = load_vocab(tmp_path)
    assert loaded_words == words
    np.testing.assert_array_equal(loaded_counts, counts)
    assert load_vocab(tmp_path, with_words=False)[0] is None

    # a pretty-printed vocab.json (written by hand or another tool) still loads
    (tmp_path / "vocab.json").write_text(json.dumps({"words": ["a", "b"], "counts": [5, 4]}, indent=2))
    assert load_vocab(tmp_path)[0] == ["a", "b"]
    (tmp_path / "vocab.json").write_text('{"words": ["a", "b"], "counts": [5')
    with pytest.raises(StageError, match="not valid JSON.*run convert_to_int.py again"):
        load_vocab(tmp_path)


# --- counting with bounded memory: hash buckets on disk, the vocabulary sent once ---------------------------------

def test_word_buckets_depend_on_the_word_alone():
    words = ["", "а", "кто-то", "ab", "abcdefgh", "abcdefghi", "abcdefghijklmnopqrstuvwxyz", "северо-запад", "ё"]
    alone = [int(counting.word_buckets(pa.array([word]), 64)[0]) for word in words]
    together = counting.word_buckets(pa.array(["pad"] + words + ["tail"]).slice(1, len(words)), 64)
    assert together.tolist() == alone and all(0 <= b < 64 for b in alone)
    # words differing in one byte (first, middle, last) or in length only land apart
    assert len(set(counting.word_buckets(pa.array(["abcdefghij", "xbcdefghij", "abcdexghij", "abcdefghix",
                                                         "abcdefghijk", "abcdefghi"]), 1 << 20).tolist())) == 6
    rng = random.Random(3)
    many = pa.array(["".join(rng.choices("абвгдеёжз", k=rng.randint(1, 12))) for _ in range(4000)])
    sizes = collections.Counter(counting.word_buckets(pc_unique(many), 8).tolist())
    assert len(sizes) == 8 and max(sizes.values()) < 1.3 * min(sizes.values())


def pc_unique(array: pa.Array) -> pa.Array:
    import pyarrow.compute as pc
    return pc.unique(array)


def test_counts_file_holds_each_bucket_in_its_batch(tmp_path):
    write_prep(tmp_path, PARTS)
    documents, tokens, distinct = counting.count_words((tmp_path / "prep" / "part-00001.parquet",
                                                              tmp_path / "counts.arrow", 4))
    assert (documents, tokens, distinct) == (3, 8, 6)
    with pa.OSFile(str(tmp_path / "counts.arrow")) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 4
        batches = [reader.get_batch(b) for b in range(4)]
    found = {}
    for bucket, batch in enumerate(batches):
        assert set(counting.word_buckets(batch.column(0), 4).tolist()) <= {bucket}
        found.update(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()))
    assert found == {"а": 1, "в": 2, "б": 2, "д": 1, "ё": 1, "я": 1}
    # a bucket summed over both parts, cut at min_count: exact totals
    counting.count_words((tmp_path / "prep" / "part-00000.parquet", tmp_path / "counts0.arrow", 4))
    summed, distinct_words = {}, 0
    for bucket in range(4):
        counts_files = [tmp_path / "counts0.arrow", tmp_path / "counts.arrow"]
        table, distinct = counting.sum_bucket((bucket, counts_files, 3))
        distinct_words += distinct
        summed.update(zip(table.column("word").to_pylist(), table.column("count").to_pylist()))
    assert summed == {"б": 4, "а": 3, "в": 3}
    assert distinct_words == 7  # before the cut: а б в г д ё я


def test_vocabulary_read_once_per_process_and_temp_files_removed(tmp_path, monkeypatch):
    write_prep(tmp_path, PARTS + PARTS)  # four parts mapped in this process
    reads = []
    original = counting.read_vocabulary_file.__wrapped__

    def counted(path):
        reads.append(path)
        return original(path)
    monkeypatch.setattr(convert_to_int, "read_vocabulary_file", functools.lru_cache(maxsize=1)(counted))
    tasks = []
    map_part = convert_to_int.map_part
    monkeypatch.setattr(convert_to_int, "map_part", lambda task: tasks.append(task) or map_part(task))
    run_convert(tmp_path, "--min-count", "1")
    assert len(tasks) == 4 and len(reads) == 1
    assert all(isinstance(task[3], (str, Path)) for task in tasks)  # a file name, not the words
    assert read_ids(tmp_path)[0] == [[0, 1, 2, 1], [3, 0]]  # б 8, а 6, в 6, г 2, ...: as one pass would
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # a second run in the same process reads its own vocabulary, not the cached one
    write_prep(tmp_path / "other", [[["я", "я", "б"]]])
    run_convert(tmp_path / "other", "--min-count", "1")
    assert len(reads) == 2 and read_ids(tmp_path / "other") == [[[0, 0, 1]]]


def test_failure_after_counting_leaves_no_temp_files(tmp_path):
    write_prep(tmp_path, PARTS)
    with pytest.raises(StageError, match="the vocabulary would be empty"):
        run_convert(tmp_path, "--min-count", "100")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(StageError, match="^--buckets must be at least 1, got 0$"):
        run_convert(tmp_path, "--buckets", "0")


# For kill_at = 1, 2, ...: a forked child copies OLD to OLD-killed-<kill_at>, runs convert_to_int.main there and
# dies (os._exit: no clean-up, as a kill) right after its kill_at-th rename or directory exchange; stops at the
# first child that finishes instead. Prints each child's exit status ("status N"). The parent only forks (no Arrow threads).
KILLED_RUNS = """
import os, shutil, sys, traceback
sys.path.insert(0, sys.argv[1])
import convert_to_int
from w2v import common, counting
old, flags = sys.argv[2], sys.argv[3:]

renames = 0

def dies_after(function, kill_at):
    def wrapper(*args, **kwargs):
        global renames
        result = function(*args, **kwargs)
        renames += 1
        if renames == kill_at:
            os._exit(9)
        return result
    return wrapper

for kill_at in range(1, 40):
    pid = os.fork()
    if pid == 0:
        try:
            data_dir = f"{old}-killed-{kill_at}"
            shutil.copytree(old, data_dir, symlinks=True)
            for module, name in ((os, "replace"), (os, "rename"), (common, "_exchange")):
                setattr(module, name, dies_after(getattr(module, name), kill_at))
            convert_to_int.main(["--data-dir", data_dir, "--num-proc", "1", *flags])
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print("status", status, flush=True)
    if status != 9:
        break
"""


def ids_and_vocab(data_dir: Path) -> tuple:
    words, counts = load_vocab(data_dir)
    return read_ids(data_dir), words, counts.tolist()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the killed runs are forked")
def test_a_kill_at_any_rename_leaves_the_old_pair_or_the_new_one(tmp_path):
    old_run, new_run = ("--min-count", "1"), ("--min-count", "2")
    write_prep(tmp_path / "new", PARTS)
    run_convert(tmp_path / "new", *new_run)
    new = ids_and_vocab(tmp_path / "new")
    write_prep(tmp_path / "old", PARTS)
    run_convert(tmp_path / "old", *old_run)
    old = ids_and_vocab(tmp_path / "old")
    assert old != new
    done = subprocess.run([sys.executable, "-c", KILLED_RUNS, str(REPO), str(tmp_path / "old"), *new_run],
                          capture_output=True, text=True, timeout=300)
    statuses = [int(line.split()[1]) for line in done.stdout.splitlines() if line.startswith("status ")]
    assert done.returncode == 0 and statuses[-1] == 0 and set(statuses[:-1]) == {9}, done.stderr
    found = []
    for kill_at in range(1, len(statuses) + 1):
        pair = ids_and_vocab(tmp_path / f"old-killed-{kill_at}")
        assert pair in (old, new), f"killed after rename {kill_at}: ids of one run beside the words of another"
        found.append("new" if pair == new else "old")
    # the old pair until one step replaces both, the new pair from then on
    assert found == ["old"] * found.index("new") + ["new"] * (len(found) - found.index("new")) and found[0] == "old"
    # the next run over a run killed just after the swap removes its temporaries and writes the new pair
    swapped = tmp_path / f"old-killed-{found.index('new') + 1}"
    assert [p.name for p in swapped.iterdir() if p.name.startswith(".ids.tmp-")]
    run_convert(swapped, *new_run)
    assert ids_and_vocab(swapped) == new and not list(swapped.rglob(".*"))
