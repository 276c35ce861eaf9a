"""Stage 3: the draws of skip-gram (target, context) pairs, written as the kept stream they come from.

    python pairs_dataset.py --window 5 --sample 1e-4
    python pairs_dataset.py --draws 1        # one pair set for every epoch: 1/5 of the disk, lower quality
    python pairs_dataset.py --no-shuffle     # text order, as word2vec.c and gensim train (see Order)

Reads DATA_DIR/ids/part-*.parquet (column `ids: list<int32>`, one row per document) and DATA_DIR/vocab.json, and
writes DATA_DIR/pairs/shard-NNNNN.parquet plus DATA_DIR/pairs/meta.json (read and written by pairs_meta.py).

Layout (meta.json "layout" "kept-stream-1"; w2v/shards.py describes it and is its one reader): no pair is
written. A draw's pairs are fixed by its kept stream (the ids left after sub-sampling), the window b each kept
token drew and the documents' edges, so a shard is a slice of that stream: the non-nullable columns `id` (int32)
and `window` (uint8 in a parquet dictionary: b in bits 0-5, bit 7 on a document's first kept token), with up to
WINDOW rows of halo on either side. At most 5 bytes a kept token before compression, for the WINDOW + 1 pairs a
kept token makes on average (bytes measured: bench/RESULTS.md, "The pairs stage in one pass"). Writing is
sub-sampling and one draw per kept token, in one numba pass each; readers rebuild the windows (w2v/shards.py).

Order: a target occurrence's pairs, (t, c_1) ... (t, c_k) in window order (offsets -b..-1, 1..b), are its
"window"; the reader hands windows whole (CBOW needs them; a skip-gram kernel reads the target's output rows once
per window). A shard ends with the window that reaches PAIRS_PER_SHARD pairs, so no shard edge cuts a window.
Its windows are dealt into units of ~ROW_GROUP_PAIRS pairs (unit u of U: windows u, u+U, ... in text order), each
read in an order of its own (a permutation seeded by the draw, the shard and the unit): the reader's unit of work,
a sample spread over the whole shard, shuffled. A window is cut only by a batch's edge. Retired layouts are refused
with one line by train.py and dataset.py (rebuild with this script): the pair order (every pair shuffled alone) and
the window shards (pairs in columns target, context, window_start, each shard's windows shuffled as one).
SHUFFLE (--no-shuffle turns it off): False makes each unit a run of consecutive windows read in text order, and
has dataset.py read each draw's shards in file order, so training runs through the corpus in text order as
word2vec.c and gensim do. The shuffled default scores higher on most sets; text order trades some of that for others
(CBOW on text8: bench/LOG.md, "Text order").

Draws: word2vec.c and gensim redraw the sub-sampling and the windows every epoch, so each epoch trains on other
pairs; reading one fixed pair set every epoch costs quality (text8, 5 epochs: 34.0% analogy accuracy against
38.2% with a draw per epoch, bench/RESULTS.md). So the stage writes DRAWS independent pair sets, each with its
own keep draws, windows and shard shuffles; train.py's epoch e reads draw e % DRAWS. Draws share nothing, so
NUM_PROC worker processes write one draw each at a time (each re-reads the ids parts: memory is that of
NUM_PROC draws, whatever DRAWS). Disk and this stage's work grow DRAWS-fold; --draws 1 saves them at that cost
in quality. Shards are numbered on across draws (draw 1 starts where draw 0 ended) and no shard mixes two draws.

What is generated follows word2vec.c (and gensim):
- Sub-sampling of frequent words before the windows are taken: word w (count c, T tokens in the id stream,
  s = SAMPLE) is kept with probability min(1, (sqrt(c / (s*T)) + 1) * (s*T) / c); the windows then span the
  retained words, so dropping "the" brings farther words into reach.
- Dynamic window: every retained token draws its own window b uniformly in 1..WINDOW (word2vec.c's
  `window - rand % window`) and is the target of a pair with every retained token of its document at distance
  1..b. Pairs never cross a document boundary.

Memory stays bounded whatever the document sizes (text8 is one 17M-word document): the id stream is read in
slices of CHUNK_TOKENS tokens, and the writer holds one shard's slice of the kept stream (6 bytes a kept token:
its id, its window byte and its window's pairs). `iter_pairs` / `window_pairs`, the pair
generation of the earlier layout, stay as the reference the tests compare every draw with: same pairs, same
windows.

Randomness (keep draws, window draws, unit orders) comes from numpy Generators spawned from the draw's seed
(`draw_seed`: SEED itself for draw 0, so draw 0 is what a one-draw run writes; SeedSequence entropy [SEED, d] for
draw d > 0): the keeps and the windows are drawn strictly in stream order (the same draws as `iter_pairs`, so the
same pairs as the earlier layout), and each unit's order from its own child (spawn key (2, shard, unit)), so the
shards depend on SEED, the draw and the inputs only: not on CHUNK_TOKENS, nor on how the parquet parts are split
into batches, nor on DRAWS.

meta.json (`pairs_meta.PairsMeta`): "layout" the shard layout, "shards" lists every shard of every draw ({"file",
"pairs", "draw", "part": its number in the draw, "tokens": its rows, "targets": its target rows [first, end),
"units": the pairs of each unit}),
"draws" their number, "order" the shard order ("windows"), "shuffle" false for text order,
"pairs_per_draw" and "retained_per_draw" the pairs and retained tokens of each draw; "pairs" and "bytes" count
all shards (the sum of "pairs_per_draw"); "tokens" is the id stream's length (the same for every draw) and
"retained_tokens" draw 0's retained tokens. The stage's figures (stats/pairs_dataset.json): pairs, bytes_per_pair
pairs_per_s, cpu_s and cpu_ns_per_pair (this process and its workers, imports left out) over the draws this run
wrote, and planned_pairs_per_draw (the disk plan's figure).

Disk plan: before writing, the stage prints what the shards will take (expected pairs of a draw x the bytes per pair
of the codec, `plan_bytes_per_pair`: its bytes per kept token over the WINDOW + 1 pairs a kept token makes, x the
draws written, plus the old pairs/, which stays until the new
one is renamed in unless --delete-old-first) against the free space of DATA_DIR's filesystem, and stops with one
line naming the flags that shrink it when they do not fit. The expected pairs are word2vec's: each retained token
(counts x keep probabilities) pairs with 2b others, b uniform in 1..WINDOW, so (WINDOW + 1) per retained token;
document edges, which only remove pairs, are ignored.

Adding draws (--only-draws 2,3): only those draws are written, into the existing pairs/ (made if missing, its
settings checked against the flags, `pairs_meta.check_settings`), and meta.json then lists them beside the draws
already there; a draw not present has null in "pairs_per_draw" and "retained_per_draw". Every draw's shards are
byte-identical to a full run's, and draws added in increasing order get a full run's file names and meta.json too.
This is the building block of rolling draws: train.py --rolling-draws writes the next epoch's draw in the background
while one trains (this script with --only-draws) and deletes each draw after its last epoch
(`pairs_meta.remove_draws`), so two draws are on disk at once; --plan-draws 2 makes the disk plan of the first draw
count both. A draw's half-written shards live in pairs/.draws.tmp-PID until renamed in; such a folder whose process
is gone (killed) is removed by the next --only-draws run."""
from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from w2v import common
from w2v.common import (StageReport, at_least, atomic_output, check_flags, fail, load_vocab, parse_config, parts,
                    run)
from w2v.draws import expected_pairs_bound, expected_pairs_per_draw, keep_probabilities, staging_dir  # noqa: F401
from w2v.workers import WorkerPool, default_num_proc
from w2v.pairs_meta import (LAYOUT, ORDER, PairsMeta, build_meta, check_settings, draw_seed, parse_draws,
                            shard_number)
from w2v.layout import (SCHEMA, add_windows, first_reaching, keep_tokens, shard_units, stream_window_sizes,
                        unit_pairs)

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
WINDOW = 5  # largest distance between a target and its context words
SAMPLE = 1e-4  # sub-sampling threshold of frequent words (word2vec.c -sample); 0 turns sub-sampling off
SEED = common.SEED  # seed of the keep draws, window draws and shard shuffles (the pipeline's, set in w2v/common.py)
SHUFFLE = True  # shuffle each shard's windows and read the shards in a shuffled order; False: text order
DRAWS = 5  # independent pair sets (sub-sampling, windows, shuffle redrawn); epoch e trains on draw e mod DRAWS
DYNAMIC_WINDOW = True  # each target draws its window in 1..WINDOW (word2vec.c); off: always WINDOW
PAIRS_PER_SHARD = 50_000_000  # pairs per shard (whole windows: up to 2 x WINDOW more; the last one is smaller)
ROW_GROUP_PAIRS = 1_000_000  # pairs per unit of a shard: what the reader rebuilds at once and splits among workers
COMPRESSION = "lz4"  # parquet codec of the shards: lz4, zstd, snappy, gzip, brotli or none
CHUNK_TOKENS = 1_000_000  # tokens of the id stream read and sub-sampled at once
NUM_PROC = default_num_proc()  # draws written at once, one worker process each (1 = all in this process)
ONLY_DRAWS = ""  # write only these draws (e.g. 2,3) and add them to pairs/ and its meta.json; empty: all DRAWS anew
DELETE_OLD_FIRST = False  # delete the previous pairs/ before writing (less disk at peak; a failure leaves none)
PLAN_DRAWS = 0  # draws the disk plan counts (train.py --rolling-draws keeps 2 on disk at once); 0: the draws written
DISK_CHECK = True  # stop before writing when the planned pairs do not fit the free space (--no-disk-check: write)

# Documents per parquet read; a batch is cut into CHUNK_TOKENS-token slices, so only huge documents make it big.
READ_ROWS = 1024
CODECS = ("lz4", "zstd", "snappy", "gzip", "brotli", "none")
# Shard bytes per kept token assumed by the disk plan (ids and window bytes; a shard is the kept stream), ~8% above
# the largest measured: the billion-token corpus's draw (2.35M words, ids compress less than a small vocabulary's):
# lz4 3.89 (text8 3.16, the Russian corpus 3.69), zstd 2.90 before the window column had its dictionary (text8 2.27,
# the Russian corpus 2.47 with it; bench/RESULTS.md, "The pairs stage in one pass"). 5.1 is the uncompressed size at
# most (5 bytes a row and the halos). snappy, gzip and brotli are unmeasured: counted as uncompressed. Per pair:
# divided by the expected pairs a kept token makes (WINDOW + 1 with the dynamic window, 2 x WINDOW without), see
# `plan_bytes_per_pair`.
PLAN_BYTES_PER_TOKEN = {"none": 5.1, "lz4": 4.2, "snappy": 5.1, "zstd": 3.1, "gzip": 5.1, "brotli": 5.1}
# Flags that shrink the pairs, named when they do not fit.
SHRINK_FLAGS = ("--draws", "--compression zstd", "--sample", "--delete-old-first",
                "convert_to_int.py --min-count/--max-vocab")

def plan_bytes_per_pair(compression: str, window: int = WINDOW, dynamic_window: bool = True) -> float:
    """Shard bytes per pair the disk plan assumes for a codec: its bytes per kept token over the pairs a kept token
    makes away from document edges."""
    pairs_per_token = window + 1 if dynamic_window else 2 * window
    return round(PLAN_BYTES_PER_TOKEN[compression] / pairs_per_token, 4)


def disk_plan(pairs_per_draw: float, compression: str, draws_written: int, old_bytes: int, free_bytes: int,
              window: int = WINDOW, dynamic_window: bool = True) -> dict:
    """What the shards will take on disk at the peak of the stage against the free space, in bytes.

    draws_written: draws this run writes; old_bytes: shards of an earlier pairs/ still on disk until the new one
    replaces it (0 when deleted first or when draws are added to it).
    """
    bytes_per_pair = plan_bytes_per_pair(compression, window, dynamic_window)
    new_bytes = pairs_per_draw * bytes_per_pair * draws_written
    return {"pairs_per_draw": pairs_per_draw, "bytes_per_pair": bytes_per_pair, "draws": draws_written,
            "new_bytes": new_bytes, "old_bytes": old_bytes, "need_bytes": new_bytes + old_bytes,
            "free_bytes": free_bytes, "fits": new_bytes + old_bytes <= free_bytes}


def describe_plan(plan: dict, compression: str, where: Path) -> str:
    """One line: pairs per draw x bytes per pair x draws (+ the old pairs/) against the free space of `where`."""
    gb = 1e9
    old = f" + {plan['old_bytes'] / gb:,.1f} GB of the old pairs/ kept until replaced" if plan["old_bytes"] else ""
    return (f"pairs need ~{plan['need_bytes'] / gb:,.1f} GB on disk: {plan['draws']} draw(s) x "
            f"~{plan['pairs_per_draw'] / 1e6:,.1f}M pairs (expected, edges ignored) x "
            f"{plan['bytes_per_pair']:g} bytes/pair ({compression}){old}; "
            f"{plan['free_bytes'] / gb:,.1f} GB free on {where}")


def check_disk(plan: dict, compression: str, where: Path) -> None:
    """Print the plan; stop with one line naming the flags that shrink the pairs when they cannot fit."""
    line = describe_plan(plan, compression, where)
    if not plan["fits"]:
        fail(f"{line}: not enough; shrink it with {', '.join(SHRINK_FLAGS)} (or --no-disk-check to try anyway)")
    print(f"disk plan: {line}", flush=True)


def directory_bytes(directory: Path) -> int:
    """Bytes of the files directly in `directory` (0 when it does not exist)."""
    directory = Path(directory)
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file()) if directory.is_dir() else 0



def subsample(ids: np.ndarray, keep_prob: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Mask of the tokens kept by sub-sampling (one uniform draw per token, in order); all True when rng is None."""
    if rng is None:
        return np.ones(len(ids), dtype=bool)
    return rng.random(len(ids)) < keep_prob[ids]


def draw_windows(n: int, window: int, rng: np.random.Generator | None) -> np.ndarray:
    """Reduced window of each of n targets, uniform in 1..window; all `window` when rng is None (dynamic off)."""
    if rng is None:
        return np.full(n, window, dtype=np.int8)
    # From uniform doubles rather than rng.integers: doubles are drawn one per value, so drawing in pieces gives
    # the same values as drawing at once, which keeps the output independent of chunk sizes.
    return (1 + (rng.random(n) * window).astype(np.int8)).astype(np.int8)


def window_pairs(ids: np.ndarray, doc_index: np.ndarray, windows: np.ndarray, lo: int = 0, hi: int | None = None,
                 window: int | None = None, with_sizes: bool = False) -> tuple[np.ndarray, ...]:
    """(targets, contexts) for the targets at positions lo..hi-1 of the token arrays; with_sizes: also the
    number of pairs of each of those targets (its window's size, 0 for a target alone in its document).

    Token i pairs with every token j != i with |i - j| <= windows[i] and doc_index[j] == doc_index[i]
    (doc_index must be non-decreasing); tokens outside lo..hi-1 serve as context only. Pairs come ordered by
    target position, then by offset -window..-1, 1..window. `window` is the largest window (default
    windows.max()). Vectorised over an (n, 2*window) matrix: one column per offset.
    """
    ids = np.asarray(ids)
    doc_index = np.asarray(doc_index)
    n = len(ids)
    hi = n if hi is None else hi
    empty = (np.empty(0, dtype=ids.dtype), np.empty(0, dtype=ids.dtype))
    if hi <= lo:
        return (*empty, np.empty(0, dtype=np.int64)) if with_sizes else empty
    window = int(windows.max()) if window is None else int(window)
    if window <= 0:
        return (*empty, np.zeros(hi - lo, dtype=np.int64)) if with_sizes else empty
    # Room to the document's edges (or the array's), capped at window: the window may not cross either.
    position = np.arange(lo, hi)
    if doc_index[0] == doc_index[-1]:  # one document (doc_index never decreases): only the array's edges
        first, last = 0, n - 1
    else:
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        np.not_equal(doc_index[1:], doc_index[:-1], out=starts[1:])
        everywhere = np.arange(n)
        first = np.maximum.accumulate(np.where(starts, everywhere, 0))[lo:hi]
        ends = np.empty(n, dtype=bool)
        ends[-1] = True
        ends[:-1] = starts[1:]
        last = np.minimum.accumulate(np.where(ends, everywhere, n)[::-1])[::-1][lo:hi]
        del starts, ends, everywhere
    reach = np.minimum(windows[lo:hi], window).astype(np.int8)
    left = np.minimum(np.minimum(position - first, window).astype(np.int8), reach)
    right = np.minimum(np.minimum(last - position, window).astype(np.int8), reach)
    del position, first, last

    rows = hi - lo
    contexts = np.empty((rows, 2 * window), dtype=ids.dtype)
    offsets = [d for d in range(-window, window + 1) if d != 0]
    for column, d in enumerate(offsets):
        # rows whose neighbour at offset d lies inside the array; the others are masked out below
        r0, r1 = max(0, -d - lo), min(rows, n - d - lo)
        if r1 > r0:
            contexts[r0:r1, column] = ids[lo + r0 + d:lo + r1 + d]
    column = np.arange(2 * window, dtype=np.int8)
    valid = (column >= window - left[:, None]) & (column < window + right[:, None])
    sizes = left.astype(np.int64) + right
    targets = np.repeat(ids[lo:hi], sizes)
    return (targets, contexts[valid], sizes) if with_sizes else (targets, contexts[valid])


def draw_generators(seed: int | list[int], sample: float, dynamic_window: bool
                    ) -> tuple[np.random.Generator | None, np.random.Generator | None]:
    """The keep and window Generators of a draw (the first two children of SeedSequence(seed)); None for a draw
    that does not sub-sample or has a fixed window. iter_pairs and iter_kept draw from these, in stream order."""
    keep_ss, window_ss, _ = np.random.SeedSequence(seed).spawn(3)
    return (np.random.default_rng(keep_ss) if sample > 0 else None,
            np.random.default_rng(window_ss) if dynamic_window else None)


def iter_pairs(slices: Iterable[tuple[np.ndarray, np.ndarray]], keep_prob: np.ndarray, window: int, sample: float,
               dynamic_window: bool, chunk_tokens: int, seed: int | list[int],
               counters: dict | None = None, with_sizes: bool = False) -> Iterator[tuple[np.ndarray, ...]]:
    """Pairs of a token stream given as (ids, doc_index) slices of any size, in stream order, chunk by chunk.

    Yields (targets, contexts), or with_sizes (targets, contexts, window sizes) as `window_pairs` gives them.

    Sub-samples (when sample > 0), draws windows (when dynamic_window), and cuts the retained stream into chunks
    of chunk_tokens targets with a `window`-token halo on either side, so the pairs are exactly those of one
    chunk. doc_index must be non-decreasing across the whole stream. counters gets "tokens" and "retained".
    seed: SeedSequence entropy (`draw_seed`); its first two spawned children draw the keeps and the windows.
    """
    keep_rng, window_rng = draw_generators(seed, sample, dynamic_window)
    counters = {} if counters is None else counters
    counters.setdefault("tokens", 0)
    counters.setdefault("retained", 0)
    chunk_tokens = max(1, int(chunk_tokens))
    buf_ids = np.empty(0, dtype=np.int32)
    buf_doc = np.empty(0, dtype=np.int64)
    buf_win = np.empty(0, dtype=np.int8)
    start = 0  # first position of the buffer whose pairs are not out yet; up to `window` tokens precede it
    for raw_ids, raw_doc in slices:
        counters["tokens"] += len(raw_ids)
        keep = subsample(raw_ids, keep_prob, keep_rng)
        ids, doc = raw_ids[keep], raw_doc[keep]
        counters["retained"] += len(ids)
        buf_ids = np.concatenate([buf_ids, ids])
        buf_doc = np.concatenate([buf_doc, doc])
        buf_win = np.concatenate([buf_win, draw_windows(len(ids), window, window_rng)])
        while len(buf_ids) - start >= chunk_tokens + window:
            a, b = max(0, start - window), start + chunk_tokens + window
            yield window_pairs(buf_ids[a:b], buf_doc[a:b], buf_win[a:b], start - a, start - a + chunk_tokens, window,
                               with_sizes)
            cut = max(0, start + chunk_tokens - window)
            buf_ids, buf_doc, buf_win = buf_ids[cut:], buf_doc[cut:], buf_win[cut:]
            start = start + chunk_tokens - cut
    if len(buf_ids) > start:
        yield window_pairs(buf_ids, buf_doc, buf_win, start, len(buf_ids), window, with_sizes)


def iter_kept(slices: Iterable[tuple[np.ndarray, np.ndarray]], keep_prob: np.ndarray, window: int, sample: float,
              dynamic_window: bool, seed: int | list[int], counters: dict | None = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The kept stream of a token stream given as (ids, doc_index) slices: (ids int32, window bytes uint8) pieces,
    in order. A window byte is the token's drawn window b (bits 0-5, `draw_windows`) with DOC_START (bit 7) on a
    document's first kept token. The same draws as `iter_pairs` (keeps, then windows, each Generator consumed in
    stream order), so the windows rebuilt from it are iter_pairs' windows; no pair is made here."""
    keep_rng, window_rng = draw_generators(seed, sample, dynamic_window)
    counters = {} if counters is None else counters
    counters.setdefault("tokens", 0)
    counters.setdefault("retained", 0)
    no_draws = np.empty(0, dtype=np.float64)
    last_doc = -1  # document indices are >= 0
    for raw_ids, raw_doc in slices:
        counters["tokens"] += len(raw_ids)
        # The uniforms `subsample` and `draw_windows` draw, used in one pass each (layout.keep_tokens, add_windows).
        uniforms = keep_rng.random(len(raw_ids)) if keep_rng is not None else no_draws
        ids = np.empty(len(raw_ids), dtype=np.int32)
        code = np.empty(len(raw_ids), dtype=np.uint8)
        kept, last_doc = keep_tokens(raw_ids, raw_doc, uniforms, keep_prob, last_doc, ids, code)
        counters["retained"] += kept
        if not kept:
            continue
        ids, code = ids[:kept], code[:kept]
        add_windows(code, window_rng.random(kept) if window_rng is not None else no_draws, window)
        yield ids, code


class StreamShardWriter:
    """Collects a draw's kept stream; every run of whole windows that reaches `pairs_per_shard` pairs is written as
    one parquet shard of that stream slice with a halo of `window` rows on either side (layout: w2v/shards.py).

    Shards are named `prefix` + a number counting from 0; each is listed in `shards` with its pairs, `draw`,
    `part` (its number in the draw), `tokens` (rows), `targets` ([first, end) rows) and `units` (pairs per unit,
    `shards.shard_units`). Memory: the current shard's slice of the stream (6 bytes a kept token: its id, its
    window byte and its window's pairs)."""

    def __init__(self, directory: Path, pairs_per_shard: int, row_group_pairs: int, compression: str, window: int,
                 prefix: str = "shard-", draw: int = 0, shuffle: bool = True):
        self.directory, self.pairs_per_shard, self.prefix = Path(directory), max(1, int(pairs_per_shard)), prefix
        self.row_group_pairs, self.window, self.draw = max(1, int(row_group_pairs)), int(window), draw
        self.compression = None if compression == "none" else compression
        self.shuffle = shuffle
        # The stream's rows not yet written (and the halo before them), in buffers that grow by doubling: rows
        # 0..filled-1 hold ids and window bytes, rows 0..sized-1 the pairs of their windows too.
        self._ids = np.empty(1 << 16, dtype=np.int32)
        self._code = np.empty(1 << 16, dtype=np.uint8)
        self._sizes = np.empty(1 << 16, dtype=np.uint8)  # a window holds at most 2 x 63 pairs
        self.filled = self.sized = 0
        self.start = 0  # the current shard's first target row; up to `window` rows precede it (its halo)
        self.pending = 0  # pairs of the targets start..len(sizes)-1
        self.shards: list[dict] = []
        self.bytes = 0
        self.pairs = 0

    @property
    def ids(self) -> np.ndarray:
        return self._ids[:self.filled]

    @property
    def code(self) -> np.ndarray:
        return self._code[:self.filled]

    def add(self, ids: np.ndarray, code: np.ndarray) -> None:
        """Append kept tokens (`iter_kept`'s pieces), in stream order; writes every shard that fills."""
        end = self.filled + len(ids)
        if end > len(self._ids):
            size = max(end, 2 * len(self._ids))
            for name in ("_ids", "_code", "_sizes"):
                grown = np.empty(size, dtype=getattr(self, name).dtype)
                grown[:self.filled] = getattr(self, name)[:self.filled]
                setattr(self, name, grown)
        self._ids[self.filled:end] = ids
        self._code[self.filled:end] = code
        self.filled = end
        self._advance(final=False)

    def close(self) -> None:
        """The stream has ended: the rest is the last shard."""
        self._advance(final=True)
        if self.pending:
            self._write(self.start, self.filled)

    def _advance(self, final: bool) -> None:
        # A row's window is known once `window` rows follow it (or the stream has ended).
        sized, limit = self.sized, self.filled if final else self.filled - self.window
        if limit > sized:
            self.pending += int(stream_window_sizes(self.code, sized, limit, self._sizes[sized:limit]))
            self.sized = limit
        while self.pending >= self.pairs_per_shard:
            index, pairs = first_reaching(self._sizes[self.start:self.sized], self.pairs_per_shard)
            last = self.start + int(index)
            self._write(self.start, last + 1)
            self.pending -= int(pairs)
            # keep `window` rows before the next shard's first target (its halo): moved to the buffers' start
            drop = max(0, last + 1 - self.window)
            for buffer in (self._ids, self._code, self._sizes):
                buffer[:self.filled - drop] = buffer[drop:self.filled].copy()
            self.filled, self.sized, self.start = self.filled - drop, self.sized - drop, last + 1 - drop

    def _write(self, first: int, end: int) -> None:
        """Targets first..end-1 (rows of the buffer) as a shard, with their halos."""
        lo, hi = max(0, first - self.window), min(self.filled, end + self.window)
        code = self.code[lo:hi]
        sizes = self._sizes[first:end]
        sizes = sizes[sizes > 0]  # the windows, as `stream_windows` of the shard's rows gives them (tested)
        units = unit_pairs(sizes, shard_units(sizes, self.row_group_pairs, self.shuffle))
        pairs = sum(units)
        if not pairs:
            return
        path = self.directory / f"{self.prefix}{len(self.shards):05d}.parquet"
        table = pa.table([pa.array(self._ids[lo:hi]), pa.array(code)], schema=SCHEMA)
        try:
            # No column statistics (nothing reads them). A dictionary for the window bytes only: parquet stores a
            # uint8 as a 4-byte INT32, which the codec shrinks less than the dictionary's few-bit indices (bytes:
            # bench/RESULTS.md, "The pairs stage in one pass"); ids are too many distinct values for one.
            pq.write_table(table, path, compression=self.compression, use_dictionary=["window"],
                           write_statistics=False, row_group_size=1 << 22)
        except OSError as error:  # a full disk, mostly
            fail(f"cannot write {path}: {error}")
        self.shards.append({"file": path.name, "pairs": pairs, "draw": self.draw, "part": len(self.shards),
                            "tokens": hi - lo, "targets": [first - lo, end - lo], "units": units})
        self.bytes += path.stat().st_size
        self.pairs += pairs


def read_id_slices(files: list[Path], vocab_size: int, slice_tokens: int,
                   progress: tqdm | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids int32, doc_index int64) slices of at most slice_tokens tokens of the ids parts, in order."""
    doc_base = 0
    for path in files:
        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=READ_ROWS, columns=["ids"])
            for batch in batches:
                column = batch.column(0)
                if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) or \
                        not pa.types.is_integer(column.type.value_type):
                    fail(f"{path}: column ids is {column.type}, expected list<int32>: run convert_to_int.py again")
                lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy().astype(np.int64)
                values = column.flatten().to_numpy()
                if len(values) and (values.min() < 0 or values.max() >= vocab_size):
                    fail(f"{path}: ids outside 0..{vocab_size - 1}: run convert_to_int.py again")
                values = values.astype(np.int32, copy=False)
                ends = np.cumsum(lengths)
                begins = ends - lengths
                for a in range(0, len(values), slice_tokens):
                    b = min(a + slice_tokens, len(values))
                    # documents overlapping [a, b) and how many of their tokens fall in it
                    d0, d1 = np.searchsorted(ends, a, "right"), np.searchsorted(begins, b, "left")
                    inside = np.minimum(ends[d0:d1], b) - np.maximum(begins[d0:d1], a)
                    yield values[a:b], np.repeat(np.arange(doc_base + d0, doc_base + d1), inside)
                    if progress is not None:
                        progress.update(b - a)
                doc_base += len(lengths)
        except (OSError, pa.ArrowException) as error:
            fail(f"{path} is unreadable ({str(error).splitlines()[0]}): run convert_to_int.py again")


def write_draw(task: dict) -> dict:
    """Worker: one draw's shards as draw-DDDDD-shard-NNNNN.parquet in task["out_dir"]; its shards and counters.

    task: files, vocab_size, keep_prob, out_dir and the flags (cfg as a dict) and draw. main() renames the shards.
    """
    cfg, draw = task["cfg"], task["draw"]
    seed = draw_seed(cfg["seed"], draw)
    writer = StreamShardWriter(task["out_dir"], cfg["pairs_per_shard"], cfg["row_group_pairs"], cfg["compression"],
                               cfg["window"], prefix=f"draw-{draw:05d}-shard-", draw=draw, shuffle=cfg["shuffle"])
    counters = {"tokens": 0, "retained": 0, "pairs": 0}
    # One bar per draw, on its own line while the draws run side by side.
    with tqdm(total=task["tokens"], unit="tok", unit_scale=True, desc=f"pairs, draw {draw + 1}/{cfg['draws']}",
              position=task["bar"], leave=task["bar"] == 0, dynamic_ncols=True) as progress:
        slices = read_id_slices(task["files"], task["vocab_size"], max(1, cfg["chunk_tokens"]), progress)
        for ids, code in iter_kept(slices, task["keep_prob"], cfg["window"], cfg["sample"], cfg["dynamic_window"],
                                   seed, counters):
            writer.add(ids, code)
            progress.set_postfix(pairs=f"{writer.pairs:,}", refresh=False)
        writer.close()
    counters["pairs"] = writer.pairs
    if counters["pairs"] == 0:
        fail(f"no pairs{f' in draw {draw}' if draw else ''}: {counters['tokens']} tokens, {counters['retained']} "
             f"after sub-sampling, no two in one document (more text, or a smaller --sample?)")
    return {"draw": draw, "shards": writer.shards, "bytes": writer.bytes, **counters}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished worker processes."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def read_pairs_meta(pairs_dir: Path, settings: dict) -> PairsMeta | None:
    """meta.json of an existing pairs/ that draws can be added to; None when there is no pairs/ yet."""
    if not (pairs_dir / "meta.json").exists():
        if pairs_dir.is_dir() and any(pairs_dir.glob("shard-*.parquet")):
            fail(f"{pairs_dir} holds shards but no meta.json: run pairs_dataset.py without --only-draws")
        return None
    meta = PairsMeta.read(pairs_dir)
    check_settings(meta, settings, pairs_dir)
    return meta



def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    # WINDOW at most 63: window_pairs adds windows as int8 (64 breaks it: checked when the limit was set).
    check_flags(cfg, window=at_least(1, 63), sample=at_least(0), seed=at_least(0), draws=at_least(1),
                pairs_per_shard=at_least(1), row_group_pairs=at_least(1), chunk_tokens=at_least(1),
                num_proc=at_least(1), plan_draws=at_least(0))
    data_dir = Path(cfg.data_dir)
    report = StageReport("pairs_dataset", data_dir)
    if cfg.window < 1:
        fail(f"--window must be at least 1, got {cfg.window}")
    if cfg.compression not in CODECS:
        fail(f"--compression must be one of {', '.join(CODECS)}, got {cfg.compression!r}")
    if cfg.draws < 1:
        fail(f"--draws must be at least 1, got {cfg.draws}")
    chosen = parse_draws(cfg.only_draws, cfg.draws)
    adding = bool(cfg.only_draws.strip())
    if adding and cfg.delete_old_first:
        fail("--delete-old-first replaces pairs/ while --only-draws adds draws to it: use one of them")
    files = parts(data_dir / "ids", "convert_to_int.py")
    _, counts = load_vocab(data_dir, with_words=False)  # the words themselves are not needed here
    vocab_size, total = len(counts), int(counts.sum())  # total = tokens in the id stream (vocab_tokens)
    keep_prob = keep_probabilities(counts, cfg.sample, total)
    settings = {"window": cfg.window, "sample": cfg.sample, "seed": cfg.seed, "dynamic_window": cfg.dynamic_window,
                "draws": cfg.draws, "compression": cfg.compression, "row_group_pairs": cfg.row_group_pairs,
                "pairs_per_shard": cfg.pairs_per_shard, "tokens": total, "vocab_size": vocab_size,
                "order": ORDER, "shuffle": cfg.shuffle, "layout": LAYOUT}
    pairs_dir = data_dir / "pairs"
    existing = read_pairs_meta(pairs_dir, settings) if adding else None
    per_draw: dict[int, dict] = {}  # each draw's pairs and retained tokens, those already in pairs/ included
    if existing is not None:
        per_draw = existing.per_draw()
        present = sorted(set(chosen) & set(per_draw))
        if present:
            fail(f"{pairs_dir} already holds draw(s) {', '.join(map(str, present))}: leave them out of "
                 f"--only-draws, or run without it to write every draw anew")

    expected = expected_pairs_per_draw(counts, cfg.window, cfg.sample, cfg.dynamic_window)
    # The old pairs/ stays until the new one is renamed in (atomic_output), unless deleted first; added draws
    # join it, so it is not counted then.
    old_bytes = 0 if adding else directory_bytes(pairs_dir)
    free = shutil.disk_usage(data_dir).free + (old_bytes if cfg.delete_old_first else 0)
    plan = disk_plan(expected, cfg.compression, cfg.plan_draws or len(chosen), 0 if cfg.delete_old_first else old_bytes,
                     free, cfg.window, cfg.dynamic_window)
    if cfg.disk_check:
        check_disk(plan, cfg.compression, data_dir)
    if cfg.delete_old_first and pairs_dir.exists():
        shutil.rmtree(pairs_dir)

    started, cpu_started = time.perf_counter(), cpu_seconds()
    with (staging_dir(pairs_dir) if adding else atomic_output(pairs_dir, round(plan["new_bytes"]))) as out_dir:
        out_dir.mkdir(parents=True)
        # Shards are numbered on from those already in pairs/, so draws added in order are named as in a full run.
        taken = [shard["file"] for shard in existing.shards] if existing else []
        taken += [path.name for path in pairs_dir.glob("shard-*.parquet")] if adding else []
        next_number = max((shard_number(name) for name in taken), default=-1) + 1
        num_proc = max(1, min(cfg.num_proc, len(chosen)))
        tasks = ({"cfg": vars(cfg), "draw": draw, "files": files, "vocab_size": vocab_size, "keep_prob": keep_prob,
                  "out_dir": out_dir, "expected_pairs": int(expected), "tokens": total, "bar": index % num_proc}
                 for index, draw in enumerate(chosen))
        shards: list[dict] = []  # this run's shards, renamed shard-NNNNN in draw order
        shard_bytes = pairs = 0
        with WorkerPool(num_proc) as pool:
            for result in pool.map(write_draw, tasks, in_flight=num_proc):
                for shard in result["shards"]:
                    name = f"shard-{next_number + len(shards):05d}.parquet"
                    (out_dir / shard["file"]).rename(out_dir / name)
                    shards.append({**shard, "file": name})
                shard_bytes += result["bytes"]
                pairs += result["pairs"]
                per_draw[result["draw"]] = {"pairs": result["pairs"], "retained": result["retained"]}
        elapsed = time.perf_counter() - started
        written, written_bytes = len(shards), shard_bytes
        if adding:
            for shard in shards:
                (out_dir / shard["file"]).rename(pairs_dir / shard["file"])
            if existing:
                # Stable sort: every draw's shards together, in draw order, each draw's in its own order.
                shards = sorted([*existing.shards, *shards], key=lambda shard: shard["draw"])
                shard_bytes += existing.bytes
        build_meta(settings, per_draw, shards, shard_bytes).write(pairs_dir if adding else out_dir)
    return report.finish(tokens=total, retained_tokens=per_draw[chosen[0]]["retained"], draws=len(chosen),
                         pairs=pairs, shards=written, bytes_per_pair=round(written_bytes / pairs, 3),
                         planned_pairs_per_draw=round(expected), pairs_per_s=round(pairs / max(elapsed, 1e-9)),
                         cpu_s=round(cpu_seconds() - cpu_started, 3),
                         cpu_ns_per_pair=round((cpu_seconds() - cpu_started) / max(pairs, 1) * 1e9, 2))


if __name__ == "__main__":
    run(main)
