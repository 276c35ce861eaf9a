"""Phrases for convert_to_int.py --phrases N: adjacent units that occur together far more often than chance
joined into one token (нью + йорк -> нью_йорк), in N passes over the id stream, each able to join a unit that
an earlier pass joined (2 passes: up to 4 words).

A pair (a, b) of adjacent units in one document, neither a word left out of the vocabulary, is scored from
its count n_ab, the units' counts n_a, n_b and the total N of the units in the stream:
- "word2phrase" (word2vec.c's word2phrase): (n_ab - min_count) / (n_a * n_b) * N, joined when above the
  threshold (word2vec.c's default 100);
- "npmi" (gensim's normalised pointwise mutual information): ln(n_ab N / (n_a n_b)) / -ln(n_ab / N), in
  [-1, 1], joined when above the threshold and n_ab >= min_count.
With --phrase-upos TAG... only pairs whose two units both carry one of the tags are counted and scored: PROPN
alone joins proper-name sequences, as the RusVectores models do.

A pass: every part's stream counted into pairs (two int32 unit ids packed into one int64), written as hash
buckets of (pair, count) exactly as convert_to_int.py writes word counts; each bucket summed across the parts
and scored by one worker at a time; the pairs that pass are joined in every part left to right, a unit joined
at most once per pass (a b c with both pairs passing gives a_b c). The units joined by a pass are new ids after
the old ones. No process holds more than one part's stream and one bucket of pairs, plus a count per unit.

The key of a joined unit: its parts joined by "_" (нью_йорк), or for lemma_UPOS keys the lemmas joined by "::"
and the tag of the last part (нижний::новгород_PROPN), RusVectores' form: the tag stays the one thing after the
last "_", so tagged evaluation sets and is_tagged read it as a word's key. prep.py's words hold no "_", so a plain
joined key never collides with a word.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from w2v import counting

SCORINGS = ("word2phrase", "npmi")
# The threshold a scoring uses when --phrase-threshold is 0 (word2vec.c's for word2phrase).
DEFAULT_THRESHOLDS = {"word2phrase": 100.0, "npmi": 0.5}
PAIR_SCHEMA = pa.schema([("pair", pa.int64()), ("count", pa.int64())])
# What joins two lemma_UPOS keys (the lemmas), and two plain words.
TAGGED_JOINER, PLAIN_JOINER = "::", "_"


def check_settings(scoring: str, threshold: float, upos: list[str], lemmatize: str, tags: frozenset) -> float:
    """The threshold to use (the scoring's default for 0); ValueError with one line for a bad combination."""
    if scoring not in SCORINGS:
        raise ValueError(f"--phrase-scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}")
    if scoring == "npmi" and not -1 < threshold <= 1:
        raise ValueError(f"--phrase-threshold must be above -1 and at most 1 with npmi scoring, got {threshold!r}")
    if scoring == "word2phrase" and threshold < 0:
        raise ValueError(f"--phrase-threshold must be above 0 with word2phrase scoring, got {threshold!r}")
    unknown = sorted(set(upos) - tags)
    if unknown:
        raise ValueError(f"--phrase-upos takes UPOS tags ({', '.join(sorted(tags))}), got {', '.join(unknown)}")
    if upos and lemmatize != "upos":
        raise ValueError(f"--phrase-upos needs --lemmatize upos (tagged keys), got --lemmatize {lemmatize}")
    return DEFAULT_THRESHOLDS[scoring] if threshold == 0 else threshold


def scores(pair_counts: np.ndarray, left_counts: np.ndarray, right_counts: np.ndarray, total: int, scoring: str,
           min_count: int) -> np.ndarray:
    """The score of each pair (float64); -inf for npmi pairs seen fewer than min_count times."""
    n_ab, n_a, n_b = (np.asarray(x, dtype=np.float64) for x in (pair_counts, left_counts, right_counts))
    if scoring == "word2phrase":
        return (n_ab - min_count) / (n_a * n_b) * total
    with np.errstate(divide="ignore", invalid="ignore"):  # n_ab == N: 0 / 0, set just below
        npmi = np.log(n_ab * total / (n_a * n_b)) / -np.log(n_ab / total)
    # A pair that is every token of the stream has -ln(1) = 0 below: it is as associated as pairs get.
    npmi[n_ab >= total] = 1.0
    return np.where(n_ab >= min_count, npmi, -np.inf)


def pack(left: np.ndarray, right: np.ndarray, units: int) -> np.ndarray:
    return left.astype(np.int64) * units + right


def pair_buckets(pairs: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each packed pair: murmur3's 64-bit finaliser, the same in every process."""
    hashes = pairs.astype(np.uint64)
    for multiplier in counting.HASH_MIX:
        hashes ^= hashes >> np.uint64(33)
        hashes *= multiplier
    hashes ^= hashes >> np.uint64(33)
    return (hashes % np.uint64(buckets)).astype(np.int64)


def greedy(joinable: np.ndarray) -> np.ndarray:
    """Which joinable positions are joined, left to right, a unit in one join at most: within each run of
    consecutive joinable positions, the 1st, 3rd, 5th... (position i joins units i and i + 1)."""
    at = np.flatnonzero(joinable)  # few of the stream's positions: work on those alone
    starts = np.ones(len(at), dtype=bool)
    starts[1:] = at[1:] != at[:-1] + 1
    order = np.arange(len(at))
    run_start = np.maximum.accumulate(np.where(starts, order, 0)) if len(at) else order
    taken = np.zeros(len(joinable), dtype=bool)
    taken[at[(order - run_start) % 2 == 0]] = True
    return taken


# ---------------------------------------------------------------- the stream of one part


def save_stream(path: Path, units: np.ndarray, offsets: np.ndarray) -> None:
    """A part's stream: units (int32, -1 for a word left out, kept as a break) and document offsets (int64)."""
    with open(path, "wb") as handle:
        np.save(handle, units.astype(np.int32, copy=False))
        np.save(handle, offsets.astype(np.int64, copy=False))


def load_stream(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as handle:
        return np.load(handle), np.load(handle)


def adjacent(units: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Positions i whose units i and i + 1 are a pair: both known words, one document."""
    if len(units) < 2:
        return np.zeros(max(len(units) - 1, 0), dtype=bool)
    valid = (units[:-1] >= 0) & (units[1:] >= 0)
    last = offsets[1:-1] - 1  # the last token of every document but the final one
    valid[last[(last >= 0) & (last < len(valid))]] = False
    return valid


def stream_part(task: tuple[Path, Path, str, int]) -> tuple[int, int, np.ndarray]:
    """A prep part -> its stream of unit ids (the vocabulary candidates' ids, -1 for other words).

    task: (prep part, stream file, the vocabulary's Arrow file, units). Returns (documents, tokens, the count
    of each unit in the part).
    """
    path, out_path, vocabulary_file, units = task
    words, form_ids = counting.read_vocabulary_file(str(vocabulary_file))
    chunks, lengths = [], []
    for lists, flat in counting.token_groups(path):
        chunks.append(counting.group_ids(flat, words, form_ids).astype(np.int32))
        lengths.append(np.diff(lists.offsets.to_numpy()))
    ids = np.concatenate(chunks) if chunks else np.empty(0, np.int32)
    lengths = np.concatenate(lengths) if lengths else np.empty(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    save_stream(out_path, ids, offsets)
    return len(lengths), len(ids), np.bincount(ids[ids >= 0], minlength=units)


def count_pairs(task: tuple[Path, Path, int, int, Path | None]) -> int:
    """A part's pairs counted and written as `buckets` batches of (pair, count) to out_path.

    task: (stream file, out_path, units, buckets, the .npy of the units allowed in a pair or None: every unit).
    Returns the distinct pairs of the part.
    """
    stream_path, out_path, units, buckets, allowed_path = task
    ids, offsets = load_stream(stream_path)
    valid = adjacent(ids, offsets)
    left, right = ids[:-1][valid], ids[1:][valid]
    if allowed_path is not None:
        allowed = np.load(allowed_path)
        keep = allowed[left] & allowed[right]
        left, right = left[keep], right[keep]
    pairs, counts = np.unique(pack(left, right, units), return_counts=True)
    table = pa.table({"pair": pairs, "count": counts.astype(np.int64)}, schema=PAIR_SCHEMA)
    counting.write_buckets(out_path, table, buckets, pair_buckets(pairs, buckets))
    return len(pairs)


def score_bucket(task: tuple[int, list[Path], Path, int, str, float, int]) -> tuple[np.ndarray, int]:
    """One bucket of pairs summed over the parts' files and scored: (the pairs joined, distinct pairs seen).

    task: (bucket, pair files, the .npy of unit counts, total units, scoring, threshold, min_count).
    """
    bucket, pair_files, counts_path, total, scoring, threshold, min_count = task
    totals = counting.bucket_totals(bucket, pair_files, PAIR_SCHEMA)
    totals = totals.filter(pc.greater_equal(totals["count"], min_count))
    pairs = totals.column("pair").to_numpy()
    counts = np.load(counts_path, mmap_mode="r")
    units = len(counts)
    score = scores(totals.column("count").to_numpy(), counts[pairs // units], counts[pairs % units], total,
                   scoring, min_count)
    return pairs[score > threshold], len(pairs)


def join_part(task: tuple[Path, Path, Path, Path, int]) -> tuple[int, np.ndarray]:
    """A part's stream with the joined pairs (a sorted .npy of packed pairs) replaced by their new units.

    The pair of rank r among the joined pairs becomes unit target[r] (canonical_units). task: (stream in,
    stream out, joined pairs, targets, units). Returns (joins made, the count of each unit, old and new, in the
    new stream).
    """
    in_path, out_path, joined_path, target_path, units = task
    ids, offsets = load_stream(in_path)
    joined, target = np.load(joined_path), np.load(target_path)
    # Only positions whose left unit starts a joined pair are looked up (a binary search each).
    starts_pair = np.zeros(units, dtype=bool)
    starts_pair[joined // units] = True
    at = np.flatnonzero(adjacent(ids, offsets) & starts_pair[np.maximum(ids[:-1], 0)])
    pairs = pack(ids[at], ids[at + 1], units)
    rank = np.minimum(np.searchsorted(joined, pairs), max(len(joined) - 1, 0))
    hit = joined[rank] == pairs if len(joined) else np.zeros(len(at), dtype=bool)
    found = np.zeros(max(len(ids) - 1, 0), dtype=bool)
    found[at[hit]] = True
    take = greedy(found)
    new_unit = np.zeros(len(found), dtype=np.int32)
    new_unit[at[hit]] = target[rank[hit]]
    out = ids.copy()
    out[:-1][take] = new_unit[take]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:][take] = False  # the right unit of a join goes
    removed_before = np.concatenate([[0], np.cumsum(~keep)])
    new_offsets = offsets - removed_before[offsets]
    out = out[keep]
    save_stream(out_path, out, new_offsets)
    return int(take.sum()), np.bincount(out[out >= 0], minlength=units + len(joined))


def stream_groups(stream_path: Path, final_ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """A stream as write_ids_part's one group: units mapped to final ids (-1: left out of the vocabulary)."""
    units, offsets = load_stream(stream_path)
    ids = np.where(units >= 0, final_ids[np.maximum(units, 0)], -1)
    parents = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    yield ids, parents, len(offsets) - 1


def write_part(task: tuple[int, Path, Path, Path]) -> dict:
    """The last step: a part's stream as `batch-<index>.parquet` of vocabulary ids (convert_to_int's layout).

    task: (index, stream file, output folder, the .npy mapping each unit to its id, -1 if not in the vocabulary).
    """
    index, stream_path, out_dir, final_ids_path = task
    return counting.write_ids_part(index, Path(out_dir), stream_groups(stream_path, np.load(final_ids_path)))


def joined_key(left: str, right: str, tagged: bool) -> str:
    """The key of unit left + right (see the module docstring)."""
    if tagged:
        return left.rpartition("_")[0] + TAGGED_JOINER + right
    return left + PLAIN_JOINER + right


def tag_of(key: str) -> str:
    return key.rpartition("_")[2]


# ---------------------------------------------------------------- the passes


def make_streams(prep_parts: list[Path], pool, spill_dir: Path, vocabulary_file: Path, units: int
                 ) -> tuple[list[Path], np.ndarray]:
    """Every prep part as a stream of units in spill_dir; (the stream files, the count of each unit)."""
    paths = [spill_dir / f"stream-{index:05d}.npy" for index in range(len(prep_parts))]
    counts = np.zeros(units, dtype=np.int64)
    tasks = ((part, path, vocabulary_file, units) for part, path in zip(prep_parts, paths))
    for _, _, part_counts in pool.map(stream_part, tasks):
        counts += part_counts
    return paths, counts


def unit_tags(keys: pa.Array) -> pa.Array:
    """The UPOS tag of each lemma_UPOS key (what follows its last "_")."""
    return pc.replace_substring_regex(keys, pattern="^.*_", replacement="")


def join_keys(keys: pa.Array, pairs: np.ndarray, units: int, tagged: bool) -> pa.Array:
    """The keys of the joined units, in the order of `pairs` (packed, sorted)."""
    left, right = pc.take(keys, pa.array(pairs // units)), pc.take(keys, pa.array(pairs % units))
    if tagged:
        left = pc.replace_substring_regex(left, pattern="_[^_]*$", replacement="")
    return pc.binary_join_element_wise(left, right, TAGGED_JOINER if tagged else PLAIN_JOINER)


def canonical_units(keys: pa.Array, new_keys: pa.Array) -> np.ndarray:
    """The unit each new key (units len(keys), len(keys) + 1, ...) is written as: the first unit of that key.

    Two joins can make one key: a_b + c and a + b_c, a pair joined again in a later pass (where an earlier join
    took one of its units), or lemma_UPOS parts whose left tags differ (нижний_ADJ, нижний_NOUN + новгород_PROPN).
    They must be one token, or the vocabulary would hold a key twice. Units never used keep their key, count 0.
    """
    every = pa.concat_arrays([keys, new_keys])
    return pc.index_in(new_keys, value_set=every).to_numpy(zero_copy_only=False).astype(np.int32)


def run_passes(streams: list[Path], counts: np.ndarray, keys: pa.Array, pool, spill_dir: Path, passes: int,
               scoring: str, threshold: float, min_count: int, upos: list[str], buckets: int, tagged: bool
               ) -> tuple[list[Path], np.ndarray, pa.Array, list[dict]]:
    """`passes` joining passes over the streams (replaced); returns (streams, unit counts, unit keys, figures
    of each pass: distinct pairs counted, pairs joined, joins made in the stream)."""
    figures = []
    for step in range(passes):
        units = len(counts)
        allowed_path = None
        if upos:
            allowed_path = spill_dir / "allowed.npy"
            np.save(allowed_path, pc.is_in(unit_tags(keys), value_set=pa.array(upos)).to_numpy(zero_copy_only=False))
        pair_files = [spill_dir / f"pairs-{index:05d}.arrow" for index in range(len(streams))]
        distinct_in_parts = sum(pool.map(count_pairs, ((stream, out, units, buckets, allowed_path)
                                                       for stream, out in zip(streams, pair_files))))
        counts_path = spill_dir / "unit-counts.npy"
        np.save(counts_path, counts)
        total = int(counts.sum())
        joined, distinct = [], 0
        for bucket_joined, bucket_pairs in pool.map(score_bucket, ((bucket, pair_files, counts_path, total, scoring,
                                                                     threshold, min_count)
                                                                    for bucket in range(buckets))):
            joined.append(bucket_joined)
            distinct += bucket_pairs
        for path in pair_files:
            path.unlink()
        joined = np.sort(np.concatenate(joined)) if joined else np.empty(0, np.int64)
        joined_path, target_path = spill_dir / "joined.npy", spill_dir / "targets.npy"
        np.save(joined_path, joined)
        new_keys = join_keys(keys, joined, units, tagged).cast(keys.type)
        np.save(target_path, canonical_units(keys, new_keys))
        outputs = [spill_dir / f"stream-{index:05d}-{step + 1}.npy" for index in range(len(streams))]
        joins, counts = 0, np.zeros(units + len(joined), dtype=np.int64)
        for part_joins, part_counts in pool.map(join_part, ((stream, out, joined_path, target_path, units)
                                                            for stream, out in zip(streams, outputs))):
            joins += part_joins
            counts += part_counts
        for path in streams:
            path.unlink()
        streams = outputs
        keys = pa.concat_arrays([keys, new_keys])
        figures.append({"pairs_in_parts": int(distinct_in_parts), "pairs_seen_min_count": distinct,
                        "pairs_joined": len(joined), "joins": joins})
    return streams, counts, keys, figures
