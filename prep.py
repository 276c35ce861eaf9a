"""Stage 1: raw texts -> cleaned token lists, DATA_DIR/prep/part-NNNNN.parquet (column `tokens: list<string>`).

    python prep.py                                      # the Hugging Face dataset DATASET
    python prep.py --dataset corpus.parquet             # local files: .txt (one text per line), .jsonl/.json,
    python prep.py --dataset 'a/*.txt,b.jsonl'          # .parquet; globs and several comma-separated sources

Every source is opened with `datasets.load_dataset(..., streaming=True)` and read as Arrow batches (parquet
files, local or a hub dataset's, by pyarrow's synchronous reader once datasets has resolved and checked them),
so nothing is converted to Python objects and the corpus is never held whole. Local uncompressed .txt files are
read without datasets, line by line as its text builder reads them (importing datasets alone takes ~1 s). A
local folder laid out like a hub dataset (data/train-000NN-of-000MM.parquet) is loaded as a hub name is. The main process reads; NUM_PROC worker
processes clean one batch of DOCS_PER_PART texts each and write it as one part (parts keep the input order).
A corpus of one batch is cleaned in the main process on NUM_PROC threads instead, and a text longer than
SLICE_BYTES (text8 is one 100 MB text) is cleaned in pieces cut at spaces, its tokens joined back into one list.

Cleaning (`clean_texts`), whole batches at a time with pyarrow.compute:
- NFC, then combining marks and invisible format characters (soft hyphen, zero-width joiners, BOM) deleted,
  so a stressed "замо́к" becomes "замок" and "при\\u00adмер" "пример"; ё stays ё (NFC keeps it one character).
- lower case; every character that is not a letter (Unicode \\p{L}: Cyrillic, Latin, ...) becomes a space,
  except a single hyphen between two letters ("кто-то", "северо-запад"). Digits, punctuation, underscores,
  emoji and symbols are dropped, so "123abc" gives "abc".
- split on whitespace; texts left without a token are dropped.

Bytes that are not UTF-8 in a .txt or .jsonl/.json source (web text has them) do not stop the stage: each
invalid sequence is read as U+FFFD, which cleaning then drops like any non-letter, and the report counts them
(`replacement_chars`: U+FFFD characters met in the texts, including any the source held already;
`texts_with_replacements`: texts holding one).
"""
from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from glob import glob, has_magic
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from w2v import common
from w2v.common import StageError, StageReport, at_least, atomic_output, check_flags, fail, one_line, parse_config, run
from w2v.workers import default_num_proc, ordered_map

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
DATASET = "0x7o/taiga"  # Hugging Face dataset name, or local .txt/.jsonl/.json/.parquet files or globs, comma-separated
TEXT_COLUMN = "text"  # column holding the texts (a .txt file is always one text per line)
SPLIT = "train"  # split of a Hugging Face dataset
MAX_DOCS = 0  # stop after this many input texts (0 = all)
DOCS_PER_PART = 100_000  # texts per batch handed to a worker, and so per output part
NUM_PROC = default_num_proc()  # worker processes cleaning batches (1 = all in this process)

# A worker cleans its batch this many bytes of text at a time, so the intermediate copies (several times the
# text) stay small whatever the batch weighs: the last 26K texts of ru_corpus weigh 116 MB.
SLICE_BYTES = 16 << 20
# A part is one row group whose dictionary page holds all its distinct words: parquet's default limit (1 MB)
# falls back to plain pages after ~100K words, while convert_to_int.py reads the dictionary pages directly to
# hash each distinct word once rather than every token (several times faster there, parts half the size).
DICTIONARY_PAGE_BYTES = 1 << 30
# A text longer than SLICE_BYTES is cut into pieces at spaces (`_cut_long_texts`); the space is looked for this
# many bytes at a time.
CUT_SEARCH_BYTES = 1 << 16

# Characters of a local .txt file read at a time (then up to the end of the line), as datasets' text builder does.
TEXT_READ_CHARS = 10 << 20
# A suffix, after an optional compression suffix, picks the datasets builder for a local file.
BUILDERS = {".txt": "text", ".text": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# How each builder decodes: invalid UTF-8 becomes U+FFFD. datasets' json builder hands the bytes straight to
# Arrow (which refuses a bad byte) when the encoding is spelled "utf-8"; its alias "utf_8" routes every chunk
# through Python's decoder, the only path that honours encoding_errors.
DECODING = {"text": {"encoding": "utf-8", "encoding_errors": "replace"},
            "json": {"encoding": "utf_8", "encoding_errors": "replace"}}
REPLACEMENT = "\ufffd"
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")

# A row made only of these characters is already NFC and holds no combining mark or format character (the
# tests check this against unicodedata), so only the other rows pay for normalisation: Latin-1 less the soft
# hyphen U+00AD, Cyrillic less its combining marks U+0483-0489, and the printing General Punctuation (dashes,
# quotes, ellipsis). Russian text is nearly all such rows.
NEEDS_NFC = r"[^\x{0}-\x{AC}\x{AE}-\x{FF}\x{400}-\x{482}\x{48A}-\x{4FF}\x{2010}-\x{2027}\x{2030}-\x{205E}]"
# Invisible inside words: deleted, not turned into a space, so the word stays whole.
INVISIBLE = r"[\p{M}\p{Cf}]+"
# A run of non-letters is a separator unless it is exactly one hyphen; RE2 has no lookarounds, so a hyphen
# touching the start or end of a text is trimmed afterwards. Leftmost-first matching takes a whole run of two
# or more at once, so "а--б" and "а - б" split while "кто-то" keeps its hyphen.
SEPARATOR = r"[^\p{L}]{2,}|[^\p{L}-]"
# A slice without a match is only ASCII letters and single spaces: cleaning it is lower-casing and trimming.
NOT_PLAIN = r"[^A-Za-z ]|  "


def clean_texts(texts: pa.Array | pa.ChunkedArray, counters: dict | None = None,
                owners: np.ndarray | None = None) -> pa.ListArray:
    """Token lists (list<string>), one per input text, in input order; a text without tokens gives [].

    counters: when given, its "replacement_chars" and "texts_with_replacements" grow by the U+FFFD characters
    in `texts` and the texts holding one. owners: when the rows are pieces of longer texts (`_cut_long_texts`),
    the text each row belongs to; the texts holding a U+FFFD then go into the set counters["replaced_texts"]
    instead, so that a text is counted once however many of its pieces hold one.
    """
    texts = _as_text(texts)
    if not pc.any(pc.match_substring_regex(texts, NOT_PLAIN)).as_py():
        # Only ASCII letters and single spaces (text8, text tokenized before): the spaces are the separators
        # already, so the separator pass (most of the cost) is skipped; the rest is as below.
        texts = pc.ascii_trim_whitespace(pc.ascii_lower(texts))
        return _split_tokens(texts)
    odd = pc.match_substring_regex(texts, NEEDS_NFC)
    if pc.any(odd).as_py():
        odd_texts = texts.filter(odd)
        if counters is not None:  # U+FFFD is outside the fast path's characters: only odd rows can hold one
            replaced = pc.count_substring(odd_texts, REPLACEMENT)
            counters["replacement_chars"] += int(pc.sum(replaced).as_py() or 0)
            if owners is None:
                counters["texts_with_replacements"] += int(pc.sum(pc.greater(replaced, 0)).as_py() or 0)
            else:
                rows = np.flatnonzero(odd.to_numpy(zero_copy_only=False))[replaced.to_numpy() > 0]
                counters.setdefault("replaced_texts", set()).update(owners[rows].tolist())
        fixed = pc.replace_substring_regex(pc.utf8_normalize(odd_texts, "NFC"), INVISIBLE, "")
        texts = pc.replace_with_mask(texts, odd, fixed)
    texts = pc.utf8_lower(texts)
    texts = pc.replace_substring_regex(texts, SEPARATOR, " ")
    texts = pc.ascii_trim_whitespace(pc.utf8_trim(texts, "-"))
    return _split_tokens(texts)


def _split_tokens(texts: pa.StringArray) -> pa.ListArray:
    """Texts whose separators are single spaces, none at either end, split into token lists."""
    # Every run of separators became one space, so tokens are split on exactly " ", and only a text left
    # empty would give an empty token (""): it is made null for the split, then its null list an empty one.
    empty = pc.equal(pc.binary_length(texts), 0)
    if pc.any(empty).as_py():
        texts = _with_nulls(texts, empty)
    lists = pc.split_pattern(texts, " ")
    return pa.ListArray.from_arrays(lists.offsets, lists.values, type=pa.list_(pa.string()))


def _as_text(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string array with nulls as "", copied only where that takes a copy."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.chunk(0) if texts.num_chunks == 1 else pa.concat_arrays(texts.chunks or [pa.array([])])
    if texts.type != pa.string():
        texts = texts.cast(pa.string())
    return pc.fill_null(texts, "") if texts.null_count else texts


def _with_nulls(texts: pa.StringArray, nulls: pa.BooleanArray) -> pa.StringArray:
    """`texts` null where `nulls` is true, sharing its offsets and characters (no copy of them)."""
    if texts.offset:
        texts = pa.concat_arrays([texts])
    valid = pc.invert(nulls)
    if valid.offset:
        valid = pa.concat_arrays([valid])
    return pa.StringArray.from_buffers(len(texts), texts.buffers()[1], texts.buffers()[2], valid.buffers()[1])


def _cut_long_texts(texts: pa.StringArray, piece_bytes: int) -> tuple[pa.StringArray, np.ndarray | None]:
    """`texts` with each text longer than piece_bytes cut into pieces of about piece_bytes (no copy), and the
    index of the text each piece comes from; (texts, None) when no text is that long.

    A cut falls just after an ASCII space or line feed (a byte that is never part of a multi-byte character), so
    cleaning the pieces and joining their tokens gives the text's tokens: that character is a separator, the
    separator run it belongs to ends the tokens before the cut and starts none after it (a lone hyphen left at
    a piece's start is trimmed, as a hyphen after a space is), and NFC never combines across a space. A text
    without such a byte for a long stretch gets a longer piece. text8 is one 100 MB text: cut, its cleaning
    runs on several cores (`_clean_part`) and in bounded memory.
    """
    lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False)
    long = np.flatnonzero(lengths > piece_bytes)
    if not len(long):
        return texts, None
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[texts.offset:texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)
    cuts = []  # byte positions in `data` where a piece starts, inside the long texts
    for row in long.tolist():
        position, end = int(offsets[row]) + piece_bytes, int(offsets[row + 1])
        while position < end:
            ahead = data[position:min(end, position + CUT_SEARCH_BYTES)]
            found = np.flatnonzero((ahead == 0x20) | (ahead == 0x0A))
            if not len(found):
                position += len(ahead)  # no space in this stretch: look further
                continue
            cut = position + int(found[0]) + 1
            if cut >= end:
                break
            cuts.append(cut)
            position = cut + piece_bytes
    if not cuts:
        return texts, None
    cuts = np.asarray(cuts, dtype=np.int64)
    pieces_offsets = np.sort(np.concatenate([offsets.astype(np.int64), cuts])).astype(np.int32)
    # each cut adds one piece to the text it falls in
    per_text = 1 + np.bincount(np.searchsorted(offsets, cuts, "right") - 1, minlength=len(texts))
    pieces = pa.StringArray.from_buffers(len(pieces_offsets) - 1, pa.py_buffer(pieces_offsets), texts.buffers()[2])
    return pieces, np.repeat(np.arange(len(texts)), per_text)


def _clean_part(task: tuple[int, pa.Array, Path, int]) -> dict:
    """Worker: clean one batch and write it as `batch-<index>.parquet` unless no text in it has a token.

    task: (index, texts, out_dir, threads); the batch is cleaned SLICE_BYTES of text at a time, `threads`
    slices at once (Arrow's string kernels release the GIL).
    """
    index, texts, out_dir, threads = task
    texts = _as_text(texts)
    pieces, owners = _cut_long_texts(texts, SLICE_BYTES)
    ends = np.cumsum(pc.binary_length(pieces).to_numpy(zero_copy_only=False), dtype=np.int64)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.unique(np.searchsorted(ends, np.arange(SLICE_BYTES, total, SLICE_BYTES), side="right"))
    bounds = [0, *(int(cut) for cut in cuts if 0 < cut < len(pieces)), len(pieces)]
    slices = list(zip(bounds[:-1], bounds[1:]))

    def clean(bound: tuple[int, int]) -> tuple[pa.ListArray, dict]:
        start, stop = bound
        counters = {"replacement_chars": 0, "texts_with_replacements": 0}
        return clean_texts(pieces.slice(start, stop - start), counters,
                           None if owners is None else owners[start:stop]), counters

    if threads > 1 and len(slices) > 1:
        with ThreadPoolExecutor(min(threads, len(slices))) as pool:
            results = list(pool.map(clean, slices))
    else:
        results = [clean(bound) for bound in slices]
    replaced = {key: sum(counters[key] for _, counters in results)
                for key in ("replacement_chars", "texts_with_replacements")}
    if owners is not None:
        replaced["texts_with_replacements"] = len(set().union(*(c.get("replaced_texts", ()) for _, c in results)))
    cleaned = [lists for lists, _ in results]
    del results
    lists = pa.concat_arrays(cleaned) if len(cleaned) != 1 else cleaned[0]
    del cleaned
    if owners is not None:  # the pieces' tokens joined back into one list per text
        per_piece = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        first_piece = np.flatnonzero(np.diff(owners, prepend=-1))
        list_offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.add.reduceat(per_piece, first_piece), out=list_offsets[1:])
        lists = pa.ListArray.from_arrays(pa.array(list_offsets.astype(np.int32)), pc.list_flatten(lists),
                                         type=pa.list_(pa.string()))
    lists = lists.filter(pc.greater(pc.list_value_length(lists), 0))
    if len(lists):
        pq.write_table(pa.table({"tokens": lists}), Path(out_dir) / f"batch-{index:05d}.parquet",
                       row_group_size=len(lists), compression="zstd", dictionary_pagesize_limit=DICTIONARY_PAGE_BYTES)
    return {"index": index, "texts": len(texts), "raw_bytes": total, "documents": len(lists),
            "tokens": len(pc.list_flatten(lists)), **replaced}


def _local_files(spec: str) -> list[str] | None:
    """The files a local source names (sorted glob matches, a folder's corpus files), None for a hub name."""
    path = Path(spec).expanduser()
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    looks_local = (has_magic(spec) or path.exists() or spec.startswith((".", "/", "~"))
                   or any(s in BUILDERS or s in COMPRESSIONS for s in suffixes))
    if not looks_local:
        return None
    if has_magic(spec):
        files = sorted(f for f in glob(str(path), recursive=True) if Path(f).is_file())
        if not files:
            fail(f"{spec} matches no file")
        return files
    if path.is_dir():
        files = sorted(str(f) for f in path.iterdir() if f.is_file() and _builder(f, strict=False))
        if not files and _hub_layout(path):
            return None  # a copy of a hub dataset: loaded as a hub name is, by datasets' own resolution
        if not files:
            fail(f"{spec} is a folder holding no .txt, .jsonl, .json or .parquet file")
        return files
    if not path.exists():
        fail(f"{spec}: no such file")
    return [str(path)]


def _hub_layout(path: Path) -> bool:
    """A local folder laid out like a Hugging Face dataset repository: files under data/ (data/train-*.parquet)."""
    return (path / "data").is_dir()


def _builder(path: Path | str, strict: bool = True) -> str | None:
    name = Path(path).name.lower()
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    builder = BUILDERS.get(Path(name).suffix)
    if builder is None and strict:
        fail(f"{path}: unknown file type (use .txt with one text per line, .jsonl, .json or .parquet)")
    return builder


def _sources(dataset: str, text_column: str, split: str) -> list[tuple[str, Callable, str]]:
    """(label, read_batches(batch_size), column) per source, in order; files of one builder load together."""
    specs = [spec.strip() for spec in dataset.split(",") if spec.strip()]
    if not specs:
        fail("--dataset is empty")
    resolved = [(spec, _local_files(spec)) for spec in specs]
    if all(files is not None or Path(spec).expanduser().is_dir() for spec, files in resolved):
        # Local files only: nothing may reach for the network (the hub is often unreachable), and datasets
        # reads these settings when first imported, so set them on the modules too when already imported.
        os.environ["HF_DATASETS_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"
        for module, names in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                              ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
            if module in sys.modules:
                for name in names:
                    setattr(sys.modules[module], name, True)
    if "datasets" not in sys.modules:
        # Building an IterableDataset imports torch when it is installed (for DataLoader workers): ~200 MB and
        # seconds this stage has no use for. No other stage of the pipeline uses datasets.
        os.environ.setdefault("USE_TORCH", "0")
    groups: list[tuple[str, str | None, list[str]]] = []  # (label, builder or None for the hub, files)
    for spec, files in resolved:
        if files is None:
            groups.append((spec, None, []))
            continue
        for file in files:
            builder = _builder(file)
            if groups and groups[-1][1] == builder:
                groups[-1][2].append(file)
            else:
                groups.append((spec, builder, [file]))
    plain = [builder == "text" and not any(file.lower().endswith(COMPRESSIONS) for file in files)
             for _, builder, files in groups]
    if not all(plain):
        import datasets  # ~1 s of imports: only for the sources that need it

        datasets.disable_progress_bars()
    sources = []
    for (spec, builder, files), plain_text in zip(groups, plain):
        label = spec if builder is None or len(files) > 1 else files[0]
        if plain_text:
            sources.append((label, partial(_text_file_batches, files), "text"))
            continue
        try:
            if builder is None:
                source, files = _load_from_hub(datasets, spec, split)
                builder = "parquet" if files else None
            else:
                source = datasets.load_dataset(builder, data_files=files, split="train", streaming=True,
                                               **DECODING.get(builder, {}))
        except StageError:
            raise
        except Exception as error:  # datasets raises many kinds (connection, not found, bad split, parse)
            if builder is None and Path(spec).expanduser().is_dir():
                fail(f"could not load {spec} as a Hugging Face dataset folder ({one_line(error)})")
            if builder is None:
                fail(f"could not load dataset {spec!r} from the Hugging Face hub ({one_line(error)}); "
                     f"pass a local corpus instead, e.g. --dataset corpus.parquet (or .txt / .jsonl)")
            fail(f"could not read {label} ({one_line(error)})")
        column = "text" if builder == "text" else text_column
        if source.features is not None:
            if column not in source.features:
                fail(f"{label} has no column {column!r}: its columns are {', '.join(source.features)} "
                     f"(choose one with --text-column)")
            if builder == "parquet":
                # datasets resolved and checked the files (a hub dataset's too, as hf:// URLs); their rows are
                # streamed by pyarrow's own synchronous reader. datasets' parquet stream runs Arrow's threaded
                # scanner, which decodes up to ~1 GB ahead of a consumer that waits on its workers (measured:
                # 1.0 GB of Arrow memory after one 3 s pause on a 3.3 GB corpus, 23 MB with
                # ParquetFile.iter_batches); pre_buffer off, as Arrow's pre-buffer cache keeps every range read
                # until the file ends.
                sources.append((label, partial(_parquet_batches, files, column), column))
                continue
            source = source.select_columns([column])
        sources.append((label, partial(_dataset_batches, source), column))
    return sources


def _text_file_batches(files: list[str], batch_size: int) -> Iterator[pa.Table]:
    """Local uncompressed .txt files as tables of one column "text", one row per line, the rows datasets' text
    builder gives (tests/test_prep.py checks it against that builder), without importing datasets:
    UTF-8 with each invalid sequence read as U+FFFD, "\\r\\n" and "\\r" read as "\\n" (universal newlines), lines
    split on "\\n" alone, TEXT_READ_CHARS characters at a time and then the rest of the line. batch_size is
    not used: `_batches` regroups the rows."""
    for file in files:
        with open(file, encoding="utf-8", errors="replace") as handle:
            while chunk := handle.read(TEXT_READ_CHARS):
                lines = (chunk + handle.readline()).split("\n")
                if lines[-1] == "":  # the chunk ended with a line feed: it ends the line before it
                    lines.pop()
                yield pa.table({"text": pa.array(lines, pa.string())})


def _dataset_batches(source: object, batch_size: int) -> Iterator[pa.Table]:
    """A streaming datasets source as Arrow tables of `batch_size` rows."""
    return source.with_format("arrow").iter(batch_size=batch_size)


def _parquet_batches(files: list[str], column: str, batch_size: int) -> Iterator[pa.RecordBatch]:
    """One column of local parquet files, in file and row order, `batch_size` rows at a time."""
    for file in files:
        with contextlib.ExitStack() as stack:
            if "://" in file:  # a hub dataset's file (hf://...): read through fsspec, as datasets reads it
                import fsspec

                file = stack.enter_context(fsspec.open(file, "rb"))
            parquet = stack.enter_context(pq.ParquetFile(file, pre_buffer=False))
            yield from parquet.iter_batches(batch_size=batch_size, columns=[column])


def _load_from_hub(datasets: object, name: str, split: str) -> tuple[object, list[str] | None]:
    """`load_dataset(name, split=split, streaming=True)` and, for a parquet dataset, the files behind the split.

    Both come from the builder that load_dataset makes (it returns `builder.as_streaming_dataset(split)`), so a
    local folder in the hub layout (data/train-000NN-of-000MM.parquet) takes the same path as a hub name.
    Fails at once when the hub's host does not even resolve.

    Unreachable, huggingface_hub retries for ~25 s with a warning per try; the warnings are silenced so that a
    failure stays one line. A proxy may resolve names itself, so with one configured there is no early check.
    """
    import logging

    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname
    proxied = any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
    if host and not proxied and not constants.HF_HUB_OFFLINE and not Path(name).expanduser().is_dir():
        try:
            socket.getaddrinfo(host, 443)
        except OSError as error:
            fail(f"could not load dataset {name!r} from the Hugging Face hub ({host} does not resolve: {error}); "
                 f"pass a local corpus instead, e.g. --dataset corpus.parquet (or .txt / .jsonl)")
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        builder = datasets.load_dataset_builder(name)
        source = builder.as_streaming_dataset(split=split)
    finally:
        hub_logger.setLevel(level)
    data_files = builder.config.data_files or {}
    files = [str(file) for file in data_files.get(split, [])] if builder.name == "parquet" else []
    return source, files or None


def _text_chunks(sources: list[tuple[str, Callable, str]], batch_size: int) -> Iterator[pa.Array]:
    """The text column of every source, as arrays of strings, in corpus order (not copied)."""
    for label, read_batches, column in sources:
        try:
            for table in read_batches(batch_size):
                if column not in table.column_names:
                    fail(f"{label} has no column {column!r}: its columns are {', '.join(table.column_names)} "
                         f"(choose one with --text-column)")
                texts = table.column(column)
                if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)
                        or pa.types.is_string_view(texts.type) or pa.types.is_null(texts.type)):
                    fail(f"column {column!r} of {label} holds {texts.type}, not text (choose another with "
                         f"--text-column)")
                chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
                yield from (chunk if chunk.type == pa.string() else chunk.cast(pa.string()) for chunk in chunks)
        except StageError:
            raise
        except Exception as error:  # a file datasets cannot parse, a connection lost mid-stream
            fail(f"could not read {label} ({one_line(error)})")


def _batches(chunks: Iterator[pa.Array], size: int, max_docs: int) -> Iterator[pa.Array]:
    """Chunks regrouped into arrays of exactly `size` texts (the last one shorter), at most max_docs in all.

    Each is a compact copy: a slice would pickle, on its way to a worker, the whole buffers it points into.
    """
    pending: list[pa.Array] = []
    held = seen = 0
    for chunk in chunks:
        if max_docs:
            chunk = chunk.slice(0, max_docs - seen)
        seen += len(chunk)
        pending.append(chunk)
        held += len(chunk)
        while held >= size:
            joined = pa.chunked_array(pending, pa.string())
            yield pa.concat_arrays(joined.slice(0, size).chunks)
            pending, held = list(joined.slice(size).chunks), held - size
        if max_docs and seen >= max_docs:
            break
    if held:
        yield pa.concat_arrays(pending)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, max_docs=at_least(0), docs_per_part=at_least(1), num_proc=at_least(1))
    data_dir = Path(cfg.data_dir)
    report = StageReport("prep", data_dir)
    sources = _sources(cfg.dataset, cfg.text_column, cfg.split)
    totals = {"texts": 0, "raw_bytes": 0, "documents": 0, "tokens": 0, "replacement_chars": 0,
              "texts_with_replacements": 0}
    written = 0
    with atomic_output(data_dir / "prep") as out_dir:
        out_dir.mkdir(parents=True)
        batches = _batches(_text_chunks(sources, cfg.docs_per_part), cfg.docs_per_part, cfg.max_docs)
        head = list(itertools.islice(batches, 2))
        # A single batch (text8 is one text) is cleaned in this process (WorkerPool.map starts no worker for it),
        # so it takes the NUM_PROC cores as threads; several batches go to NUM_PROC worker processes instead.
        threads = cfg.num_proc if len(head) < 2 else 1
        tasks = ((index, texts, out_dir, threads) for index, texts in enumerate(itertools.chain(head, batches)))
        with tqdm(total=cfg.max_docs or None, unit="docs", unit_scale=True, desc="prep", file=sys.stderr) as bar:
            for figures in ordered_map(_clean_part, tasks, cfg.num_proc):
                for key in totals:
                    totals[key] += figures[key]
                if figures["documents"]:
                    # Batches without tokens write nothing, so parts are renumbered to stay contiguous.
                    os.replace(out_dir / f"batch-{figures['index']:05d}.parquet",
                               out_dir / f"part-{written:05d}.parquet")
                    written += 1
                bar.update(figures["texts"])
        if not totals["documents"]:
            fail(f"empty corpus: {cfg.dataset} yields no text with a word in it ({totals['texts']:,} texts read)")
    raw_mb = totals["raw_bytes"] / 2**20
    elapsed = max(1e-9, time.perf_counter() - report.started)
    return report.finish(dataset=cfg.dataset, documents=totals["documents"], tokens=totals["tokens"],
                         raw_mb=round(raw_mb, 2), mb_per_s=round(raw_mb / elapsed, 2), parts=written,
                         replacement_chars=totals["replacement_chars"],
                         texts_with_replacements=totals["texts_with_replacements"])


if __name__ == "__main__":
    run(main)
