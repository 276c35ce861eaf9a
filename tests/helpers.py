"""Helpers shared by the test modules: small corpora, the stages run on them, fixtures' data and references. The
pytest fixtures built on them live in conftest.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import convert_to_int
import pairs_dataset
import prep
import train
import unigram_table
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


SHARD_PAIRS = [2500, 1700, 1000, 333]  # as pairs_dataset.py writes them: every shard full but the last


ROW_GROUP = 400


TOTAL = sum(SHARD_PAIRS)


TABLE_SHARES = np.array([0.5, 0.25, 0.15, 0.1])  # of a 1000-entry table over a 4-word vocabulary


def window_flag(k: np.ndarray) -> np.ndarray:
    """The window_start of pair k in the windowed fixture: windows of 1 to 7 pairs, cut by row groups and batches."""
    return (k % 5 == 0) | (k % 7 == 3)


def expected_window_starts(target: np.ndarray) -> np.ndarray:
    """A batch's window offsets from its pairs alone: a flagged pair, the batch's first pair, and a row group's
    first pair (k - shard start a multiple of ROW_GROUP) start a window."""
    shard_starts = np.cumsum([0] + SHARD_PAIRS[:-1])
    shard_start = shard_starts[np.searchsorted(shard_starts, target, "right") - 1]
    starts = window_flag(target) | ((target - shard_start) % ROW_GROUP == 0)
    starts[0] = True
    return np.append(np.flatnonzero(starts), len(target))


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
    unigram_table.main(common + ["--table-size", "100000"])
    return json.loads((data_dir / "pairs" / "meta.json").read_text())["pairs_per_draw"]


TRAIN_ARGS = ["--dim", "24", "--batch-size", "5000", "--threads", "1", "--device", "cpu", "--num-workers", "0",
              "--lr", "0.025"]


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
