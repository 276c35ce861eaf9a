"""Word vectors on disk: word2vec text and binary formats (as gensim and word2vec.c read them), embeddings.npy.

    save_word2vec_text(path, words, vectors)     # "V D" header, then "word v1 ... vD" per line
    save_word2vec_binary(path, words, vectors)   # "V D" header, then b"word " + D little-endian float32 + b"\\n"
    words, vectors = load_vectors(path)          # either format (by extension .bin or by sniffing), or .npy

Text numbers carry 9 significant digits (FLT_DECIMAL_DIG, like "%.9g" without exponents, trailing zeros
trimmed: "-0.0166094918", "12.5", "0.0"), so every float32 comes back exactly from either format, and
evaluating vectors.txt gives the same figures as embeddings.npy. The binary layout is word2vec.c's (a newline
after each vector); gensim reads it because it strips leading newlines from words. Duplicate words keep their
first row, as gensim's loader does, so row numbers (the frequency ranks) agree with gensim's.
"""
from __future__ import annotations

import functools
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from w2v.common import atomic_output, fail, one_line, require

ROWS_PER_BLOCK = 2048  # rows formatted at a time: bounds the temporaries (about 80 MB a block at 300 dims)
READ_CHUNK_BYTES = 1 << 24  # text lines parsed per chunk when loading
THREADS = min(2, os.cpu_count() or 1)  # formatting threads (numpy releases the GIL for most of the work)

_MIN_EXPONENT, _MAX_EXPONENT = -7, 2  # numbers laid out by numpy: 1e-7 <= |x| < 1000 (and zeros); rare rows
# with others are written with str(np.float32), the shortest exact form, at Python speed.
_ZERO_SLOTS = -_MIN_EXPONENT - 1  # zeros between "0." and the first significant digit, at most
_FIRST_DIGIT = 3 + _ZERO_SLOTS  # slot layout: sign, "0", ".", zeros, D0 . D1 . D2 . D3 .. D8, separator
_DIGIT_SLOTS = np.array([_FIRST_DIGIT, _FIRST_DIGIT + 2, _FIRST_DIGIT + 4, *range(_FIRST_DIGIT + 6, _FIRST_DIGIT + 12)])
_WIDTH = _FIRST_DIGIT + 12 + 1
_POWER_0 = _MIN_EXPONENT - 2  # _POWERS[i] = 10 ** (i + _POWER_0), for every exponent the formatter looks up
_POWERS = 10.0 ** np.arange(_POWER_0, 8 - _MIN_EXPONENT + 2)


def save_word2vec_text(path: Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """Write the word2vec text format atomically (float32 values, exact); numpy lays out a block of rows at a time."""
    vectors = _check_matrix(words, vectors)
    encoded = _encode_words(words)
    with atomic_output(Path(path)) as temp, open(temp, "wb", buffering=1 << 22) as handle, \
            ThreadPoolExecutor(THREADS) as pool:
        handle.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode())
        pending: deque = deque()  # at most THREADS + 1 blocks in memory, not the whole file

        def write_oldest() -> None:
            start, rows = pending.popleft()
            handle.writelines(_interleave(encoded[start:start + ROWS_PER_BLOCK], rows.result()))

        for start in range(0, len(encoded), ROWS_PER_BLOCK):
            pending.append((start, pool.submit(_format_rows, vectors[start:start + ROWS_PER_BLOCK])))
            if len(pending) > THREADS:
                write_oldest()
        while pending:
            write_oldest()


def save_word2vec_binary(path: Path, words: Sequence[str], vectors: np.ndarray) -> None:
    """Write the word2vec binary format atomically (word2vec.c's layout: a newline after each vector)."""
    vectors = _check_matrix(words, vectors)
    encoded = _encode_words(words)
    raw = memoryview(np.ascontiguousarray(vectors, dtype="<f4")).cast("B")
    row_bytes = 4 * vectors.shape[1]
    rows = [raw[i * row_bytes:(i + 1) * row_bytes] for i in range(len(encoded))]
    with atomic_output(Path(path)) as temp, open(temp, "wb", buffering=1 << 22) as handle:
        handle.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode())
        handle.writelines(_interleave(encoded, rows, end=b"\n"))


def load_vectors(path_or_paths: Path | str | Sequence[Path | str]) -> tuple[list[str], np.ndarray]:
    """Words (row order) and a float32 matrix from word2vec text/binary or embeddings.npy + vocab.json.

    An .npy needs the vocab.json of its rows: pass both paths, or the .npy alone and vocab.json is looked for
    next to it, then in its parent folder (data/model/embeddings.npy -> data/vocab.json).
    """
    paths = [Path(p) for p in ([path_or_paths] if isinstance(path_or_paths, (str, Path)) else path_or_paths)]
    npy = [p for p in paths if p.suffix == ".npy"]
    if npy:
        others = [p for p in paths if p.suffix != ".npy"]
        if len(npy) != 1 or len(others) > 1:
            fail(f"give one embeddings .npy and at most one vocab.json, not {', '.join(map(str, paths))}")
        return _load_npy(npy[0], others[0] if others else None)
    if len(paths) != 1:
        fail(f"give one word2vec file, not {', '.join(map(str, paths))}")
    path = require(paths[0], "train.py")
    if path.is_dir():
        fail(f"{path} is a folder, not a vectors file")
    with open(path, "rb") as handle:
        header = handle.readline(1024)
        try:
            count, dim = (int(x) for x in header.split())
            if count < 0 or dim <= 0:
                raise ValueError
        except ValueError:
            fail(f"{path} is not a word2vec file: its first line should be 'WORDS DIMS', not {header[:60]!r}")
        binary = path.suffix == ".bin" or not _looks_like_text(handle.read(64 * dim + 4096), dim, path)
        handle.seek(len(header))
        words, vectors = (_read_binary if binary else _read_text)(handle, path, count, dim)
    return _drop_duplicates(words, vectors)


def _check_matrix(words: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        fail(f"need one vector per word: {len(words)} words, vectors of shape {vectors.shape}")
    return vectors


def _encode_words(words: Sequence[str]) -> list[bytes]:
    # A word with whitespace would shift every number after it; no reader could undo that.
    bad = next((word for word in words if not word or any(c.isspace() for c in word)), None)
    if bad is not None:
        fail(f"word {bad!r} is empty or holds whitespace: the word2vec formats cannot store it")
    return [word.encode("utf-8") for word in words]


def _interleave(words: list[bytes], rows: Sequence, end: bytes = b"") -> Iterator[bytes]:
    """word, b" ", row[, end] for each row: handed to writelines, so nothing is concatenated in Python."""
    for word, row in zip(words, rows):
        yield word
        yield b" "
        yield row
        if end:
            yield end


@functools.lru_cache(maxsize=1)
def _layout_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digit triples "000".."999", their trailing zeros, the slot template, and which slots each kind of number
    keeps, by (negative, exponent, significant digits kept)."""
    n = np.arange(1000)
    triples = (np.stack([n // 100, n // 10 % 10, n % 10], axis=1) + ord("0")).astype(np.uint8)
    trailing_zeros = ((n % 10 == 0).astype(np.int64) + (n % 100 == 0) + (n % 1000 == 0)).astype(np.int8)  # 0: 3
    template = np.full(_WIDTH, ord("0"), dtype=np.uint8)
    template[[0, 2, _FIRST_DIGIT + 1, _FIRST_DIGIT + 3, _FIRST_DIGIT + 5, _WIDTH - 1]] = [ord(c) for c in "-.... "]
    keep = np.zeros((2, _MAX_EXPONENT - _MIN_EXPONENT + 1, 10, _WIDTH), dtype=bool)
    for negative in (0, 1):
        for exponent in range(_MIN_EXPONENT, _MAX_EXPONENT + 1):
            for digits in range(1, 10):
                slots = keep[negative, exponent - _MIN_EXPONENT, digits]
                slots[0], slots[-1] = negative, True
                if exponent < 0:  # 0.000ddd
                    slots[1] = slots[2] = True
                    slots[_FIRST_DIGIT + exponent + 1:_FIRST_DIGIT] = True
                else:  # ddd.ddd: the dot after digit `exponent`
                    slots[_FIRST_DIGIT + 1 + 2 * exponent] = True
                slots[_DIGIT_SLOTS[:digits]] = True
    return triples, trailing_zeros, template, keep.reshape(-1, _WIDTH)


def _format_rows(block: np.ndarray) -> list[bytes]:
    """Each row as b"v1 v2 ... vD\\n", every number with 9 significant digits (trailing zeros trimmed).

    Every number gets the same slots (sign, "0.", six zeros, nine digits with a possible dot after each of the
    first three, separator) in one uint8 array; a mask, looked up by the number's sign, decimal exponent and
    significant digits, keeps its own slots and one boolean compress lays the text out.
    """
    block = np.asarray(block, dtype=np.float32)
    n, dim = block.shape
    triples, trailing_zeros, template, keep_table = _layout_tables()
    values = block.astype(np.float64).ravel()
    magnitude = np.abs(values)
    zero = magnitude == 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        estimate = np.floor(np.log10(np.abs(block.ravel())))  # float32 log10: cheap, maybe one off
    special = ~zero & (~np.isfinite(estimate) | (estimate < _MIN_EXPONENT - 1) | (estimate > _MAX_EXPONENT + 1))
    estimate[special | zero] = -1
    exponent = estimate.astype(np.int64)
    exponent += magnitude >= np.take(_POWERS, exponent + 1 - _POWER_0)  # now exact: 10**e <= |x| < 10**(e+1)
    exponent -= (magnitude < np.take(_POWERS, exponent - _POWER_0)) & ~zero
    special |= (exponent < _MIN_EXPONENT) | (exponent > _MAX_EXPONENT)
    exponent[special] = -1
    significand = magnitude * np.take(_POWERS, 8 - exponent - _POWER_0)  # 9 digits before the point
    np.rint(significand, out=significand)
    rounded_up = np.flatnonzero(significand >= 1e9)  # 999999999.5 -> 1e9: one more digit before the point
    exponent[rounded_up] += 1
    significand[rounded_up] = np.rint(magnitude[rounded_up] * np.take(_POWERS, 8 - exponent[rounded_up] - _POWER_0))
    special |= exponent > _MAX_EXPONENT
    exponent[special] = -1
    significand[special] = 0
    high, rest = np.divmod(significand.astype(np.int64), 1_000_000)
    middle, low = np.divmod(rest, 1000)
    chars = np.empty((n * dim, _WIDTH), dtype=np.uint8)
    chars[:] = template
    chars[:, _FIRST_DIGIT:_FIRST_DIGIT + 6:2] = np.take(triples, high, axis=0)  # D0 . D1 . D2 .
    chars[:, _FIRST_DIGIT + 6:_FIRST_DIGIT + 9] = np.take(triples, middle, axis=0)
    chars[:, _FIRST_DIGIT + 9:_FIRST_DIGIT + 12] = np.take(triples, low, axis=0)
    chars.reshape(n, dim, _WIDTH)[:, -1, -1] = ord("\n")
    zeros_low, zeros_middle = np.take(trailing_zeros, low), np.take(trailing_zeros, middle)
    zeros_at_end = zeros_low + (zeros_low == 3) * (zeros_middle + (zeros_middle == 3) * np.take(trailing_zeros, high))
    digits = np.where(exponent >= 0, np.maximum(9 - zeros_at_end, exponent + 2), 9 - zeros_at_end)  # "1.0", not "1."
    digits[zero] = 1  # "0.0"
    negative = np.signbit(values)  # -0.0 is written "-0.0": exact to the sign bit
    kind = (negative * (_MAX_EXPONENT - _MIN_EXPONENT + 1) + exponent - _MIN_EXPONENT) * 10 + digits
    keep = np.take(keep_table, kind, axis=0)
    text = np.extract(keep, chars).tobytes()  # faster than chars[keep]
    ends = np.cumsum(keep.reshape(n, -1).sum(axis=1))
    starts = np.concatenate(([0], ends[:-1]))
    rows = [text[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
    for i in np.flatnonzero(special.reshape(n, dim).any(axis=1)).tolist():
        rows[i] = (" ".join(map(str, block[i])) + "\n").encode()
    return rows


def _looks_like_text(sample: bytes, dim: int, path: Path) -> bool:
    """True when the first record is a text line "word v1 ... vD" (binary floats do not parse like that)."""
    fields = sample.split(b"\n", 1)[0].split()
    try:
        [word.decode("utf-8") for word in fields]
        [float(x) for x in fields[1:]]
    except ValueError:  # UnicodeDecodeError included
        return False
    if len(fields) > 1 and len(fields) != dim + 1:  # text, but not what the header says: not binary either
        fail(f"{path} is garbled: its first vector has {len(fields) - 1} numbers, the header says {dim}")
    return len(fields) == dim + 1


def _read_text(handle, path: Path, count: int, dim: int) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    vectors = np.empty((count, dim), dtype=np.float32)
    while len(words) < count:
        lines = handle.readlines(READ_CHUNK_BYTES)
        if not lines:
            fail(f"{path} is truncated: the header promises {count:,} vectors, the file holds {len(words):,}")
        lines = lines[:count - len(words)]
        split = [line.split(None, 1) for line in lines]
        bad = next((i for i, parts in enumerate(split) if len(parts) != 2), None)
        if bad is not None:
            fail(f"{path} line {len(words) + bad + 2:,}: no vector after the word")
        try:
            chunk_words = [parts[0].decode("utf-8") for parts in split]
        except UnicodeDecodeError as error:
            fail(f"{path} is garbled near vector {len(words) + 1:,}: a word is not UTF-8 ({error.reason})")
        try:  # numpy's C parser, ~0.3 us a number: the slow part of loading text (binary loads ~10x faster)
            block = np.loadtxt([parts[1] for parts in split], dtype=np.float32, comments=None, ndmin=2)
        except ValueError as error:
            fail(f"{path} is garbled near vector {len(words) + 1:,}: {one_line(error)}")
        if block.shape != (len(lines), dim):
            fail(f"{path} is garbled near vector {len(words) + 1:,}: rows of {block.shape[1]} numbers, "
                 f"the header says {dim}")
        vectors[len(words):len(words) + len(lines)] = block
        words.extend(chunk_words)
    return words, vectors


def _read_binary(handle, path: Path, count: int, dim: int) -> tuple[list[str], np.ndarray]:
    data = handle.read()
    view = memoryview(data)
    row_bytes = 4 * dim
    words: list[str] = []
    rows: list[memoryview] = []
    position = 0
    for row in range(count):
        while data[position:position + 1] == b"\n":  # word2vec.c ends each vector with a newline, gensim does not
            position += 1
        space = data.find(b" ", position, position + 4096)
        if space < 0 or space + 1 + row_bytes > len(data):
            fail(f"{path} is truncated or garbled at vector {row + 1:,} of {count:,}")
        try:
            words.append(data[position:space].decode("utf-8"))
        except UnicodeDecodeError:
            fail(f"{path} is garbled at vector {row + 1:,}: the word is not UTF-8")
        position = space + 1 + row_bytes
        rows.append(view[space + 1:position])
    vectors = np.frombuffer(b"".join(rows), dtype="<f4").reshape(count, dim).astype(np.float32)
    return words, vectors


def _load_npy(npy_path: Path, vocab_path: Path | None) -> tuple[list[str], np.ndarray]:
    require(npy_path, "train.py")
    if vocab_path is None:
        candidates = [npy_path.with_name("vocab.json"), npy_path.parent.parent / "vocab.json"]
        vocab_path = next((p for p in candidates if p.is_file()), candidates[-1])
    require(vocab_path, "convert_to_int.py")
    try:
        vectors = np.load(npy_path, allow_pickle=False)
        words = json.loads(Path(vocab_path).read_text(encoding="utf-8"))["words"]
    except (ValueError, OSError, EOFError, KeyError, TypeError) as error:
        fail(f"cannot read {npy_path} with {vocab_path}: {one_line(error)}")
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        fail(f"{npy_path} has shape {vectors.shape} but {vocab_path} lists {len(words):,} words")
    return _drop_duplicates(list(words), np.ascontiguousarray(vectors, dtype=np.float32))


def _drop_duplicates(words: list[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
    if len(set(words)) == len(words):
        return words, vectors
    first: dict[str, int] = {}
    for row, word in enumerate(words):
        first.setdefault(word, row)
    rows = np.fromiter(first.values(), dtype=np.int64)
    return [words[i] for i in rows.tolist()], vectors[rows]
