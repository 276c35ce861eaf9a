"""Bucketed counting, shared by convert_to_int.py (word counts) and phrases.py (pair counts).

A counts file is an Arrow IPC file of `buckets` record batches of (key, count): batch b holds the keys whose hash
falls in bucket b (`word_buckets` for words, a caller's own bucket for other keys). Summing bucket b across every
part's counts file (`bucket_totals`) gives exact totals while a merge holds about 1/buckets of the distinct keys.
Also here: reading a prep part's tokens dictionary-encoded (`token_groups`), looking its words up in a vocabulary
file (`read_vocabulary_file`, `group_ids`) and writing one ids part (`write_ids_part`).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from w2v.common import fail

# A bucket's counts from this many parts are concatenated before each group-by: fewer, larger group-bys.
MERGE_EVERY = 8
# Multipliers of the hash that picks a word's bucket (murmur3's 64-bit finaliser).
HASH_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
COUNT_SCHEMA = pa.schema([("word", pa.string()), ("count", pa.int64())])





def token_groups(path: Path) -> Iterator[tuple[pa.ListArray, pa.DictionaryArray]]:
    """One prep part, a row group at a time: (token lists, their flattened tokens dictionary-encoded).

    A part written without dictionary pages still reads, Arrow building the dictionary (more slowly).
    """
    try:
        schema = pq.ParquetFile(path).schema
        leaves = [schema.column(i).path for i in range(len(schema)) if schema.column(i).path.startswith("tokens.")]
        if not leaves:
            fail(f"{path} has no column tokens: run prep.py again")
        file = pq.ParquetFile(path, read_dictionary=leaves)
        for group in range(file.num_row_groups):
            column = file.read_row_group(group, columns=["tokens"]).column("tokens")
            if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
                fail(f"{path}: column tokens is {column.type}, not list<string>: run prep.py again")
            for lists in column.chunks:
                flat = pc.list_flatten(lists)
                if not pa.types.is_dictionary(flat.type):
                    flat = pc.dictionary_encode(flat)
                if not (pa.types.is_string(flat.type.value_type) or pa.types.is_large_string(flat.type.value_type)):
                    fail(f"{path}: column tokens is {column.type}, not list<string>: run prep.py again")
                yield lists, flat
    except (pa.ArrowException, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        fail(f"{path} is not a readable prep part ({reason}): run prep.py again")


def word_buckets(words: pa.StringArray, buckets: int) -> np.ndarray:
    """Bucket 0..buckets-1 of every word, the same in every process: a hash of its first 8 and last 8 UTF-8
    bytes and its length (16 bytes gathered per word, not a pass over every byte; words that share all three
    only share a bucket)."""
    if isinstance(words, pa.ChunkedArray):
        words = words.combine_chunks()
    if not len(words):
        return np.empty(0, dtype=np.int64)
    offset_buffer, data_buffer = words.buffers()[1:3]
    offsets = np.frombuffer(offset_buffer, dtype=np.int32)[words.offset:words.offset + len(words) + 1].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    data = np.concatenate([np.zeros(8, np.uint8), data[offsets[0]:offsets[-1]], np.zeros(8, np.uint8)])
    starts, lengths = offsets[:-1] - offsets[0] + 8, np.diff(offsets)
    windows = np.lib.stride_tricks.sliding_window_view(data, 8)
    # 8 bytes from the word's start and 8 ending at its end, as little-endian integers
    head = windows[starts].copy().view(np.uint64).ravel()
    tail = windows[starts + lengths - 8].copy().view(np.uint64).ravel()
    # A word shorter than 8 bytes shares them with its neighbours in the buffer: their bytes are masked out of
    # head (its high bytes) and shifted out of tail (its low bytes), so the hash sees the word alone.
    short = lengths < 8
    bits = lengths[short].astype(np.uint64) * np.uint64(8)
    head[short] &= (np.uint64(1) << bits) - np.uint64(1)
    tail[short] = np.where(bits > 0, tail[short] >> (np.uint64(64) - bits) % np.uint64(64), np.uint64(0))
    hashes = lengths.astype(np.uint64)
    for part in (head, tail):
        hashes ^= part
        # murmur3's 64-bit finaliser: every input bit reaches every output bit, the low ones that % keeps too
        for multiplier in HASH_MIX:
            hashes ^= hashes >> np.uint64(33)
            hashes *= multiplier
        hashes ^= hashes >> np.uint64(33)
    return (hashes % np.uint64(buckets)).astype(np.int64)


def count_words(task: tuple[Path, Path, int]) -> tuple[int, int, int]:
    """Pass-1 worker: the word counts of one prep part, written to `out_path` as `buckets` record batches.

    task: (prep part, out_path, buckets). Batch b holds the part's words of bucket b (`word_buckets`) and their
    counts. Returns (documents, tokens, distinct words of the part).
    """
    path, out_path, buckets = task
    documents = tokens = 0
    tables = []
    for lists, flat in token_groups(path):
        counts = np.bincount(flat.indices.to_numpy(), minlength=len(flat.dictionary))
        used = counts > 0
        tables.append(pa.table({"word": flat.dictionary.cast(pa.string()).filter(used), "count": counts[used]}))
        documents, tokens = documents + len(lists), tokens + len(flat)
    table = merge_counts(tables) if len(tables) > 1 else tables[0] if tables else COUNT_SCHEMA.empty_table()
    table = table.cast(COUNT_SCHEMA).combine_chunks()
    write_buckets(out_path, table, buckets)
    return documents, tokens, len(table)


def merge_counts(tables: list[pa.Table]) -> pa.Table:
    """Counts summed by the first column (a word, or phrases.py's packed pair of ids)."""
    key = tables[0].column_names[0]
    merged = pa.concat_tables(tables).group_by(key).aggregate([("count", "sum")])
    return merged.rename_columns({"count_sum": "count"}).select([key, "count"])


def sum_bucket(task: tuple[int, list[Path], int]) -> tuple[pa.Table, int]:
    """Pass-1 merge worker: bucket `bucket` summed over every part's counts file.

    Returns the words seen min_count times with their counts, and how many distinct words the bucket held.
    """
    bucket, count_files, min_count = task
    totals = bucket_totals(bucket, count_files)
    return totals.filter(pc.greater_equal(totals["count"], min_count)), totals.num_rows


def bucket_totals(bucket: int, count_files: list[Path], schema: pa.Schema = COUNT_SCHEMA) -> pa.Table:
    merged: list[pa.Table] = []
    for path in count_files:
        with pa.OSFile(str(path)) as source:  # reads this bucket's batch only
            merged.append(pa.Table.from_batches([pa.ipc.open_file(source).get_batch(bucket)]))
        if len(merged) > MERGE_EVERY:
            merged = [merge_counts(merged)]
    return merge_counts(merged) if len(merged) > 1 else merged[0] if merged else schema.empty_table()


def write_buckets(out_path: Path, table: pa.Table, buckets: int, bucket: np.ndarray | None = None) -> None:
    """A counts file: `buckets` record batches, batch b the rows whose word hashes to bucket b.

    bucket: each row's bucket, for tables whose first column is not a word (phrases.py's pairs of ids).
    """
    if bucket is None:
        bucket = word_buckets(table.column("word").combine_chunks(), buckets)
    # stable sort of small integers: numpy's radix sort
    order = np.argsort(bucket.astype(np.uint8 if buckets <= 256 else np.int64), kind="stable")
    key, count = (column.take(order).combine_chunks() for column in table.columns)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=buckets))])
    with pa.OSFile(str(out_path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        for b in range(buckets):  # one batch per bucket, empty ones too: batch b is bucket b
            size = int(bounds[b + 1] - bounds[b])
            writer.write_batch(pa.record_batch([key.slice(bounds[b], size), count.slice(bounds[b], size)],
                                               schema=table.schema))


@functools.lru_cache(maxsize=1)
def read_vocabulary_file(path: str) -> tuple[pa.Array, np.ndarray | None]:
    """The words to look up from the Arrow file `path` (unique per run), read once per process, and the id of
    each when the file has an id column (a lemmatized vocabulary: the forms of its keys); None: the position."""
    with pa.OSFile(path) as source:
        table = pa.ipc.open_file(source).read_all()
    ids = table.column("id").to_numpy() if "id" in table.column_names else None
    return table.column("word").combine_chunks(), ids


def group_ids(flat: pa.DictionaryArray, words: pa.Array, form_ids: np.ndarray | None) -> np.ndarray:
    """The id of every token of a group (`token_groups`), -1 for words outside the vocabulary (`_vocabulary`)."""
    # Look up each distinct word once, then gather.
    word_ids = pc.fill_null(pc.index_in(flat.dictionary.cast(pa.string()), value_set=words), -1)
    if form_ids is not None:  # a form's position in the file -> its key's id
        word_ids = pa.array(np.where(word_ids.to_numpy() >= 0, form_ids[word_ids.to_numpy()], -1))
    return word_ids.to_numpy()[flat.indices.to_numpy()]


def write_ids_part(index: int, out_dir: Path, groups: Iterator[tuple[np.ndarray, np.ndarray, int]]) -> dict:
    """`batch-<index>.parquet` in out_dir from groups of (ids, -1 for a word left out; the document of each
    token, 0-based in the group, in order; documents in the group): the ids kept, empty documents dropped."""
    figures = {"index": index, "tokens": 0, "documents": 0, "ids": 0}
    writer = None
    try:
        for ids, parents, documents in groups:
            known = ids >= 0
            # Tokens are flattened in document order, so counting the parents of the kept ones gives the offsets.
            lengths = np.bincount(parents[known], minlength=documents)
            lengths = lengths[lengths > 0]
            offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            figures["tokens"] += len(ids)
            figures["documents"] += len(lengths)
            figures["ids"] += int(offsets[-1])
            if not len(lengths):
                continue
            table = pa.table({"ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(ids[known], pa.int32()),
                                                              type=pa.list_(pa.int32()))})
            if writer is None:
                # Dictionary pages do not pay for ids (as many distinct values as the vocabulary): zstd alone
                # writes 2x faster and smaller.
                writer = pq.ParquetWriter(out_dir / f"batch-{index:05d}.parquet", table.schema,
                                          compression="zstd", use_dictionary=False)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return figures
