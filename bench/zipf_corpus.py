"""A synthetic corpus shaped like ru_corpus.parquet but SCALE times larger, for scaling benchmarks of stages 1-4.

    .venv/bin/python bench/zipf_corpus.py                      # 20x: bench/work/zipf-x20.parquet (~270M words)
    .venv/bin/python bench/zipf_corpus.py --scale 0.05         # a quick one: bench/work/zipf-x0.05.parquet
    .venv/bin/python bench/zipf_corpus.py --order tile         # the real document order, heavy tail included

Documents: round(SCALE * rows of the real corpus), each as many whitespace-separated words as a real document
(`--order sample`: lengths drawn with replacement from the real ones; `--order tile`: the real sequence of
lengths repeated, which keeps the real corpus's run of very long documents at its end, the heaviest batches
prep.py meets).

Words: TYPES made-up lowercase Cyrillic words drawn from a Zipf-Mandelbrot law, P(rank r) ~ (r + SHIFT)^-EXPONENT
(a bounded continuous power law, sampled by its inverse CDF and floored). The law (30M types, exponent 1.25) is
chosen so the vocabulary keeps growing with the corpus as web text's does: after prep.py's
cleaning, 1x gives 13.4M tokens, 805,746 distinct words and 72,761 with count >= 5 (ru_corpus: 13.2M, 441K,
132K), the top word 5.5% of tokens, count(rank 100, 1000, 10000) 14.7K, 851, 49 (ru_corpus 3.4%, 10K, 1.3K,
141); ~75x gives a billion tokens with over 10M distinct words and ~2.3M at count >= 5 (the measured figures are
in bench/LOG.md, "A billion tokens through every stage"). A law of 3M types, exponent 1.1, fits
1x better (155K words at count >= 5) but saturates: at a billion tokens it would give only ~3M distinct words
(expected counts under the law), nearly all of them at count >= 5. Word lengths grow with rank (frequent words short); letters follow Russian letter
frequencies. Between words: commas, full stops (the next word capitalised), dashes, hyphens, ! ? : at about the
real rates, so prep.py's cleaning has real work to do.

Everything is vectorised with numpy and Arrow: each row group's texts are one `take` over an array holding the
words, their capitalised forms and the separators, with the indices interleaved word, separator, word, ...; the
result's character buffer already is the documents' text, so they are cut out of it by offsets alone. Memory does
not grow with SCALE: the word table plus one row group; the peak is the set-up's (reading the real corpus,
drawing and de-duplicating the words): 5.9 GB and ~67 s at 30M types (0.85 GB and ~5 s at 3M), then ~50-95 MB of
text/s on one core. Row group r uses the seed (SEED, r), so the output depends on the flags only. Written with
zstd, like the real file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from benchlib import RU_CORPUS, WORK


SCALE = 20.0  # documents (and so words) relative to the real corpus
ORDER = "sample"  # document lengths: sample (drawn with replacement) or tile (the real sequence, repeated)
TYPES = 30_000_000  # distinct words that can be drawn (3M would be too few for a billion tokens)
EXPONENT = 1.25  # Zipf exponent s of P(rank r) ~ (r + SHIFT)^-s (1.1 with the 3M-type law)
SHIFT = 3.0  # Zipf-Mandelbrot shift: flattens the head so the top word is ~3% of tokens, not ~9%
ROW_GROUP_ROWS = 20_000  # documents per row group (the real file's)
SEED = 0  # seed of the word table and of every row group
COMPRESSION = "zstd"  # parquet codec (the real file's)

# Word length (letters) of rank r (1-based): LENGTH_BASE + LENGTH_SLOPE * ln r, plus uniform noise of +-1.5,
# rounded. Fitted so tokens average 5.7 letters and distinct words 9.3, as ru_corpus's tokens do.
LENGTH_BASE, LENGTH_SLOPE, LENGTH_NOISE, MAX_LENGTH = 2.25, 0.53, 1.5, 24
# Russian letter frequencies (per mille, rounded): words are random strings over them.
LETTERS = "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъё"
LETTER_WEIGHTS = (110, 85, 80, 73, 67, 63, 55, 47, 45, 44, 35, 32, 30, 28, 26, 20, 19, 17, 17, 16, 16, 14, 12, 10,
                  9, 7, 6, 5, 4, 3, 3, 1, 1)
# What follows a word, with its probability (the rest is a single space), from ru_corpus's character counts per
# word: 0.13 commas, 0.09 full stops, 0.04 hyphens/dashes, 0.03 ! ? :. A "-" glues two words into one token
# (as in "кто-то"), nearly always one seen too rarely for the vocabulary, hence kept rare here.
SEPARATORS = (", ", 0.127), (". ", 0.075), ("! ", 0.011), ("? ", 0.009), (": ", 0.007), (" – ", 0.019), \
    (" - ", 0.020), ("-", 0.005)
SENTENCE_ENDS = (". ", "! ", "? ")  # the word after one of these is capitalised
DOCUMENT_END = "."  # replaces the separator after a document's last word


def real_lengths(path: Path = RU_CORPUS) -> np.ndarray:
    """Whitespace-separated words of each document of the real corpus, in file order (int64)."""
    file = pq.ParquetFile(path)
    lengths = []
    for group in range(file.num_row_groups):
        texts = file.read_row_group(group, columns=["text"]).column("text")
        # Counting runs of non-spaces allocates nothing per word (splitting would copy the text as lists).
        counts = pc.fill_null(pc.count_substring_regex(texts, r"\S+"), 0)  # a null text: no words
        lengths.append(counts.to_numpy(zero_copy_only=False).astype(np.int64))
    return np.concatenate(lengths)


def word_table(types: int, seed: int) -> pa.StringArray:
    """`types` distinct lowercase words, rank order (index 0 the most frequent), lengths growing with rank."""
    rng = np.random.default_rng([seed, 2**32 - 1])  # a stream no row group uses
    rank = np.arange(1, types + 1, dtype=np.float64)
    lengths = np.rint(LENGTH_BASE + LENGTH_SLOPE * np.log(rank) + rng.uniform(-LENGTH_NOISE, LENGTH_NOISE, types))
    lengths = np.clip(lengths, 1, MAX_LENGTH).astype(np.int64)
    weights = np.array(LETTER_WEIGHTS, dtype=np.float64)
    bounds = (np.cumsum(weights) / weights.sum())[:-1]
    # Each letter is 2 UTF-8 bytes (U+0430..U+0451): a (letters, 2) byte table indexed by letter codes.
    letter_bytes = np.frombuffer(LETTERS.encode("utf-8"), dtype=np.uint8).reshape(-1, 2)
    todo = np.arange(types)
    words: pa.StringArray | None = None
    while len(todo):
        # Draw the words in `todo`; duplicates (short words mostly) are drawn again one letter longer.
        # A million words at a time keeps the temporaries (8-byte codes) to tens of MB.
        characters = []
        for start in range(0, len(todo), 1 << 20):
            n = int(lengths[todo[start:start + (1 << 20)]].sum())
            codes = np.searchsorted(bounds, rng.random(n, dtype=np.float32), side="right")
            characters.append(letter_bytes[codes].reshape(-1))
        offsets = np.zeros(len(todo) + 1, dtype=np.int64)
        np.cumsum(2 * lengths[todo], out=offsets[1:])
        drawn = pa.StringArray.from_buffers(len(todo), pa.py_buffer(offsets.astype(np.int32)),
                                            pa.py_buffer(np.concatenate(characters)))
        del characters
        if words is None:
            words = drawn
        else:
            mask = np.zeros(types, dtype=bool)
            mask[todo] = True
            position = np.cumsum(mask) - 1  # where word i sits in `drawn`, for the i in todo
            words = pc.if_else(pa.array(mask), drawn.take(pa.array(np.where(mask, position, 0))), words)
        # Keep the first (most frequent) word of each spelling; the later ones are redrawn.
        indices = pc.dictionary_encode(words).indices.to_numpy()
        _, first = np.unique(indices, return_index=True)
        duplicate = np.ones(types, dtype=bool)
        duplicate[first] = False
        todo = np.flatnonzero(duplicate)
        lengths[todo] += 1
    return words


def vocabulary_array(words: pa.StringArray) -> tuple[pa.StringArray, int, int]:
    """One array to `take` from: words, capitalised words, separators, document end; (array, types, sep base)."""
    separators = [" "] + [text for text, _ in SEPARATORS] + [DOCUMENT_END]
    pieces = pa.concat_arrays([words, pc.utf8_capitalize(words), pa.array(separators, pa.string())])
    return pieces, len(words), 2 * len(words)


class Sampler:
    """Makes the texts of one row group, given its random generator and the word count of each document."""

    def __init__(self, pieces: pa.StringArray, types: int, sep_base: int, exponent: float, shift: float):
        self.pieces, self.types, self.sep_base = pieces, types, sep_base
        self.exponent, self.shift = exponent, shift
        # Inverse CDF of the density x^-s on [1 + shift, types + 1 + shift]: x = (a + (b - a) u)^(1 / (1 - s)).
        self.low = (1 + shift) ** (1 - exponent)
        self.high = (types + 1 + shift) ** (1 - exponent)
        probabilities = np.array([p for _, p in SEPARATORS])
        # Upper bounds of codes 0 (a space) .. len(SEPARATORS) - 1: searchsorted maps u in [0, 1) to a code.
        self.separator_bounds = np.cumsum(np.concatenate([[1 - probabilities.sum()], probabilities]))[:-1]
        # Indexed by separator code: " ", then SEPARATORS, then DOCUMENT_END (also ends a sentence).
        self.document_end = 1 + len(SEPARATORS)
        self.sentence_end = np.array([text in SENTENCE_ENDS for text in [" "] + [t for t, _ in SEPARATORS]] + [True])

    def texts(self, rng: np.random.Generator, lengths: np.ndarray) -> pa.StringArray:
        lengths = np.asarray(lengths, dtype=np.int64)
        n = int(lengths.sum())
        u = rng.random(n)
        x = (self.low + (self.high - self.low) * u) ** (1 / (1 - self.exponent))
        ranks = np.minimum(x - self.shift, self.types).astype(np.int64) - 1  # floor, 0-based
        np.clip(ranks, 0, self.types - 1, out=ranks)
        separators = np.searchsorted(self.separator_bounds, rng.random(n, dtype=np.float32), side="right")
        ends = np.cumsum(lengths)
        nonempty = lengths > 0
        separators[ends[nonempty] - 1] = self.document_end
        # Capitalised: the first word of a document, and a word after a sentence end.
        capital = np.empty(n, dtype=bool)
        if n:
            capital[0] = True
            capital[1:] = self.sentence_end[separators[:-1]]
        indices = np.empty(2 * n, dtype=np.int64)
        indices[0::2] = ranks + capital * self.types
        indices[1::2] = self.sep_base + separators
        pieces = self.pieces.take(pa.array(indices))
        # The pieces' characters, in order, are the documents' texts: cut them at every document's first piece.
        piece_offsets = np.frombuffer(pieces.buffers()[1], dtype=np.int32, count=len(pieces) + 1,
                                      offset=4 * pieces.offset)
        starts = np.concatenate([[0], 2 * ends])
        offsets = piece_offsets[starts]
        return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets - offsets[0]),
                                           pieces.buffers()[2].slice(int(offsets[0])))


def generate(out: Path, scale: float = SCALE, order: str = ORDER, types: int = TYPES, exponent: float = EXPONENT,
             shift: float = SHIFT, row_group_rows: int = ROW_GROUP_ROWS, seed: int = SEED,
             compression: str = COMPRESSION, real: Path = RU_CORPUS, quiet: bool = False) -> dict:
    """Write the corpus to `out` (atomically); returns figures: documents, words, raw bytes, seconds, MB/s."""
    started = time.perf_counter()
    shape = real_lengths(real)
    documents = int(round(scale * len(shape)))
    words = word_table(types, seed)
    pieces, types, sep_base = vocabulary_array(words)
    del words
    sampler = Sampler(pieces, types, sep_base, exponent, shift)
    setup_s = time.perf_counter() - started
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    schema = pa.schema([("text", pa.string())])
    total_words = total_bytes = 0
    try:
        # No dictionary: nearly every text is distinct, so a dictionary is built only to be thrown away.
        with pq.ParquetWriter(temp, schema, compression=compression, use_dictionary=False) as writer:
            for group, first in enumerate(range(0, documents, row_group_rows)):
                rng = np.random.default_rng([seed, group])
                count = min(row_group_rows, documents - first)
                if order == "tile":
                    lengths = shape[np.arange(first, first + count) % len(shape)]
                else:
                    lengths = shape[rng.integers(0, len(shape), count)]
                texts = sampler.texts(rng, lengths)
                writer.write_table(pa.table([texts], schema=schema), row_group_size=count)
                total_words += int(lengths.sum())
                total_bytes += int(pc.sum(pc.binary_length(texts)).as_py() or 0)
                if not quiet and group % 25 == 0:
                    done = first + count
                    elapsed = time.perf_counter() - started
                    print(f"\r{done:,}/{documents:,} documents, {total_bytes / 2**20:,.0f} MB, {elapsed:.0f} s",
                          end="", file=sys.stderr, flush=True)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if not quiet:
        print(file=sys.stderr)
    seconds = time.perf_counter() - started
    return {"path": str(out), "documents": documents, "words": total_words, "raw_bytes": total_bytes,
            "file_bytes": out.stat().st_size, "setup_s": round(setup_s, 2), "seconds": round(seconds, 2),
            "raw_mb_per_s": round(total_bytes / 2**20 / max(seconds - setup_s, 1e-9), 1),
            "words_per_s": round(total_words / max(seconds - setup_s, 1e-9))}


def default_output(scale: float) -> Path:
    return WORK / f"zipf-x{scale:g}.parquet"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=SCALE, help="documents relative to the real corpus")
    parser.add_argument("--order", choices=["sample", "tile"], default=ORDER,
                        help="document lengths: drawn with replacement, or the real sequence repeated")
    parser.add_argument("--types", type=int, default=TYPES, help="distinct words that can be drawn")
    parser.add_argument("--exponent", type=float, default=EXPONENT, help="Zipf exponent")
    parser.add_argument("--shift", type=float, default=SHIFT, help="Zipf-Mandelbrot shift of the ranks")
    parser.add_argument("--row-group-rows", type=int, default=ROW_GROUP_ROWS, help="documents per row group")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--compression", default=COMPRESSION, help="parquet codec")
    parser.add_argument("--real", type=Path, default=RU_CORPUS, help="corpus whose document lengths are copied")
    parser.add_argument("--out", type=Path, help="output file (default: bench/work/zipf-x{SCALE}.parquet)")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.types < 1 or args.row_group_rows < 1 or args.exponent == 1:
        parser.error("--scale, --types and --row-group-rows must be positive and --exponent other than 1")
    if not args.real.exists():
        parser.error(f"{args.real} not found (the real corpus gives the document lengths)")
    out = args.out or default_output(args.scale)
    figures = generate(out, args.scale, args.order, args.types, args.exponent, args.shift, args.row_group_rows,
                       args.seed, args.compression, args.real)
    print(f"{out}: {figures['documents']:,} documents, {figures['words']:,} words, "
          f"{figures['raw_bytes'] / 2**20:,.0f} MB of text ({figures['file_bytes'] / 2**20:,.0f} MB on disk) in "
          f"{figures['seconds']:.1f} s ({figures['setup_s']:.1f} s set-up, then {figures['raw_mb_per_s']:,.1f} MB/s, "
          f"{figures['words_per_s'] / 1e6:.2f}M words/s)")


if __name__ == "__main__":
    main()
