"""Stage 4: the negative-sampling distribution as an alias table: vocab.json -> unigram_alias.npy.

    python unigram_table.py --power 0.75

Negatives are drawn from count(w)^POWER / sum (word2vec.c's smoothed unigram distribution), through Walker's alias
method (Vose's construction): one int64 entry per word, `alias << 32 | threshold`, so the table is the vocabulary's
size (0.5 MB at text8's 68K words, 20 MB at 2.5M) and stays in cache, where word2vec.c's 1e8-entry table (381 MB)
costs every negative a cache and TLB miss. Every kernel draws a negative from one 64-bit counter draw z
(`w2v/kernels/cpu.py`'s counter_bits, splitmix64) with integer arithmetic only, so numba, torch and Triton agree
bit for bit:

    column = ((z >> 32) * V) >> 32            # the high 32 bits pick a column
    word = column if (z & 0xFFFFFFFF) < threshold[column] else alias[column]

Column j is picked by n_j = ceil((j + 1) 2^32 / V) - ceil(j 2^32 / V) of the 2^32 high values (V does not divide
2^32, so the columns differ by one value), and the build gives each column exactly that weight, so the rounding
of the column choice does not bias the draw: word i is drawn with probability
(n_i threshold_i + sum over columns j aliased to i of n_j (2^32 - threshold_j)) / 2^64, which differs from
count^POWER / sum by at most half of n_j / 2^64 per column that holds word i (2e-15 at text8: 1e-9 of the rarest
word's own share). Every word with a positive count can be drawn (word2vec.c's table drops a word whose share is
under half an entry). A column that holds its own word only has alias = itself.
"""
from __future__ import annotations

import time
from pathlib import Path

import numba
import numpy as np

from w2v import common
from w2v.common import StageReport, at_least, atomic_output, check_flags, fail, load_vocab, parse_config, run

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
POWER = 0.75  # counts are raised to this power (word2vec.c: 0.75)

# What train.py reads, and word2vec.c's 1e8-entry table that this stage wrote before the alias table (refused).
# A draw's low LOW_BITS bits choose within a column, its high bits the column. (Not flags: no comment after them.)
OUTPUT = "unigram_alias.npy"
RETIRED = "unigram_table.npy"
LOW_BITS = 32
LOW_MASK = (1 << LOW_BITS) - 1


def column_weights(vocab_size: int) -> np.ndarray:
    """n_j, int64 [V]: how many of the 2^32 high values of a draw pick column j ((hi * V) >> 32 == j)."""
    edges = (np.arange(vocab_size + 1, dtype=np.int64) * (1 << LOW_BITS) + vocab_size - 1) // vocab_size
    return np.diff(edges)


@numba.njit(cache=True)
def _vose(weights: np.ndarray, capacity: np.ndarray, threshold: np.ndarray, alias: np.ndarray) -> None:
    """Vose's alias construction with unequal columns: word i's weight (float64, in high values: weights sum to
    2^32) starts in column i of capacity[i]; a column whose word is short of its capacity takes the rest from a
    word that has more (its weight goes down by what it gave). threshold[j] gets the share of column j kept by
    word j, scaled to 2^32 and rounded; alias[j] the word that fills the rest (j itself for a full column).
    Sequential and deterministic: the lists are stacks filled in word order."""
    n = weights.shape[0]
    left = weights.copy()
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = n_large = 0
    for i in range(n):
        if left[i] < capacity[i]:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    scale = float(1 << 32)
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        l = large[n_large - 1]
        kept = int(round(left[s] / capacity[s] * scale))
        if kept >= 1 << 32:  # short by less than rounding: a full column
            threshold[s], alias[s] = (1 << 32) - 1, s
        else:
            threshold[s], alias[s] = kept, l
        left[l] -= capacity[s] - left[s]
        if left[l] < capacity[l]:  # l is short now: it moves from the large stack to the small one
            n_large -= 1
            small[n_small] = l
            n_small += 1
    # what is left is full to within float rounding: each column keeps its own word
    for k in range(n_small):
        threshold[small[k]], alias[small[k]] = (1 << 32) - 1, small[k]
    for k in range(n_large):
        threshold[large[k]], alias[large[k]] = (1 << 32) - 1, large[k]


def build_alias(counts: np.ndarray, power: float = POWER) -> np.ndarray:
    """int64 [V]: the alias table of count^power (entry alias << 32 | threshold); one line for no positive count."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    weights[np.asarray(counts) <= 0] = 0.0
    total = weights.sum()
    if len(weights) == 0 or not total > 0:
        fail("vocab.json has no word with a positive count: run convert_to_int.py again")
    threshold = np.zeros(len(weights), dtype=np.int64)
    alias = np.zeros(len(weights), dtype=np.int64)
    _vose(weights / total * float(1 << LOW_BITS), column_weights(len(weights)).astype(np.float64), threshold, alias)
    return alias << LOW_BITS | threshold


def implied_probabilities(table: np.ndarray) -> np.ndarray:
    """float64 [V]: the exact probability with which the draw above picks each word from `table`, the column
    choice's unequal n_j included (each column's two shares)."""
    table = np.asarray(table, dtype=np.int64)
    n = column_weights(len(table))
    threshold, alias = table & LOW_MASK, table >> LOW_BITS
    # float64 products: exact to 1e-16 relative, far below the bound the tests check
    own = n.astype(np.float64) * threshold
    rest = n.astype(np.float64) * ((1 << LOW_BITS) - threshold)
    mass = own + np.bincount(alias, weights=rest, minlength=len(table))
    return mass / float(1 << 64)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, power=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("unigram_table", data_dir)
    _, counts = load_vocab(data_dir, with_words=False)
    started = time.perf_counter()
    table = build_alias(counts, cfg.power)
    build_s = time.perf_counter() - started
    with atomic_output(data_dir / OUTPUT, needed_bytes=table.nbytes) as temp:
        # Through a file object: np.save would append ".npy" to the temporary name.
        with open(temp, "wb") as file:
            np.save(file, table)
    return report.finish(vocab_size=len(counts), words_drawn=int(np.count_nonzero(np.asarray(counts) > 0)),
                         table_mb=round(table.nbytes / 2**20, 2), build_s=round(build_s, 3))


if __name__ == "__main__":
    run(main)
