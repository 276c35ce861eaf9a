"""The kept-stream layout of the pair shards, shared by their writer (pairs_dataset.py) and their one reader
(w2v/shards.py, whose docstring describes the layout): the columns, the reach of each kept token and the units of
a shard. Imports neither torch nor a stage script, so the writer stays light."""
from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from w2v.pairs_meta import draw_seed

READ_COLUMNS = ["id", "window"]
SCHEMA = pa.schema([pa.field("id", pa.int32(), nullable=False), pa.field("window", pa.uint8(), nullable=False)])
WINDOW_BITS = 0x3F  # the window b a token drew, in its `window` byte
DOC_START = 0x80  # set on the first kept token of a document


UNIT_BLOCK = 8  # a shuffled unit's windows are read in blocks of this many (in text order), the blocks shuffled


@numba.njit(nogil=True, cache=True)
def _reach_pass(code, begin, end, windows, sizes):
    """The one walk over a kept-stream slice that finds each target's reach (see `stream_windows`): with a
    non-empty `windows`, packs the non-empty windows of targets begin..end-1 there and returns their count; with a
    non-empty `sizes`, writes sizes[i - begin] = the pairs of target i (0 for an empty window) and returns their
    sum. The next document's first row is found by a forward scan done once per document."""
    n = len(code)
    pack, count_sizes = len(windows) > 0, len(sizes) > 0
    # the document's first row at or before begin (or the slice's start): from up to 63 rows back
    doc_first = 0
    for i in range(max(0, begin - 63), begin):
        if code[i] & 0x80:
            doc_first = i
    following = begin  # the first row after the current one that starts a document (n: none)
    count = 0
    for i in range(begin, end):
        c = code[i]
        if c & 0x80:
            doc_first = i
        if following <= i:
            following = i + 1
            while following < n and not code[following] & 0x80:
                following += 1
        b = np.int64(c & 0x3F)
        lo = min(b, i - doc_first)
        hi = min(b, following - 1 - i)
        if count_sizes:
            sizes[i - begin] = lo + hi
            count += lo + hi
        elif lo + hi:
            windows[count] = (np.int64(i) << 16) | (lo << 8) | hi
            count += 1
    return count


@numba.njit(nogil=True, cache=True)
def stream_windows(code, begin, end):
    """The windows of targets begin..end-1 of a kept-stream slice whose `window` bytes are `code`, one int64 per
    target with a non-empty window, in stream order: row << 16 | left << 8 | right. Left reach: the tokens before
    the target, up to its b, back to its document's first (a token with DOC_START) or the slice's start; right
    reach: up to b after it, before the next document's first or the slice's end. `window_fields` unpacks them."""
    windows = np.empty(max(end - begin, 1), dtype=np.int64)
    count = _reach_pass(code, begin, end, windows, np.empty(0, dtype=np.uint8))
    return windows[:count]


@numba.njit(nogil=True, cache=True)
def stream_window_sizes(code, begin, end, sizes):
    """Pairs of each target begin..end-1 (its left + right reach, as `stream_windows` finds them; 0 for an empty
    window) into sizes[0:end - begin] (uint8: at most 2 x 63); returns their sum. No packed windows are made."""
    return _reach_pass(code, begin, end, np.empty(0, dtype=np.int64), sizes)


@numba.njit(nogil=True, cache=True)
def keep_tokens(ids, doc, uniforms, keep_prob, last_doc, kept_ids, kept_code):
    """Sub-sampling of one slice of the id stream, in one pass: token i is kept when uniforms[i] < keep_prob[ids[i]]
    (all tokens when `uniforms` is empty). Kept ids go to kept_ids, and kept_code gets DOC_START for a kept token
    whose document differs from the previous kept token's (`last_doc`: the document of the last token kept before
    this slice, -1 for none), else 0. Returns the number kept and the document of the last token kept (`last_doc`
    when none was)."""
    sample = len(uniforms) > 0
    k = 0
    for i in range(len(ids)):
        if sample and not uniforms[i] < keep_prob[ids[i]]:
            continue
        kept_ids[k] = ids[i]
        kept_code[k] = DOC_START if doc[i] != last_doc else 0
        last_doc = doc[i]
        k += 1
    return k, last_doc


@numba.njit(nogil=True, cache=True)
def add_windows(code, uniforms, window):
    """code[i] |= the window b drawn from uniforms[i]: 1 + floor(uniforms[i] * window), uniform in 1..window (with
    no uniforms, b = window for every token)."""
    for i in range(len(code)):
        code[i] |= 1 + np.int64(uniforms[i] * window) if len(uniforms) else window


@numba.njit(nogil=True, cache=True)
def first_reaching(sizes, target):
    """The first index at which the running sum of `sizes` reaches `target`, and that sum (len(sizes) and the total
    when it never does)."""
    total = 0
    for i in range(len(sizes)):
        total += sizes[i]
        if total >= target:
            return i, total
    return len(sizes), total


@numba.njit(nogil=True, cache=True)
def strided_unit_pairs(windows, units):
    """Pairs of each of `units` strided units of packed windows (unit u: windows u, u + units, ...), and their
    total, in one pass and no temporary array."""
    pairs = np.zeros(units, dtype=np.int64)
    for j in range(len(windows)):
        w = windows[j]
        pairs[j % units] += ((w >> 8) & 0xFF) + (w & 0xFF)
    return pairs


@numba.njit(nogil=True, cache=True)
def total_pairs(windows):
    total = 0
    for j in range(len(windows)):
        total += ((windows[j] >> 8) & 0xFF) + (windows[j] & 0xFF)
    return total


def window_fields(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, left, right) of packed windows (`stream_windows`)."""
    return windows >> 16, (windows >> 8) & 0xFF, windows & 0xFF


def window_sizes(windows: np.ndarray) -> np.ndarray:
    """Pairs of each packed window: left + right reach."""
    return ((windows >> 8) & 0xFF) + (windows & 0xFF)


def shard_units(sizes: np.ndarray, row_group_pairs: int, shuffle: bool) -> list:
    """The units of a shard whose windows (text order) have `sizes` pairs: for each unit, the windows it holds (a
    slice, or a strided slice when shuffled). See the module docstring."""
    n, pairs = len(sizes), int(np.sum(sizes, dtype=np.int64))
    if n == 0:
        return []
    row_group_pairs = max(1, int(row_group_pairs))
    if shuffle:
        units = max(1, min(n, -(-pairs // row_group_pairs)))
        return [slice(u, n, units) for u in range(units)]
    # The window that holds pair k * row_group_pairs - 1 (or ends there) ends unit k - 1.
    ends = np.cumsum(sizes, dtype=np.int64)
    last = np.unique(np.searchsorted(ends, np.arange(row_group_pairs, pairs, row_group_pairs), "left"))
    bounds = [0, *(last + 1).tolist()]
    if bounds[-1] != n:
        bounds.append(n)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def unit_pairs(sizes: np.ndarray, units: list) -> list[int]:
    """Pairs of each unit of `shard_units`."""
    return [int(np.sum(sizes[unit], dtype=np.int64)) for unit in units]


def unit_order(seed: int, draw: int, part: int, unit: int, n: int) -> np.ndarray:
    """The order in which a shuffled unit's n windows are read (their indices in the unit, in reading order): blocks
    of UNIT_BLOCK consecutive windows of the unit (each a stretch of UNIT_BLOCK x units windows of the shard), in an
    order drawn for the unit alone (seeded by the draw's seed, the shard's place in its draw and the unit)."""
    sequence = np.random.SeedSequence(draw_seed(seed, draw), spawn_key=(2, part, unit))
    blocks = np.random.default_rng(sequence).permutation(-(-n // UNIT_BLOCK))
    starts = blocks * UNIT_BLOCK
    lengths = np.minimum(starts + UNIT_BLOCK, n) - starts
    # reading position k of block j (at its offset o) is window starts[j] + o
    shift = starts - (np.cumsum(lengths) - lengths)
    return np.repeat(shift, lengths) + np.arange(n)
