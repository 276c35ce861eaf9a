"""Helpers shared by the test modules: small corpora, the stages run on them, fixtures' data and references. The
pytest fixtures built on them live in conftest.py."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import convert_to_int
import pairs_dataset
import prep
import train
import unigram_table
from w2v.pairs_meta import LAYOUT
from w2v.shards import DOC_START, SCHEMA, shard_units, stream_windows, unit_pairs, window_sizes
from word2vec import nearest_neighbours

ROOT = Path(__file__).resolve().parent.parent
CLUSTERS, WORDS_PER_CLUSTER = 8, 12


MODEL_FILES = ("embeddings.npy", "checkpoint.pt", "loss.csv", "vectors.txt", "vectors.bin")


def share_in_cluster(data_dir: Path, clusters: list[list[str]]) -> float:
    from w2v.vectors_io import load_vectors

    words, vectors = load_vectors(data_dir / "model" / "vectors.txt")
    cluster_of = {word: c for c, members in enumerate(clusters) for word in members}
    queries = [word for members in clusters for word in members]
    found = nearest_neighbours(words, vectors, queries, k=5)
    return float(np.mean([cluster_of.get(w) == cluster_of[q] for q in queries for w, _ in found[q]]))


def uninterrupted_then_reset(args: list[str], data_dir: Path) -> tuple[np.ndarray, str]:
    train.main(args)
    vectors = np.load(data_dir / "model" / "embeddings.npy")
    loss_log = (data_dir / "model" / "loss.csv").read_text()
    for name in MODEL_FILES:
        (data_dir / "model" / name).unlink()
    return vectors, loss_log


def write_prep(data_dir: Path, parts: list[list[list[str]]], **write_options) -> None:
    (data_dir / "prep").mkdir(parents=True)
    for index, rows in enumerate(parts):
        table = pa.table({"tokens": pa.array(rows, pa.list_(pa.string()))})
        pq.write_table(table, data_dir / "prep" / f"part-{index:05d}.parquet", **write_options)


def read_ids(data_dir: Path) -> list[list[list[int]]]:
    return [pq.read_table(part).column("ids").to_pylist() for part in sorted((data_dir / "ids").glob("part-*"))]


def run_convert(data_dir: Path, *flags: str) -> dict:
    return convert_to_int.main(["--data-dir", str(data_dir), "--num-proc", "1", *flags])


def window_batch(rng, vocab: int, n_windows: int, longest: int = 6):
    """Windows of 1..longest pairs (k = 0 never: the loader makes none), each of one random target."""
    sizes = rng.integers(1, longest + 1, n_windows)
    window_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    target = np.repeat(rng.integers(0, vocab, n_windows), sizes).astype(np.int32)
    context = rng.integers(0, vocab, int(sizes.sum())).astype(np.int32)
    return target, context, window_starts


def tables(rng, vocab: int, dim: int, scale: float = 0.3):
    return (rng.normal(0, scale, (vocab, dim)).astype(np.float32),
            rng.normal(0, scale, (vocab, dim)).astype(np.float32))











def cluster_words():
    # Cyrillic words so the whole path (cleaning, vocabulary, vectors.txt) sees real Russian characters.
    letters = "абвгдежзиклмнопрстуфхцчшщэюя"
    return [[f"{letters[c]}{letters[w]}{letters[(c * 7 + w) % len(letters)]}" for w in range(WORDS_PER_CLUSTER)]
            for c in range(CLUSTERS)]


def write_corpus(path: Path, documents: int = 3000, seed: int = 0) -> list[list[str]]:
    """Each line talks about one topic: words from one cluster, plus shared filler words and punctuation."""
    rng = np.random.default_rng(seed)
    clusters = cluster_words()
    fillers = ["и", "в", "не", "на", "что"]
    lines = []
    for _ in range(documents):
        topic = clusters[rng.integers(CLUSTERS)]
        words = [topic[i] if rng.random() > 0.25 else fillers[rng.integers(len(fillers))]
                 for i in rng.integers(WORDS_PER_CLUSTER, size=14)]
        lines.append(" ".join(words).capitalize() + ", 12 раз!")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return clusters


def run_stages(data_dir: Path, corpus: Path, pairs_per_shard: int = 10_000_000, draws: int = 2) -> list[int]:
    """Stages 1-4; returns the pairs of each draw (dynamic windows: they differ from draw to draw)."""
    common = ["--data-dir", str(data_dir)]
    prep.main(common + ["--dataset", str(corpus), "--num-proc", "1"])
    convert_to_int.main(common + ["--min-count", "2", "--num-proc", "1"])
    pairs_dataset.main(common + ["--window", "4", "--sample", "0", "--pairs-per-shard", str(pairs_per_shard),
                                 "--row-group-pairs", "20000", "--draws", str(draws)])
    unigram_table.main(common)
    return json.loads((data_dir / "pairs" / "meta.json").read_text())["pairs_per_draw"]


TRAIN_ARGS = ["--dim", "24", "--batch-size", "5000", "--threads", "1", "--device", "cpu", "--num-workers", "0",
              "--lr", "0.025", "--no-card-scores"]


def drawn_windows(data_dir: Path, counts, seed: int, window: int = 5, sample: float = 1e-4, shuffle: bool = True,
                  chunk_tokens: int = 1_000_000):
    """(target, context, window_edges) of one draw of a corpus's pairs held in memory, made as pairs_dataset.py
    makes them (sub-sampling, reduced windows, pairs never across a document), its windows shuffled as units
    (`shuffle`, seeded) or in text order: a kernel's input without the loader. window_edges[w] is the first pair
    of window w, window_edges[-1] the number of pairs. Needs convert_to_int.py's ids/ under data_dir."""
    from pairs_dataset import read_id_slices

    files = sorted((data_dir / "ids").glob("part-*.parquet"))
    return windows_of(read_id_slices(files, len(counts), chunk_tokens), counts, seed, window, sample, shuffle,
                      chunk_tokens)


def windows_of(slices, counts, seed: int, window: int = 5, sample: float = 1e-4, shuffle: bool = True,
               chunk_tokens: int = 1_000_000):
    """drawn_windows of a token stream given as (ids, doc_index) slices (pairs_dataset.iter_pairs' input)."""
    import numpy as np

    from pairs_dataset import iter_pairs, keep_probabilities

    counts = np.asarray(counts)
    pieces = list(iter_pairs(slices, keep_probabilities(counts, sample), window, sample, True, chunk_tokens, seed,
                             with_sizes=True))
    target = np.concatenate([piece[0] for piece in pieces])
    context = np.concatenate([piece[1] for piece in pieces])
    sizes = np.concatenate([piece[2] for piece in pieces])
    del pieces
    sizes = sizes[sizes > 0]
    edges = np.concatenate([[0], np.cumsum(sizes)])
    if not shuffle:
        return target, context, edges
    order = np.random.default_rng(seed).permutation(len(sizes))
    new_sizes = sizes[order]
    new_edges = np.concatenate([[0], np.cumsum(new_sizes)])
    # pair i of shuffled window k comes from position edges[order[k]] + i
    source = np.repeat(edges[:-1][order] - new_edges[:-1], new_sizes) + np.arange(len(target))
    return target[source], context[source], new_edges


def batch_window_starts(window_edges, lo: int, hi: int):
    """window_starts of the batch of pairs lo..hi-1, as dataset.py cuts them: a window cut by lo or hi is split."""
    import numpy as np

    inside = window_edges[(window_edges > lo) & (window_edges < hi)]
    return np.concatenate([[0], inside - lo, [hi - lo]]).astype(np.int64)


SHARD_PAIRS = [2500, 1700, 1000, 333]  # as pairs_dataset.py writes them: every shard full but the last
ROW_GROUP = 400
TOTAL = sum(SHARD_PAIRS)
TABLE_SHARES = np.array([0.5, 0.25, 0.15, 0.1])  # the negatives' distribution over a 4-word vocabulary (conftest)


def word_table(ids: np.ndarray, vocab_size: int = 0) -> np.ndarray:
    """The alias table (unigram_table.py) that draws each word as often as it appears in `ids`, over
    max(vocab_size, max(ids) + 1) words: what a test used to write as a table of word ids."""
    ids = np.asarray(ids, dtype=np.int64)
    return unigram_table.build_alias(np.bincount(ids, minlength=max(vocab_size, int(ids.max()) + 1)), power=1.0)


def write_stream_shards(pairs_dir: Path, streams: list[tuple[np.ndarray, np.ndarray]], shuffle: bool = True,
                        seed: int = 1, **meta) -> list[dict]:
    """Shards in the kept-stream layout (w2v/shards.py), one per (ids, window bytes) stream, every row a target,
    units of ROW_GROUP pairs; meta.json listing them (one draw, `seed`, `shuffle` and `meta`). Their entries."""
    pairs_dir.mkdir(exist_ok=True)
    shards = []
    for i, (ids, code) in enumerate(streams):
        sizes = window_sizes(stream_windows(code, 0, len(code)))
        units = unit_pairs(sizes, shard_units(sizes, ROW_GROUP, shuffle))
        pq.write_table(pa.table([pa.array(ids, pa.int32()), pa.array(code, pa.uint8())], schema=SCHEMA),
                       pairs_dir / f"shard-{i:05d}.parquet", compression="lz4", use_dictionary=False)
        shards.append({"file": f"shard-{i:05d}.parquet", "pairs": sum(units), "draw": 0, "part": i,
                       "tokens": len(ids), "targets": [0, len(ids)], "units": units})
    (pairs_dir / "meta.json").write_text(json.dumps({
        "pairs": sum(s["pairs"] for s in shards), "shards": shards, "order": "windows", "layout": LAYOUT,
        "row_group_pairs": ROW_GROUP, "seed": seed, **({} if shuffle else {"shuffle": False}), **meta}))
    return shards


def one_pair_windows(start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A kept stream whose windows are the pairs (k, k + 1), k = start..start+n-1: documents [k, k + 1], k drawing
    window 1 and k + 1 window 0 (no window: the writer never draws 0, the reader takes it)."""
    ids = np.empty(2 * n, dtype=np.int32)
    ids[0::2] = np.arange(start, start + n)
    ids[1::2] = ids[0::2] + 1
    code = np.zeros(2 * n, dtype=np.uint8)
    code[0::2] = 1 | DOC_START
    return ids, code


def reference_windows(data_dir: Path) -> dict[int, tuple[int, ...]]:
    """Target -> its contexts in window order, straight from the shards' columns by plain loops."""
    meta = json.loads((data_dir / "pairs" / "meta.json").read_text())
    windows = {}
    for shard in meta["shards"]:
        table = pq.read_table(data_dir / "pairs" / shard["file"])
        ids, code = table.column("id").to_pylist(), table.column("window").to_pylist()
        doc = np.cumsum([c >> 7 for c in code])
        for i in range(len(ids)):
            b = code[i] & 63
            contexts = tuple(ids[j] for j in [*range(i - b, i), *range(i + 1, i + b + 1)]
                             if 0 <= j < len(ids) and doc[j] == doc[i])
            if contexts:
                windows[ids[i]] = contexts
    return windows


def assert_windows_whole_but_at_batch_edges(batches, reference: dict) -> None:
    """Each batch's windows (context, window_target, window_starts, longest) are the reference's windows, every one
    whole but where a batch's edge cuts it: then its head ends one batch and its tail starts another."""
    pieces = []
    for context, window_target, window_starts, longest in batches:
        window_starts, context = window_starts.numpy(), context.numpy()
        assert window_starts[0] == 0 and window_starts[-1] == len(context) and np.all(np.diff(window_starts) > 0)
        assert longest == int(np.diff(window_starts).max())
        for w, target in enumerate(window_target.tolist()):
            pieces.append((target, tuple(context[window_starts[w]:window_starts[w + 1]].tolist()),
                           w == 0, w == len(window_starts) - 2))
    whole = [(t, c) for t, c, _, _ in pieces if c == reference[t]]
    cut = [(t, c, first, last) for t, c, first, last in pieces if c != reference[t]]
    cut_targets = Counter(t for t, *_ in cut)
    assert sorted(whole + [(t, reference[t]) for t in cut_targets]) == sorted(reference.items())
    assert set(cut_targets.values()) <= {2} and all(first or last for _, _, first, last in cut)
    for t in cut_targets:
        head = next(c for t2, c, first, last in cut if t2 == t and last)
        tail = next(c for t2, c, first, last in cut if t2 == t and first)
        assert head + tail == reference[t]
    return pieces, cut
