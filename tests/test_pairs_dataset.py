"""pairs_dataset.py: exact pairs, windows, sub-sampling, chunking, shards, draws, errors."""
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pairs_dataset
from w2v import draws as draw_plan, pairs_meta
from w2v.common import StageError
from pairs_dataset import iter_pairs, keep_probabilities, subsample, window_pairs
from w2v.shards import SCHEMA, shard_pairs

REPO = Path(__file__).resolve().parent.parent


def write_corpus(data_dir: Path, docs: list, vocab_size: int | None = None, n_parts: int = 1) -> None:
    """ids/part-NNNNN.parquet and vocab.json as convert_to_int.py writes them (counts = counts in the stream)."""
    flat = np.concatenate([np.asarray(d, dtype=np.int64) for d in docs]) if docs else np.empty(0, np.int64)
    vocab_size = vocab_size or (int(flat.max()) + 1 if len(flat) else 1)
    counts = np.bincount(flat, minlength=vocab_size)
    ids_dir = data_dir / "ids"
    ids_dir.mkdir(parents=True, exist_ok=True)
    for p, part in enumerate(np.array_split(np.arange(len(docs)), n_parts)):
        column = pa.array([list(map(int, docs[i])) for i in part], type=pa.list_(pa.int32()))
        pq.write_table(pa.table({"ids": column}), ids_dir / f"part-{p:05d}.parquet", row_group_size=3)
    (data_dir / "vocab.json").write_text(json.dumps({
        "words": [f"w{i}" for i in range(vocab_size)], "counts": counts.tolist(), "min_count": 1,
        "max_vocab": 0, "corpus_tokens": int(counts.sum()), "vocab_tokens": int(counts.sum())}))


def run_stage(data_dir: Path, *flags: str) -> dict:
    # In this process unless a test asks for workers: spawning them costs more than these tiny draws.
    num_proc = [] if "--num-proc" in flags else ["--num-proc", "1"]
    return pairs_dataset.main(["--data-dir", str(data_dir), *num_proc, *flags])


def read_shards(data_dir: Path, draw: int | None = 0) -> tuple[dict, list[np.ndarray]]:
    """meta.json and the (target, context) rows of each shard of draw `draw` (None: of every draw)."""
    meta = json.loads((data_dir / "pairs" / "meta.json").read_text())
    shards = []
    for index, shard in enumerate(meta["shards"]):
        if draw is not None and shard["draw"] != draw:
            continue
        file = pq.ParquetFile(data_dir / "pairs" / shard["file"])
        assert file.schema_arrow == SCHEMA  # the kept stream: id int32, window uint8, both required
        target, context, _ = shard_pairs(data_dir, index)
        shards.append(np.stack([target, context], axis=1))
    return meta, shards


def brute_force_pairs(docs: list, windows: list) -> list[tuple[int, int]]:
    """Reference: plain loops; windows[k] is the window of the k-th token of the flattened stream."""
    pairs, k = [], 0
    for doc in docs:
        for i in range(len(doc)):
            b = windows[k + i]
            pairs += [(doc[i], doc[j]) for j in range(max(0, i - b), min(len(doc), i + b + 1)) if j != i]
        k += len(doc)
    return pairs


def as_multiset(pairs) -> Counter:
    return Counter(map(tuple, np.asarray(pairs).reshape(-1, 2).tolist()))


# the corpus of the exact test and its pairs with WINDOW=2, written out by hand
TWO_DOCS = [[0, 1, 2, 3], [4, 5]]
TWO_DOCS_PAIRS = [(0, 1), (0, 2),
                  (1, 0), (1, 2), (1, 3),
                  (2, 0), (2, 1), (2, 3),
                  (3, 1), (3, 2),
                  (4, 5), (5, 4)]


def test_keep_probabilities_formula():
    counts = np.array([1000, 100, 10, 1])
    sample, total = 1e-3, 1111
    threshold = sample * total  # 1.111
    expected = [min(1.0, (math.sqrt(c / threshold) + 1) * threshold / c) for c in counts]
    assert np.allclose(keep_probabilities(counts, sample, total), expected, rtol=1e-12)
    # 1000: (sqrt(1000/1.111) + 1) * 1.111/1000 = 0.0344422...
    assert keep_probabilities(counts, sample, total)[0] == pytest.approx(0.034442, abs=1e-6)
    assert keep_probabilities(counts, sample, total)[3] == 1.0  # rare words always kept
    assert np.all(keep_probabilities(counts, 0.0, total) == 1.0)


def test_window_pairs_exact_two_documents():
    ids = np.array([0, 1, 2, 3, 4, 5], dtype=np.int32)
    doc = np.array([0, 0, 0, 0, 1, 1])
    targets, contexts = window_pairs(ids, doc, np.full(6, 2))
    assert list(zip(targets.tolist(), contexts.tolist())) == TWO_DOCS_PAIRS  # order: target, then offset


def test_window_pairs_uses_each_targets_window():
    rng = np.random.default_rng(0)
    docs = [list(range(0, 17)), list(range(17, 20)), [20], list(range(21, 40))]
    windows = rng.integers(1, 5, size=40)
    flat = np.concatenate(docs).astype(np.int32)
    doc = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    targets, contexts = window_pairs(flat, doc, windows, window=4)
    assert list(zip(targets.tolist(), contexts.tolist())) == brute_force_pairs(docs, windows.tolist())


def test_window_pairs_targets_range_uses_halo():
    ids = np.arange(20, dtype=np.int32)
    doc = np.zeros(20, dtype=np.int64)
    windows = np.full(20, 3)
    all_t, all_c = window_pairs(ids, doc, windows)
    t, c = window_pairs(ids, doc, windows, lo=5, hi=9)
    keep = (all_t >= 5) & (all_t < 9)
    assert t.tolist() == all_t[keep].tolist() and c.tolist() == all_c[keep].tolist()


def test_stage_exact_pairs_no_crossing(tmp_path):
    write_corpus(tmp_path, TWO_DOCS)
    figures = run_stage(tmp_path, "--window", "2", "--sample", "0", "--no-dynamic-window", "--draws", "2")
    for draw in (0, 1):
        meta, shards = read_shards(tmp_path, draw)
        assert as_multiset(np.concatenate(shards)) == Counter(TWO_DOCS_PAIRS)
    # "pairs" and "bytes" count every draw's shards; "tokens" and "retained_tokens" are one pass (draw 0)
    assert meta["pairs"] == 24 and meta["tokens"] == 6 and meta["retained_tokens"] == 6
    assert meta["draws"] == 2 and meta["pairs_per_draw"] == [12, 12] and meta["retained_per_draw"] == [6, 6]
    # each shard: its file, pairs, draw and place in it, rows (kept tokens), target rows and pairs per unit
    assert meta["shards"] == [{"file": "shard-00000.parquet", "pairs": 12, "draw": 0, "part": 0, "tokens": 6,
                               "targets": [0, 6], "units": [12]},
                              {"file": "shard-00001.parquet", "pairs": 12, "draw": 1, "part": 0, "tokens": 6,
                               "targets": [0, 6], "units": [12]}]
    assert meta["layout"] == pairs_meta.LAYOUT == "kept-stream-1"
    assert meta["window"] == 2 and meta["sample"] == 0 and meta["dynamic_window"] is False
    assert meta["vocab_size"] == 6 and meta["compression"] == "lz4"
    assert meta["bytes"] == sum((tmp_path / "pairs" / f"shard-0000{i}.parquet").stat().st_size for i in (0, 1))
    assert figures["pairs"] == 24 and figures["shards"] == 2 and figures["draws"] == 2
    assert figures["bytes_per_pair"] == round(meta["bytes"] / 24, 3)
    assert json.loads((tmp_path / "stats" / "pairs_dataset.json").read_text())["pairs"] == 24


@pytest.mark.slow
def test_dynamic_window_within_drawn_window_and_distance_law(tmp_path):
    n, window = 200_000, 5
    write_corpus(tmp_path, [np.arange(n)], vocab_size=n)  # unique ids: a pair's distance is context - target
    run_stage(tmp_path, "--window", str(window), "--sample", "0", "--chunk-tokens", "30000")
    meta, shards = read_shards(tmp_path)
    pairs = np.concatenate(shards).astype(np.int64)
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    target, offset = pairs[:, 0], pairs[:, 1] - pairs[:, 0]
    assert np.all((np.abs(offset) >= 1) & (np.abs(offset) <= window))
    # Each target's contexts are exactly every position within its own window b (both sides, clipped at the ends).
    counts = np.bincount(target, minlength=n)
    b = np.zeros(n, dtype=np.int64)
    np.maximum.at(b, target, np.abs(offset))
    expected = np.minimum(b, np.arange(n)) + np.minimum(b, n - 1 - np.arange(n))
    assert np.array_equal(counts, expected)
    assert np.all(b[counts > 0] >= 1)
    # b is uniform on 1..window, so a distance d is used with probability (window - d + 1) / window.
    inner = b[window:-window]
    assert np.all(np.bincount(inner, minlength=window + 1)[1:] > 0)
    per_distance = np.bincount(np.abs(offset), minlength=window + 1)[1:] / (2 * n)
    law = (window - np.arange(1, window + 1) + 1) / window
    assert np.allclose(per_distance, law, atol=0.006)  # binomial sd ~0.001
    assert meta["pairs_per_draw"][0] == len(pairs)


def test_subsampling_keep_rate_matches_formula():
    rng = np.random.default_rng(5)
    counts = np.array([400_000, 200_000, 100_000, 50_000, 20_000, 5_000, 500])
    stream = rng.permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
    keep_prob = keep_probabilities(counts, 1e-2, counts.sum())  # threshold 7755: p from ~0.19 to 1
    assert keep_prob.min() < 0.25 and keep_prob[-1] == 1.0
    kept = subsample(stream, keep_prob, np.random.default_rng(1))
    rate = np.bincount(stream[kept], minlength=len(counts)) / counts
    sd = np.sqrt(keep_prob * (1 - keep_prob) / counts)
    assert np.all(np.abs(rate - keep_prob) <= 5 * sd + 1e-12)


def test_stage_subsampling_retained_tokens(tmp_path):
    rng = np.random.default_rng(2)
    counts = np.array([60_000, 30_000, 6_000, 3_000, 1_000])
    stream = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    write_corpus(tmp_path, np.array_split(stream, 50))
    run_stage(tmp_path, "--sample", "1e-2", "--window", "2")
    meta, _ = read_shards(tmp_path)
    expected = float((counts * keep_probabilities(counts, 1e-2)).sum())
    assert meta["tokens"] == counts.sum()
    assert meta["retained_tokens"] == meta["retained_per_draw"][0] and meta["draws"] == pairs_dataset.DRAWS
    for retained in meta["retained_per_draw"]:  # every draw sub-samples anew, at the same rates
        assert abs(retained - expected) < 5 * math.sqrt(expected)
        assert retained < 0.5 * counts.sum()
    assert len(set(meta["retained_per_draw"])) > 1


def test_iter_pairs_chunking_changes_nothing():
    rng = np.random.default_rng(3)
    lengths = [1, 2, 50, 7, 300, 3, 1, 90]
    flat = rng.integers(0, 30, size=sum(lengths)).astype(np.int32)
    doc = np.repeat(np.arange(len(lengths)), lengths)
    keep_prob = np.full(30, 0.7)

    def pairs(chunk: int, slice_size: int) -> tuple[np.ndarray, np.ndarray, dict]:
        counters = {}
        slices = [(flat[a:a + slice_size], doc[a:a + slice_size]) for a in range(0, len(flat), slice_size)]
        out = list(iter_pairs(slices, keep_prob, 4, 0.5, True, chunk, 9, counters))
        return np.concatenate([t for t, _ in out]), np.concatenate([c for _, c in out]), counters

    t0, c0, n0 = pairs(10**6, 10**6)
    assert 0 < n0["retained"] < n0["tokens"] == len(flat)
    for chunk, slice_size in [(1, 1), (3, 5), (4, 4), (5, 17), (64, 3)]:
        t, c, counters = pairs(chunk, slice_size)
        assert np.array_equal(t, t0) and np.array_equal(c, c0) and counters == n0


@pytest.mark.slow
def test_stage_chunks_give_identical_shards(tmp_path):
    rng = np.random.default_rng(4)
    docs = [rng.integers(0, 40, size=k) for k in [5, 1, 400, 30, 2, 900, 3, 64]]
    flags = ["--sample", "1e-2", "--window", "4", "--pairs-per-shard", "700", "--row-group-pairs", "200"]
    for name, chunk, n_parts in [("a", 10**6, 1), ("b", 7, 3), ("c", 1, 2)]:
        write_corpus(tmp_path / name, docs, n_parts=n_parts)
        run_stage(tmp_path / name, *flags, "--chunk-tokens", str(chunk))
    meta_a, shards_a = read_shards(tmp_path / "a", draw=None)
    assert len(shards_a) > 2 * pairs_dataset.DRAWS
    for name in "bc":
        meta, shards = read_shards(tmp_path / name, draw=None)
        assert {k: v for k, v in meta.items() if k != "bytes"} == {k: v for k, v in meta_a.items() if k != "bytes"}
        assert all(np.array_equal(x, y) for x, y in zip(shards, shards_a)) and len(shards) == len(shards_a)


@pytest.mark.slow
def test_long_single_document_in_small_chunks(tmp_path):
    n, window = 200_000, 5
    doc = np.random.default_rng(6).integers(0, 1000, size=n)
    write_corpus(tmp_path, [doc], vocab_size=1000)
    run_stage(tmp_path, "--window", str(window), "--sample", "0", "--no-dynamic-window", "--chunk-tokens", "999")
    meta, shards = read_shards(tmp_path)
    assert meta["pairs_per_draw"][0] == sum(2 * (n - d) for d in range(1, window + 1))
    got = np.concatenate(shards).astype(np.int64)
    expected = np.concatenate([np.stack([doc[:-d], doc[d:]], 1) for d in range(1, window + 1)] +
                              [np.stack([doc[d:], doc[:-d]], 1) for d in range(1, window + 1)])
    key = lambda p: np.sort(p[:, 0] * 1000 + p[:, 1])  # noqa: E731
    assert np.array_equal(key(got), key(expected))


def test_shards_split_counts_and_row_groups(tmp_path):
    rng = np.random.default_rng(7)
    docs = [rng.integers(0, 50, size=k) for k in rng.integers(1, 40, size=120)]
    write_corpus(tmp_path, docs, n_parts=2)
    run_stage(tmp_path, "--window", "3", "--sample", "0", "--no-dynamic-window",
              "--pairs-per-shard", "1000", "--row-group-pairs", "300")
    meta, shards = read_shards(tmp_path)
    expected = brute_force_pairs([list(d) for d in docs], [3] * sum(map(len, docs)))
    total = len(expected)
    assert meta["pairs_per_draw"] == [total] * pairs_dataset.DRAWS and total > 3000
    assert meta["pairs"] == total * pairs_dataset.DRAWS
    # each draw's shards end with the window that reaches 1000 pairs (no window is cut: at most 2 x 3 more), but
    # its last; numbered on across draws
    per_draw = [s["pairs"] for s in meta["shards"] if s["draw"] == 0]
    assert all(1000 <= pairs < 1006 for pairs in per_draw[:-1]) and 0 < per_draw[-1] < 1006
    assert sum(per_draw) == total and len(per_draw) == len(shards) >= 3
    assert [s["pairs"] for s in meta["shards"]] == per_draw * pairs_dataset.DRAWS
    assert [s["draw"] for s in meta["shards"]] == [d for d in range(pairs_dataset.DRAWS) for _ in per_draw]
    assert [s["part"] for s in meta["shards"]] == list(range(len(per_draw))) * pairs_dataset.DRAWS
    assert [s["file"] for s in meta["shards"]] == [f"shard-{i:05d}.parquet" for i in range(len(meta["shards"]))]
    assert [len(s) for s in shards] == per_draw
    assert as_multiset(np.concatenate(shards)) == Counter(expected)
    for shard in meta["shards"]:
        # units of ~300 pairs: ceil(pairs / 300) of them, each a share of the shard's windows
        assert len(shard["units"]) == -(-shard["pairs"] // 300) and sum(shard["units"]) == shard["pairs"]
        assert max(shard["units"]) - min(shard["units"]) < 150
        # the rows: the targets and a halo of up to 3 kept tokens either side (none before the stream's first)
        first, end = shard["targets"]
        assert first <= 3 and shard["tokens"] - end <= 3 and (first == 3 or shard["part"] == 0)
        assert pq.ParquetFile(tmp_path / "pairs" / shard["file"]).metadata.num_rows == shard["tokens"]
    # the shards cover the stream: their targets one after the other, 3,000+ kept tokens (no sub-sampling here)
    assert sum(s["targets"][1] - s["targets"][0] for s in meta["shards"] if s["draw"] == 0) == sum(map(len, docs))
    assert meta["bytes"] == sum((tmp_path / "pairs" / s["file"]).stat().st_size for s in meta["shards"])
    # a shard is shuffled, not left in stream order
    first = shards[0]
    assert not np.array_equal(first, np.asarray(expected[:1000]))


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_same_seed_same_shards_other_seed_other_order(tmp_path, compression):
    rng = np.random.default_rng(8)
    docs = [rng.integers(0, 30, size=k) for k in rng.integers(1, 60, size=40)]
    runs = {}
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        write_corpus(tmp_path / name, docs)
        run_stage(tmp_path / name, "--seed", str(seed), "--compression", compression, "--pairs-per-shard", "500")
        runs[name] = read_shards(tmp_path / name, draw=None)
    assert runs["a"][0]["compression"] == compression
    assert runs["a"][0] == runs["b"][0]
    assert all(np.array_equal(x, y) for x, y in zip(runs["a"][1], runs["b"][1]))
    assert not np.array_equal(runs["a"][1][0][:100], runs["c"][1][0][:100])


def test_draw_zero_is_a_one_draw_run_and_later_draws_redraw(tmp_path):
    rng = np.random.default_rng(9)
    docs = [rng.integers(0, 40, size=k) for k in rng.integers(2, 80, size=60)]
    flags = ["--window", "4", "--sample", "1e-2", "--pairs-per-shard", "600", "--row-group-pairs", "250"]
    for name, draws in [("one", "1"), ("two", "2")]:
        write_corpus(tmp_path / name, docs)
        run_stage(tmp_path / name, *flags, "--draws", draws)
    meta_one, one = read_shards(tmp_path / "one", draw=None)
    meta_two, draw0 = read_shards(tmp_path / "two", draw=0)
    _, draw1 = read_shards(tmp_path / "two", draw=1)
    # draw 0 is bit for bit what a one-draw run writes (the seed's own keeps, windows and shuffles)
    assert len(draw0) == len(one) > 1 and all(np.array_equal(a, b) for a, b in zip(draw0, one))
    assert meta_two["shards"][:len(one)] == meta_one["shards"]
    assert all((tmp_path / "two" / "pairs" / s["file"]).read_bytes() == (tmp_path / "one" / "pairs" / s["file"])
               .read_bytes() for s in meta_one["shards"])
    assert meta_two["pairs_per_draw"][0] == meta_one["pairs"] == meta_one["pairs_per_draw"][0]
    assert meta_two["retained_tokens"] == meta_one["retained_tokens"] == meta_two["retained_per_draw"][0]
    # draw 1 draws its own keeps and windows; its shards are numbered on after draw 0's
    assert meta_two["retained_per_draw"][1] != meta_two["retained_per_draw"][0]
    assert as_multiset(np.concatenate(draw1)) != as_multiset(np.concatenate(draw0))
    first_of_draw1 = meta_two["shards"][len(one)]
    assert (first_of_draw1["file"], first_of_draw1["draw"], first_of_draw1["part"]) == \
        (f"shard-{len(one):05d}.parquet", 1, 0)
    assert first_of_draw1["pairs"] >= min(600, meta_two["pairs_per_draw"][1])
    assert meta_two["pairs"] == sum(meta_two["pairs_per_draw"]) == sum(len(s) for s in draw0 + draw1)


@pytest.mark.slow
@pytest.mark.parametrize("dynamic", [False, True])
def test_every_draw_keeps_the_invariants(tmp_path, dynamic):
    window, bounds = 4, [0, 1200, 3000]
    docs = [np.arange(a, b) for a, b in zip(bounds, bounds[1:])]  # unique ids: distance = context - target
    write_corpus(tmp_path, docs, vocab_size=bounds[-1])
    run_stage(tmp_path, "--window", str(window), "--sample", "0", "--draws", "3", "--pairs-per-shard", "5000",
              "--dynamic-window" if dynamic else "--no-dynamic-window")
    draws = [np.concatenate(read_shards(tmp_path, d)[1]).astype(np.int64) for d in range(3)]
    position = np.arange(bounds[-1])
    doc = np.searchsorted(bounds, position, "right") - 1
    for pairs in draws:
        target, offset = pairs[:, 0], pairs[:, 1] - pairs[:, 0]
        assert np.all((np.abs(offset) >= 1) & (np.abs(offset) <= window))
        assert np.array_equal(doc[target], doc[pairs[:, 1]])  # never across documents
        assert len(np.unique(target * bounds[-1] + pairs[:, 1])) == len(pairs)
        # each target pairs with every position within its own window b, clipped at its document's edges
        b = np.zeros(bounds[-1], dtype=np.int64)
        np.maximum.at(b, target, np.abs(offset))
        room_left, room_right = position - np.take(bounds, doc), np.take(bounds, doc + 1) - 1 - position
        expected = np.minimum(b, room_left) + np.minimum(b, room_right)
        assert np.array_equal(np.bincount(target, minlength=bounds[-1]), expected)
        assert np.all(b >= 1) and (dynamic or np.all(b == window))
    multisets = [as_multiset(pairs) for pairs in draws]
    if dynamic:  # windows redrawn: other pairs in every draw
        assert multisets[0] != multisets[1] and multisets[1] != multisets[2] and multisets[0] != multisets[2]
    else:  # nothing random but the shuffle: the same pairs, in another order
        assert multisets[0] == multisets[1] == multisets[2]
        assert not np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[1], draws[2])


def test_rerun_replaces_output(tmp_path):
    write_corpus(tmp_path, [list(range(10))] * 30)
    run_stage(tmp_path, "--pairs-per-shard", "50", "--sample", "0")
    assert len(list((tmp_path / "pairs").glob("shard-*.parquet"))) > 3
    run_stage(tmp_path, "--sample", "0", "--draws", "2")
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == ["meta.json", "shard-00000.parquet",
                                                                       "shard-00001.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_ids_error(tmp_path):
    with pytest.raises(StageError, match="run convert_to_int.py first"):
        run_stage(tmp_path)


def test_no_pairs_error_leaves_nothing(tmp_path):
    write_corpus(tmp_path, [[0], [1], [2]])
    with pytest.raises(StageError, match="^no pairs: 3 tokens"):
        run_stage(tmp_path, "--sample", "0")
    assert not (tmp_path / "pairs").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_compression_and_out_of_range_ids(tmp_path):
    write_corpus(tmp_path, TWO_DOCS)
    with pytest.raises(StageError, match="--compression must be one of"):
        run_stage(tmp_path, "--compression", "lzma")
    with pytest.raises(StageError, match="--draws must be at least 1, got 0"):
        run_stage(tmp_path, "--draws", "0")
    write_corpus(tmp_path, TWO_DOCS, vocab_size=6)
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    (tmp_path / "vocab.json").write_text(json.dumps({**vocab, "words": vocab["words"][:5],
                                                     "counts": vocab["counts"][:5]}))
    with pytest.raises(StageError, match="ids outside 0..4"):
        run_stage(tmp_path)


def test_shell_shows_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "pairs_dataset.py"), "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'ids'} not found: run convert_to_int.py first"]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_draws_written_side_by_side_equal_draws_written_in_turn(tmp_path):
    rng = np.random.default_rng(11)
    docs = [rng.integers(0, 40, size=k) for k in rng.integers(2, 80, size=60)]
    flags = ["--window", "3", "--sample", "1e-2", "--pairs-per-shard", "700", "--draws", "3"]
    for name, num_proc in [("serial", "1"), ("parallel", "2")]:
        write_corpus(tmp_path / name, docs)
        run_stage(tmp_path / name, *flags, "--num-proc", num_proc)
    serial, parallel = (json.loads((tmp_path / name / "pairs" / "meta.json").read_text())
                        for name in ("serial", "parallel"))
    assert serial == parallel and len(serial["shards"]) > 3
    assert sorted(p.name for p in (tmp_path / "parallel" / "pairs").iterdir()) == \
        sorted([s["file"] for s in serial["shards"]] + ["meta.json"])
    for shard in serial["shards"]:
        assert (tmp_path / "serial" / "pairs" / shard["file"]).read_bytes() == \
            (tmp_path / "parallel" / "pairs" / shard["file"]).read_bytes()


# --- disk plan ---------------------------------------------------------------------------------------------------

def test_pairs_bound_is_exact_but_for_document_edges(tmp_path):
    # Fixed window W, no sub-sampling, one document of n tokens: every token has 2W contexts but the W tokens at
    # either edge, which lose W + (W-1) + ... + 1 = W(W+1)/2 each: the bound overshoots by exactly W(W+1).
    n, window = 1000, 4
    write_corpus(tmp_path, [np.arange(n) % 50])
    run_stage(tmp_path, "--window", str(window), "--sample", "0", "--no-dynamic-window", "--draws", "1")
    meta = json.loads((tmp_path / "pairs" / "meta.json").read_text())
    counts = np.bincount(np.arange(n) % 50)
    bound = draw_plan.expected_pairs_bound(counts, np.ones(50), window, dynamic_window=False)
    assert bound == n * 2 * window
    assert meta["pairs"] == bound - window * (window + 1)
    # dynamic window: the mean window is (W + 1) / 2; sub-sampling scales each word by its keep probability
    keep = np.linspace(0.1, 1.0, 50)
    assert draw_plan.expected_pairs_bound(counts, keep, window, True) == pytest.approx(
        (counts * keep).sum() * (window + 1))


def fake_free_space(monkeypatch, free_bytes: int) -> None:
    usage = pairs_dataset.shutil.disk_usage
    monkeypatch.setattr(pairs_dataset.shutil, "disk_usage",
                        lambda path: usage(path)._replace(free=int(free_bytes)))


def planned_bytes(data_dir: Path, draws: int, compression: str = "lz4", window: int = 5) -> float:
    counts = np.asarray(json.loads((data_dir / "vocab.json").read_text())["counts"])
    keep = draw_plan.keep_probabilities(counts, 0)
    return draw_plan.expected_pairs_bound(counts, keep, window, True) * draws * \
        pairs_dataset.plan_bytes_per_pair(compression)


def test_disk_plan_refuses_with_one_line_naming_the_flags(tmp_path, monkeypatch, capsys):
    write_corpus(tmp_path, [np.arange(600) % 30] * 5)  # 3,000 tokens: bound 18,000 pairs a draw
    need = planned_bytes(tmp_path, draws=2)
    # lz4: its bytes per kept token over the 6 pairs a kept token makes at --window 5
    assert need == pytest.approx(3000 * 6 * 2 * pairs_dataset.PLAN_BYTES_PER_TOKEN["lz4"] / 6, rel=1e-3)
    assert pairs_dataset.plan_bytes_per_pair("lz4") == 0.7
    fake_free_space(monkeypatch, need - 1)
    with pytest.raises(StageError) as refused:
        run_stage(tmp_path, "--sample", "0", "--draws", "2")
    assert str(refused.value) == (
        f"pairs need ~0.0 GB on disk: 2 draw(s) x ~0.0M pairs (expected, edges ignored) x 0.7 bytes/pair (lz4); "
        f"0.0 GB free on {tmp_path}: not enough; shrink it with --draws, --compression zstd, --sample, "
        f"--delete-old-first, convert_to_int.py --min-count/--max-vocab (or --no-disk-check to try anyway)")
    assert not (tmp_path / "pairs").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # zstd's smaller figure fits the same space; so does one draw, and so does skipping the check
    run_stage(tmp_path, "--sample", "0", "--draws", "2", "--compression", "zstd")
    assert "disk plan: pairs need ~0.0 GB on disk: 2 draw(s)" in capsys.readouterr().out
    fake_free_space(monkeypatch, need / 2)
    run_stage(tmp_path, "--sample", "0", "--draws", "1", "--delete-old-first")
    fake_free_space(monkeypatch, 0)
    run_stage(tmp_path, "--sample", "0", "--draws", "2", "--no-disk-check")
    assert json.loads((tmp_path / "pairs" / "meta.json").read_text())["draws"] == 2


def test_disk_plan_counts_the_old_pairs_until_they_are_replaced(tmp_path, monkeypatch):
    write_corpus(tmp_path, [np.arange(600) % 30] * 5)
    run_stage(tmp_path, "--sample", "0", "--draws", "2")
    old = sum(p.stat().st_size for p in (tmp_path / "pairs").iterdir())
    need = planned_bytes(tmp_path, draws=2)
    fake_free_space(monkeypatch, need + old - 1)  # the new pairs fit, not with the old ones beside them
    with pytest.raises(StageError, match=rf"\+ 0.0 GB of the old pairs/ kept until replaced; .*: not enough"):
        run_stage(tmp_path, "--sample", "0", "--draws", "2")
    fake_free_space(monkeypatch, need + old)
    run_stage(tmp_path, "--sample", "0", "--draws", "2")
    # deleted first, the old pairs' space counts as free: the new pairs alone must fit
    fake_free_space(monkeypatch, need - old)
    run_stage(tmp_path, "--sample", "0", "--draws", "2", "--delete-old-first")
    fake_free_space(monkeypatch, need - old - 1)
    with pytest.raises(StageError, match="not enough"):
        run_stage(tmp_path, "--sample", "0", "--draws", "2", "--delete-old-first")
    assert (tmp_path / "pairs" / "meta.json").exists()  # refused before anything was deleted


@pytest.fixture
def small_filesystem(tmp_path):
    """A 1 MB tmpfs at tmp_path/fs (root and a kernel that allow it; skipped otherwise), unmounted after."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_plan_on_a_real_small_filesystem(small_filesystem):
    data_dir = small_filesystem / "data"
    rng = np.random.default_rng(5)
    write_corpus(data_dir, [rng.integers(0, 200, size=500) for _ in range(80)])  # 40,000 tokens
    # the shards are the kept stream: ~5 bytes a kept token whatever the window, so draws are what shrinks them
    assert planned_bytes(data_dir, draws=7) > 1 << 20 > planned_bytes(data_dir, draws=2)
    with pytest.raises(StageError, match=r"GB free on .*: not enough; shrink it with --draws, --compression zstd"):
        run_stage(data_dir, "--sample", "0", "--draws", "7")
    assert not (data_dir / "pairs").exists()
    figures = run_stage(data_dir, "--sample", "0", "--draws", "2", "--window", "1")
    assert figures["pairs"] == 2 * 2 * (40000 - 80)
    # past the check, a full disk is still one line and leaves no partial output behind
    with pytest.raises(StageError, match=r"^disk full: no space left on .* \(it needs about [0-9.]+ MB"):
        run_stage(data_dir, "--sample", "0", "--draws", "9", "--no-disk-check", "--compression", "none",
                  "--pairs-per-shard", "20000")
    assert json.loads((data_dir / "pairs" / "meta.json").read_text())["window"] == 1
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]


# --- adding draws to pairs/ (--only-draws) ------------------------------------------------------------------------

ADD_FLAGS = ["--window", "3", "--sample", "1e-2", "--pairs-per-shard", "700", "--draws", "4"]


def add_corpus(data_dir: Path) -> None:
    rng = np.random.default_rng(12)
    write_corpus(data_dir, [rng.integers(0, 40, size=k) for k in rng.integers(2, 80, size=60)])


def test_only_draws_added_in_order_equal_a_full_run(tmp_path):
    for name in ("full", "added"):
        add_corpus(tmp_path / name)
    run_stage(tmp_path / "full", *ADD_FLAGS)
    run_stage(tmp_path / "added", *ADD_FLAGS, "--only-draws", "0,1")
    partial = json.loads((tmp_path / "added" / "pairs" / "meta.json").read_text())
    assert partial["pairs_per_draw"][2:] == [None, None] and {s["draw"] for s in partial["shards"]} == {0, 1}
    run_stage(tmp_path / "added", *ADD_FLAGS, "--only-draws", "3,2")
    full, added = (json.loads((tmp_path / name / "pairs" / "meta.json").read_text()) for name in ("full", "added"))
    assert added == full and len(full["shards"]) > 8
    assert sorted(p.name for p in (tmp_path / "added" / "pairs").iterdir()) == \
        sorted([s["file"] for s in full["shards"]] + ["meta.json"])
    for shard in full["shards"]:
        assert (tmp_path / "full" / "pairs" / shard["file"]).read_bytes() == \
            (tmp_path / "added" / "pairs" / shard["file"]).read_bytes()


def test_only_draws_out_of_order_same_shard_bytes_per_draw(tmp_path):
    for name in ("full", "added"):
        add_corpus(tmp_path / name)
    run_stage(tmp_path / "full", *ADD_FLAGS)
    for chosen in ("2", "0", "3,1"):
        run_stage(tmp_path / "added", *ADD_FLAGS, "--only-draws", chosen)
    full, added = (json.loads((tmp_path / name / "pairs" / "meta.json").read_text()) for name in ("full", "added"))
    assert {key: value for key, value in added.items() if key != "shards"} == \
        {key: value for key, value in full.items() if key != "shards"}
    for draw in range(4):
        contents = [[(tmp_path / name / "pairs" / s["file"]).read_bytes() for s in meta["shards"] if s["draw"] == draw]
                    for name, meta in (("full", full), ("added", added))]
        assert contents[0] == contents[1]
    assert [s["draw"] for s in added["shards"]] == sorted(s["draw"] for s in added["shards"])
    assert len({s["file"] for s in added["shards"]}) == len(added["shards"])


def test_only_draws_refusals(tmp_path):
    add_corpus(tmp_path)
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "1")
    with pytest.raises(StageError) as error:
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "0,1")
    assert str(error.value) == (f"{tmp_path / 'pairs'} already holds draw(s) 1: leave them out of --only-draws, "
                                f"or run without it to write every draw anew")
    with pytest.raises(StageError) as error:
        run_stage(tmp_path, *ADD_FLAGS[2:], "--window", "2", "--only-draws", "0")
    assert str(error.value) == (f"cannot add draws to {tmp_path / 'pairs'}: --window 3 against 2 now: it was written "
                                f"(window); run pairs_dataset.py without --only-draws to write every draw anew")
    with pytest.raises(StageError, match=r"^--only-draws must name draws in 0..3 \(--draws 4\), got '4'$"):
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "4")
    with pytest.raises(StageError, match="^--only-draws takes draw numbers separated by commas"):
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "a")
    with pytest.raises(StageError, match="^--delete-old-first replaces pairs/"):
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "0", "--delete-old-first")
    assert json.loads((tmp_path / "pairs" / "meta.json").read_text())["pairs_per_draw"][0] is None


def test_remove_draws_then_add_them_back(tmp_path):
    for name in ("full", "rolled"):
        add_corpus(tmp_path / name)
        run_stage(tmp_path / name, *ADD_FLAGS)
    full = json.loads((tmp_path / "full" / "pairs" / "meta.json").read_text())
    pairs_dir = tmp_path / "rolled" / "pairs"
    before = sum(p.stat().st_size for p in pairs_dir.glob("shard-*.parquet"))
    freed = pairs_meta.remove_draws(pairs_dir, [0, 2])
    meta = json.loads((pairs_dir / "meta.json").read_text())
    assert freed == before - sum(p.stat().st_size for p in pairs_dir.glob("shard-*.parquet")) > 0
    assert {s["draw"] for s in meta["shards"]} == {1, 3} and meta["retained_tokens"] is None
    assert meta["pairs_per_draw"] == [None, full["pairs_per_draw"][1], None, full["pairs_per_draw"][3]]
    assert meta["pairs"] == full["pairs_per_draw"][1] + full["pairs_per_draw"][3]
    assert meta["bytes"] == sum(p.stat().st_size for p in pairs_dir.glob("shard-*.parquet"))
    assert sorted(p.name for p in pairs_dir.iterdir()) == sorted([s["file"] for s in meta["shards"]] + ["meta.json"])
    run_stage(tmp_path / "rolled", *ADD_FLAGS, "--only-draws", "0,2")
    rolled = json.loads((pairs_dir / "meta.json").read_text())
    assert {key: value for key, value in rolled.items() if key != "shards"} == \
        {key: value for key, value in full.items() if key != "shards"}
    for draw in range(4):
        contents = [[(tmp_path / name / "pairs" / s["file"]).read_bytes() for s in meta["shards"] if s["draw"] == draw]
                    for name, meta in (("full", full), ("rolled", rolled))]
        assert contents[0] == contents[1]


# --- shard order: windows kept together; the kept-stream layout ----------------------------------------------

def read_windowed(data_dir: Path, shard: str) -> tuple[np.ndarray, np.ndarray]:
    """The (pairs, window_start) of one shard in reading order, units in order, rebuilt by w2v/shards.py."""
    meta = json.loads((data_dir / "pairs" / "meta.json").read_text())
    index = [s["file"] for s in meta["shards"]].index(shard)
    file = pq.ParquetFile(data_dir / "pairs" / shard)
    assert file.schema_arrow.names == ["id", "window"]
    assert file.schema_arrow.field("id").type == pa.int32() and file.schema_arrow.field("window").type == pa.uint8()
    assert not any(field.nullable for field in file.schema_arrow)  # required columns: no definition levels to decode
    target, context, starts = shard_pairs(data_dir, index)
    return np.stack([target, context], axis=1), starts


def split_windows(pairs: np.ndarray, starts: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
    """(target, contexts in order) of each flagged run; every run must hold one target."""
    bounds = np.append(np.flatnonzero(starts), len(pairs))
    windows = []
    for a, b in zip(bounds, bounds[1:]):
        assert len(set(pairs[a:b, 0].tolist())) == 1, (a, b)
        windows.append((int(pairs[a, 0]), tuple(pairs[a:b, 1].tolist())))
    return windows


def brute_force_windows(docs: list, window: int) -> list[tuple[int, tuple[int, ...]]]:
    """Each token's window with a fixed window: (target, contexts by offset -window..-1, 1..window)."""
    windows = []
    for doc in docs:
        for i in range(len(doc)):
            contexts = tuple(int(doc[i + d]) for d in [*range(-window, 0), *range(1, window + 1)]
                             if 0 <= i + d < len(doc))
            if contexts:
                windows.append((int(doc[i]), contexts))
    return windows


def test_order_windows_keeps_each_window_whole_and_flags_its_start(tmp_path):
    docs = [[0, 1, 2, 3], [4, 5], [6], [7, 8, 9, 7, 7, 1, 2]]  # a lone token, repeated targets side by side
    write_corpus(tmp_path, docs)
    run_stage(tmp_path, "--window", "2", "--sample", "0", "--no-dynamic-window", "--draws", "1")
    meta = json.loads((tmp_path / "pairs" / "meta.json").read_text())
    assert meta["order"] == "windows"
    # the shard is the kept stream itself: the ids, and each one's window (2) with bit 7 on a document's first
    table = pq.read_table(tmp_path / "pairs" / "shard-00000.parquet")
    assert table.column("id").to_pylist() == [t for doc in docs for t in doc]
    assert table.column("window").to_pylist() == [2 | (128 if i == 0 else 0) for doc in docs for i in range(len(doc))]
    pairs, starts = read_windowed(tmp_path, "shard-00000.parquet")
    got = split_windows(pairs, starts)
    assert Counter(got) == Counter(brute_force_windows(docs, 2))
    assert len(got) == 13 and starts.sum() == 13  # flags exactly at the 13 windows' first pairs (not at [6])
    # one unit of 13 windows: two blocks of UNIT_BLOCK (8) and 5, each in text order, in a drawn order
    in_text_order = brute_force_windows(docs, 2)
    assert got in (in_text_order, in_text_order[8:] + in_text_order[:8])


def windows_of_stream(pairs: np.ndarray, flags: np.ndarray) -> Counter:
    return Counter(split_windows(pairs, flags))


def many_documents(seed: int, documents: int = 300, vocab: int = 60) -> list[np.ndarray]:
    """Documents of 1 to 60 tokens (lone tokens, short and long ones), Zipf-like ids so sub-sampling bites."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, vocab + 1)
    return [rng.choice(vocab, size=k, p=weights / weights.sum()) for k in rng.integers(1, 61, size=documents)]


@pytest.mark.parametrize("window, sample, dynamic", [(4, 1e-2, True), (5, 0, False), (63, 1e-3, True)])
def test_each_draw_has_todays_pairs_and_windows(tmp_path, window, sample, dynamic):
    """For the same seed and flags, a draw's pairs (a multiset) and windows (target and
    contexts in window order) are those of the pair generation before the layout (iter_pairs), every draw."""
    docs = many_documents(21)
    write_corpus(tmp_path, docs, vocab_size=60, n_parts=3)
    flags = ["--window", str(window), "--sample", str(sample), "--draws", "3", "--pairs-per-shard", "1500",
             "--row-group-pairs", "400", "--seed", "5", "--chunk-tokens", "777",
             "--dynamic-window" if dynamic else "--no-dynamic-window"]
    run_stage(tmp_path, *flags)
    meta, by_shard = read_shards(tmp_path, draw=None)
    assert meta["order"] == "windows" and meta["layout"] == "kept-stream-1" and len(by_shard) >= 6
    for draw in (0, 1, 2):
        stream, window_first = stream_of_draw(docs, 60, window, sample, 5, draw, dynamic)
        shards = [(i, s) for i, s in enumerate(meta["shards"]) if s["draw"] == draw]
        pairs = np.concatenate([by_shard[i] for i, _ in shards])
        assert as_multiset(pairs) == as_multiset(stream)
        assert meta["pairs_per_draw"][draw] == len(stream)
        # whole windows, each shard's runs of one target: the windows of the stream exactly
        windows = Counter()
        for _, shard in shards:
            windows += windows_of_stream(*read_windowed(tmp_path, shard["file"]))
        assert windows == windows_of_stream(stream, window_first)


def test_order_windows_has_the_streams_pairs_shard_by_shard_cut_nowhere(tmp_path):
    rng = np.random.default_rng(21)
    docs = [rng.integers(0, 60, size=k) for k in rng.integers(1, 50, size=80)]
    write_corpus(tmp_path, docs)
    run_stage(tmp_path, "--window", "4", "--sample", "1e-2", "--draws", "2", "--pairs-per-shard", "1500",
              "--row-group-pairs", "400", "--seed", "5")
    meta, by_windows = read_shards(tmp_path, draw=None)
    assert meta["order"] == "windows" and len(by_windows) >= 4
    for draw in (0, 1):
        stream, window_first = stream_of_draw(docs, 60, 4, 1e-2, 5, draw)
        shards = [(shard, pairs) for shard, pairs in zip(meta["shards"], by_windows) if shard["draw"] == draw]
        offsets = np.cumsum([0] + [shard["pairs"] for shard, _ in shards])
        runs = 0
        for (shard, pairs), first in zip(shards, offsets):
            # every shard holds the next run of whole windows of the stream (~1500 pairs), shuffled by window
            assert as_multiset(pairs) == as_multiset(stream[first:first + shard["pairs"]]), shard
            assert first + shard["pairs"] == len(stream) or window_first[first + shard["pairs"]]
            pairs_read, starts = read_windowed(tmp_path, shard["file"])
            assert starts[0]
            split_windows(pairs_read, starts)  # every flagged run is one target's
            runs += int(starts.sum())
            # units: ~400 pairs each, windows u, u + U, ... of the shard; each unit's windows in an order of its own
            assert len(shard["units"]) == -(-shard["pairs"] // 400)
        # no window is cut, at shard edges or unit edges: as many runs as the stream has windows
        assert runs == int(window_first.sum())


def test_units_of_a_shard_are_spread_over_it_and_shuffled():
    sizes = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], dtype=np.int16)
    from w2v.shards import shard_units, unit_order, unit_pairs
    units = shard_units(sizes, 15, shuffle=True)  # 44 pairs: 3 units, windows 0,3,6,9 / 1,4,7,10 / 2,5,8
    assert [list(range(11))[u] for u in units] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert unit_pairs(sizes, units) == [9, 17, 18]
    text = shard_units(sizes, 15, shuffle=False)  # text order: the window that reaches 15, 30 ends a unit
    assert [list(range(11))[u] for u in text] == [[0, 1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]
    assert unit_pairs(sizes, text) == [23, 8, 13]
    assert shard_units(sizes, 1, shuffle=False) == [slice(i, i + 1) for i in range(11)]
    order = unit_order(5, 1, 2, 0, 1000)
    assert sorted(order) == list(range(1000)) and np.array_equal(order, unit_order(5, 1, 2, 0, 1000))
    assert not np.array_equal(order, unit_order(5, 1, 2, 1, 1000))  # another unit, another order
    assert not np.array_equal(order, unit_order(5, 0, 2, 0, 1000))  # another draw
    # blocks of UNIT_BLOCK windows in text order (the last one short), the blocks in a drawn order
    from w2v.layout import UNIT_BLOCK
    assert UNIT_BLOCK == 8
    runs = np.split(order, np.flatnonzero(np.diff(order) != 1) + 1)  # blocks drawn one after the other join
    assert all(run[0] % 8 == 0 and (len(run) % 8 == 0 or run[-1] == 999) for run in runs) and len(runs) >= 60


def test_a_pairs_dir_of_the_retired_pair_order_is_refused_with_one_line(tmp_path):
    add_corpus(tmp_path)
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "0")
    with pytest.raises(SystemExit):  # the flag is gone
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "1", "--order", "pairs")
    meta_path = tmp_path / "pairs" / "meta.json"
    meta = json.loads(meta_path.read_text())
    # written in pair order: "order" "pairs", or no "order" at all (before orders existed)
    for old in ({**meta, "order": "pairs"}, {key: value for key, value in meta.items() if key != "order"}):
        assert_refused_then_rebuilt(tmp_path, old, f"{tmp_path / 'pairs'} was written in pair order, which this "
                                                   f"version no longer reads: rebuild it with pairs_dataset.py")
    assert json.loads(meta_path.read_text())["order"] == "windows"


def assert_refused_then_rebuilt(data_dir: Path, old_meta: dict, message: str) -> None:
    """pairs/meta.json replaced by `old_meta`: adding a draw stops with exactly `message`; a full run rebuilds."""
    (data_dir / "pairs" / "meta.json").write_text(json.dumps(old_meta))
    with pytest.raises(StageError) as error:
        run_stage(data_dir, *ADD_FLAGS, "--only-draws", "1")
    assert str(error.value) == message
    run_stage(data_dir, *ADD_FLAGS)


# --- --no-shuffle: text order, as word2vec.c and gensim train ------------------------------------------------------

def stream_of_draw(docs: list, vocab_size: int, window: int, sample: float, seed: int, draw: int,
                   dynamic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The draw's pairs in stream order and the flags of its windows' first pairs, from iter_pairs."""
    slices = [(np.concatenate(docs).astype(np.int32), np.repeat(np.arange(len(docs)), [len(d) for d in docs]))]
    counts = np.bincount(np.concatenate(docs), minlength=vocab_size)
    pieces = list(iter_pairs(slices, keep_probabilities(counts, sample), window, sample, dynamic, 10**6,
                             pairs_dataset.draw_seed(seed, draw), with_sizes=True))
    pairs = np.stack([np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])], axis=1)
    sizes = np.concatenate([p[2] for p in pieces])
    flags = np.zeros(len(pairs), dtype=bool)
    flags[(np.cumsum(sizes) - sizes)[sizes > 0]] = True
    return pairs, flags


def test_no_shuffle_writes_the_stream_in_text_order(tmp_path):
    from dataset import PairsDataset
    rng = np.random.default_rng(31)
    docs = [rng.integers(0, 60, size=k) for k in rng.integers(1, 50, size=80)]
    write_corpus(tmp_path, docs)
    run_stage(tmp_path, "--window", "4", "--sample", "1e-2", "--draws", "2", "--pairs-per-shard", "1500",
              "--row-group-pairs", "400", "--seed", "5", "--no-shuffle")
    meta = json.loads((tmp_path / "pairs" / "meta.json").read_text())
    assert meta["shuffle"] is False and meta["order"] == "windows"
    for draw in (0, 1):
        expected, window_first = stream_of_draw(docs, 60, 4, 1e-2, 5, draw)
        names = [s["file"] for s in meta["shards"] if s["draw"] == draw]
        assert len(names) >= 3
        _, shards = read_shards(tmp_path, draw)
        assert np.array_equal(np.concatenate(shards), expected)  # shards in file order = the stream, pair by pair
        flags = np.concatenate([read_windowed(tmp_path, name)[1] for name in names])
        # the windows' first pairs, exactly: no shard or unit edge cuts a window
        assert np.array_equal(flags, window_first)
        # the reader keeps it: every epoch of this draw reads its shards in file order
        for epoch in (draw, draw + 2):
            batches = list(PairsDataset(tmp_path, batch_size=700, seed=epoch + 3, epoch=epoch))
            read = np.concatenate([np.stack([b.pair_targets().numpy(), b.context.numpy()], axis=1) for b in batches])
            assert np.array_equal(read, expected)
    # the same pairs as the shuffled run's, shard by shard
    write_corpus(tmp_path / "shuffled", docs)
    run_stage(tmp_path / "shuffled", "--window", "4", "--sample", "1e-2", "--draws", "2", "--pairs-per-shard",
              "1500", "--row-group-pairs", "400", "--seed", "5")
    shuffled_meta, shuffled = read_shards(tmp_path / "shuffled", draw=None)
    assert shuffled_meta["shuffle"] is True
    _, text = read_shards(tmp_path, draw=None)
    for text_pairs, shuffled_pairs in zip(text, shuffled, strict=True):
        assert as_multiset(text_pairs) == as_multiset(shuffled_pairs)
    # (a unit of up to UNIT_BLOCK windows, as in a small last shard, is read in text order either way)
    assert not all(np.array_equal(t, s) for t, s in zip(text, shuffled))


def test_no_shuffle_draws_join_only_a_text_order_pairs(tmp_path):
    add_corpus(tmp_path)
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "0", "--no-shuffle")
    with pytest.raises(StageError) as error:
        run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "1")
    assert str(error.value) == (f"cannot add draws to {tmp_path / 'pairs'}: --shuffle False against True now: it "
                                f"was written (shuffle); run pairs_dataset.py without --only-draws to write every "
                                f"draw anew")
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "1", "--no-shuffle")
    # a meta.json from before the setting was shuffled
    meta_path = tmp_path / "pairs" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["shuffle"] is False
    del meta["shuffle"]
    meta_path.write_text(json.dumps(meta))
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "2")
    assert json.loads(meta_path.read_text())["shuffle"] is True


def test_the_shipped_sample_draws_todays_pairs_and_windows(tmp_path):
    """Issue 29 part 2 on sample/taiga_ud.txt (prep.py, convert_to_int.py as the pipeline runs them): each draw's
    pairs (a multiset) and windows are iter_pairs' on the same id stream, seed and flags; in text order, the pairs
    themselves in the same order."""
    import convert_to_int
    import prep
    prep.main(["--dataset", str(REPO / "sample" / "taiga_ud.txt"), "--data-dir", str(tmp_path), "--num-proc", "1"])
    convert_to_int.main(["--data-dir", str(tmp_path), "--num-proc", "1", "--min-count", "2"])
    docs = [np.asarray(doc, dtype=np.int32) for part in sorted((tmp_path / "ids").glob("part-*.parquet"))
            for doc in pq.read_table(part).column("ids").to_pylist()]
    vocab_size = len(json.loads((tmp_path / "vocab.json").read_text())["counts"])
    for shuffle in ("--shuffle", "--no-shuffle"):
        run_stage(tmp_path, "--draws", "2", "--pairs-per-shard", "40000", "--row-group-pairs", "7000", "--seed", "3",
                  "--sample", "1e-3", shuffle)
        meta, by_shard = read_shards(tmp_path, draw=None)
        assert meta["window"] == pairs_dataset.WINDOW and meta["shuffle"] is (shuffle == "--shuffle")
        for draw in (0, 1):
            # the reference reads the id stream as the stage does (counts from vocab.json: keep probabilities)
            stream, window_first = stream_of_draw(docs, vocab_size, pairs_dataset.WINDOW, 1e-3, 3, draw)
            counts = np.asarray(json.loads((tmp_path / "vocab.json").read_text())["counts"])
            assert np.array_equal(np.bincount(np.concatenate(docs), minlength=vocab_size), counts)
            index = [i for i, s in enumerate(meta["shards"]) if s["draw"] == draw]
            assert len(index) >= 2 and meta["pairs_per_draw"][draw] == len(stream) > 80_000
            pairs = np.concatenate([by_shard[i] for i in index])
            windows = Counter()
            for i in index:
                windows += windows_of_stream(*read_windowed(tmp_path, meta["shards"][i]["file"]))
            assert windows == windows_of_stream(stream, window_first)
            if shuffle == "--shuffle":
                assert as_multiset(pairs) == as_multiset(stream) and not np.array_equal(pairs, stream)
            else:
                assert np.array_equal(pairs, stream)


def test_a_pairs_dir_of_the_retired_window_shards_is_refused_with_one_line(tmp_path):
    add_corpus(tmp_path)
    run_stage(tmp_path, *ADD_FLAGS, "--only-draws", "0")
    meta_path = tmp_path / "pairs" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["layout"] == "kept-stream-1"
    # the window shards before the kept stream (target, context, window_start): meta.json had no "layout"
    assert_refused_then_rebuilt(
        tmp_path, {key: value for key, value in meta.items() if key != "layout"},
        f"{tmp_path / 'pairs'} holds the pair shards of earlier versions (target, context, window_start), which this "
        f"version no longer reads: rebuild it with pairs_dataset.py")
    assert json.loads(meta_path.read_text())["layout"] == "kept-stream-1"
