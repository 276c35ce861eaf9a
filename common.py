"""Helpers shared by the pipeline stages: flags from constants, one-line errors, atomic outputs, stats."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterable, Iterator

import numpy as np

# `NAME = value  # help` at the start of a line: the stage's tunable constants.
_CONSTANT_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::\s*[^=]+)?=\s*(.+?)\s*#\s*(.*)$")


class StageError(Exception):
    """Bad input or missing stage output: reported as one line, no traceback."""


def fail(message: str) -> None:
    raise StageError(message)


def parse_config(module_file: str, module_globals: dict, argv: list[str] | None = None,
                 description: str | None = None) -> SimpleNamespace:
    """Every commented UPPER_CASE constant at the top of `module_file` becomes a flag (`MIN_COUNT` -> `--min-count`).

    The help text is the constant's comment, the default its current value. Returns lower_case attributes.
    Module globals are not modified, so a script can be imported and its `main(argv)` called many times.
    """
    parser = argparse.ArgumentParser(description=description or module_globals.get("__doc__"),
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for line in Path(module_file).read_text(encoding="utf-8").splitlines():
        match = _CONSTANT_LINE.match(line)
        if not match or match.group(1) not in module_globals:
            continue
        # argparse %-formats help texts (for %(default)s): a literal "%" in a comment must not break --help
        name, help_text = match.group(1), match.group(3).replace("%", "%%")
        default = module_globals[name]
        flag = "--" + name.lower().replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name.lower(), default=default, help=help_text,
                                action=argparse.BooleanOptionalAction)
        elif isinstance(default, (list, tuple)):
            parser.add_argument(flag, dest=name.lower(), default=list(default), help=help_text, nargs="*",
                                type=type(default[0]) if default else str)
        else:
            parser.add_argument(flag, dest=name.lower(), default=default, help=help_text,
                                type=type(default) if default is not None else str)
    return SimpleNamespace(**vars(parser.parse_args(argv)))


def run(main: Callable[[], object]) -> None:
    """Run a stage's main(): a StageError becomes `error: ...` on stderr and exit status 2."""
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: outputs of this stage were not replaced", file=sys.stderr)
        sys.exit(130)


def require(path: Path, stage_script: str) -> Path:
    """Stop with one line naming the stage that makes `path` when it is missing."""
    path = Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        fail(f"{path} not found: run {stage_script} first")
    return path


def parts(directory: Path, stage_script: str, pattern: str = "part-*.parquet") -> list[Path]:
    """The sorted parquet parts a previous stage wrote."""
    require(directory, stage_script)
    found = sorted(Path(directory).glob(pattern))
    if not found:
        fail(f"{directory} holds no {pattern}: run {stage_script} first")
    return found


@contextlib.contextmanager
def atomic_output(final_path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `final_path` (file or directory), on error it goes.

    A crash never leaves something at `final_path` that looks finished.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = final_path.with_name(f".{final_path.name}.tmp-{os.getpid()}")
    _remove(temp_path)
    try:
        yield temp_path
    except BaseException:
        _remove(temp_path)
        raise
    if final_path.is_dir() and temp_path.is_dir():
        trash = final_path.with_name(f".{final_path.name}.old-{os.getpid()}")
        os.replace(final_path, trash)
        os.replace(temp_path, final_path)
        _remove(trash)
    else:
        if final_path.is_dir():
            shutil.rmtree(final_path)
        os.replace(temp_path, final_path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def write_json(path: Path, payload: object) -> None:
    with atomic_output(Path(path)) as temp:
        temp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


def read_json(path: Path, stage_script: str) -> dict:
    require(path, stage_script)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"{path} is not valid JSON ({error}): run {stage_script} again")


# Words per json.dumps call when writing vocab.json: bounds the Python objects alive at once.
_VOCAB_CHUNK = 1 << 16


def write_vocab(path: Path, words: "pa.Array", counts: np.ndarray, **figures: object) -> None:
    """vocab.json: {figures..., "words": [...], "counts": [...]} on one line, written a chunk of words at a time.

    One line, so `load_vocab` can parse it with Arrow's JSON reader; at millions of words json.dumps of whole
    Python lists (and json.loads back) would cost several hundred MB.
    """
    with atomic_output(Path(path)) as temp, open(temp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(figures, ensure_ascii=False)[:-1] + (", " if figures else "") + '"words": [')
        for start in range(0, len(words), _VOCAB_CHUNK):
            chunk = words[start:start + _VOCAB_CHUNK]
            handle.write((", " if start else "") + json.dumps(chunk.to_pylist(), ensure_ascii=False)[1:-1])
        handle.write('], "counts": [')
        for start in range(0, len(counts), _VOCAB_CHUNK):
            chunk = np.asarray(counts[start:start + _VOCAB_CHUNK], dtype=np.int64)
            handle.write((", " if start else "") + ", ".join(map(str, chunk.tolist())))
        handle.write("]}\n")


def load_vocab(data_dir: Path, with_words: bool = True) -> tuple[list[str] | None, np.ndarray]:
    """Words (id order; None unless with_words) and their counts (int64) from DATA_DIR/vocab.json."""
    import pyarrow as pa
    import pyarrow.json as pa_json

    path = require(Path(data_dir) / "vocab.json", "convert_to_int.py")
    try:  # Arrow first: compact arrays instead of millions of Python objects
        size = path.stat().st_size
        table = pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=max(1 << 20, size + 1)))
        if table.num_rows != 1 or not {"words", "counts"} <= set(table.column_names):
            raise ValueError("not one object with words and counts")
        counts = table.column("counts")[0].values.to_numpy(zero_copy_only=False).astype(np.int64)
        words = table.column("words")[0].values.to_pylist() if with_words else None
    except (pa.ArrowException, ValueError, TypeError, AttributeError):
        # A hand-written or pretty-printed vocab.json: the plain parser, with its clear errors.
        vocab = read_json(path, "convert_to_int.py")
        if not isinstance(vocab, dict) or "words" not in vocab or "counts" not in vocab:
            fail(f"{path} holds no words and counts: run convert_to_int.py again")
        words = list(vocab["words"]) if with_words else None
        counts = np.asarray(vocab["counts"], dtype=np.int64)
    if words is not None and len(words) != len(counts):
        fail(f"{path}: {len(words)} words but {len(counts)} counts: run convert_to_int.py again")
    return words, counts


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


class StageReport:
    """Wall time, peak memory and the stage's own figures, printed at the end and kept in stats/<stage>.json."""

    def __init__(self, stage: str, data_dir: Path):
        self.stage, self.data_dir, self.started = stage, Path(data_dir), time.perf_counter()
        self.figures: dict[str, object] = {}

    def finish(self, **figures: object) -> dict:
        self.figures.update(figures)
        self.figures["wall_s"] = round(time.perf_counter() - self.started, 2)
        self.figures["peak_memory_mb"] = round(peak_memory_mb(), 1)
        write_json(self.data_dir / "stats" / f"{self.stage}.json", self.figures)
        shown = ", ".join(f"{key} {_human(value)}" for key, value in self.figures.items())
        print(f"{self.stage}: {shown}")
        return self.figures


def _human(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def default_num_proc() -> int:
    return os.cpu_count() or 1


class WorkerPool:
    """Worker processes for ordered, bounded parallel maps; spawned on first need and reused across maps.

        with WorkerPool(num_proc) as pool:
            for result in pool.map(func, items): ...

    `map` yields func(item) in input order, hands out at most `in_flight` items at once (default 2 * num_proc)
    and consumes `items` lazily, so memory stays bounded however long the input (multiprocessing.Pool.imap
    drains its input). `func` and the items must pickle: module-level functions, plain data, Arrow arrays.
    num_proc <= 1, or a first map of a single item, runs in this process: no process start for tiny inputs.
    Workers are spawned, not forked: the caller may hold threads (datasets, tqdm, Arrow) that fork would copy
    mid-state; and as direct children they count in `peak_memory_mb` once the pool is closed.
    """

    def __init__(self, num_proc: int):
        self.num_proc = num_proc
        self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def map(self, func: Callable, items: Iterable, in_flight: int = 0) -> Iterator:
        import collections
        import itertools

        items = iter(items)
        if self.num_proc <= 1:
            yield from map(func, items)
            return
        head = list(itertools.islice(items, 2))
        if len(head) < 2 and self._executor is None:
            yield from map(func, head)
            return
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(self.num_proc, mp_context=multiprocessing.get_context("spawn"))
        pending: collections.deque = collections.deque()
        try:
            for item in itertools.chain(head, items):
                pending.append(self._executor.submit(func, item))
                if len(pending) >= (in_flight or 2 * self.num_proc):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # left early (an error, a break): drop the work not started
                future.cancel()


def ordered_map(func: Callable, items: Iterable, num_proc: int, in_flight: int = 0) -> Iterator:
    """One `WorkerPool(num_proc).map(func, items)`, the pool closed when done."""
    with WorkerPool(num_proc) as pool:
        yield from pool.map(func, items, in_flight)
