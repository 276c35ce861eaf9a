"""Stage 4: the negative-sampling table, as word2vec.c builds it: vocab.json -> unigram_table.npy.

    python unigram_table.py --table-size 100000000 --power 0.75

An int32 array of TABLE_SIZE word ids in which word w fills a share proportional to count(w)^POWER, so a uniform
index into it draws a negative from the smoothed unigram distribution. Built from cumulative boundaries rounded to
whole entries, so each word holds its exact share to within one entry (a word whose share is under half an entry
may get none, as in word2vec.c).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from w2v import common
from w2v.common import StageReport, at_least, atomic_output, check_flags, fail, load_vocab, parse_config, run

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
TABLE_SIZE = 100_000_000  # entries of the table (word2vec.c: 1e8)
POWER = 0.75  # counts are raised to this power (word2vec.c: 0.75)


def table_lengths(counts: np.ndarray, table_size: int, power: float) -> np.ndarray:
    """Entries of each word: differences of the rounded cumulative boundaries table_size * cumsum(c^power) / sum."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    cumulative = np.cumsum(weights)
    if len(cumulative) == 0 or not cumulative[-1] > 0:
        fail("vocab.json has no word with a positive count: run convert_to_int.py again")
    boundaries = np.rint(cumulative / cumulative[-1] * table_size).astype(np.int64)
    boundaries[-1] = table_size
    return np.diff(boundaries, prepend=0)


def build_table(counts: np.ndarray, table_size: int, power: float) -> np.ndarray:
    """int32 table of `table_size` word ids, word w filling a share proportional to count(w)^power."""
    lengths = table_lengths(counts, table_size, power)
    return np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, table_size=at_least(1), power=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("unigram_table", data_dir)
    _, counts = load_vocab(data_dir, with_words=False)
    started = time.perf_counter()
    lengths = table_lengths(counts, cfg.table_size, cfg.power)
    table = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    build_s = time.perf_counter() - started
    with atomic_output(data_dir / "unigram_table.npy", needed_bytes=table.nbytes) as temp:
        # Through a file object: np.save would append ".npy" to the temporary name.
        with open(temp, "wb") as file:
            np.save(file, table)
    return report.finish(table_size=len(table), vocab_size=len(counts),
                         words_in_table=int(np.count_nonzero(lengths)),
                         table_mb=round(table.nbytes / 2**20, 1), build_s=round(build_s, 2))


if __name__ == "__main__":
    run(main)
