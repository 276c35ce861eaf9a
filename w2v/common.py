"""Helpers shared by the pipeline stages: flags from constants, one-line errors, atomic outputs, the vocabulary
file, stats. Worker processes are in workers.py."""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import math
import os
import re
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np

# `NAME = value  # help` at the start of a line: the stage's tunable constants.
# Settings every stage shares, defined once: each stage script's DATA_DIR and SEED default to these.
DATA_DIR = "data"  # where every stage reads its input and writes its output
SEED = 1  # the pipeline's seed: the draws of pairs_dataset.py, the shard order, vectors and negatives of train.py

_CONSTANT_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::\s*[^=]+)?=\s*(.+?)\s*#\s*(.*)$")


class StageError(Exception):
    """Bad input or missing stage output: reported as one line, no traceback."""


class DiskFullError(StageError):
    """A write met a full disk; the message names the disk, the output and the space it needed."""


def fail(message: str) -> None:
    raise StageError(message)


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception as "Type: its first line", cut at `limit` characters: for an error line that quotes a library."""
    text = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


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


@dataclass(frozen=True)
class Limit:
    """The values a numeric flag accepts: low <= value (low < value when low_open) <= high; None: no bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        low = None if self.low is None else f"{'above' if self.low_open else 'at least'} {self.low:g}"
        if low and self.high is not None:
            return f"{low} and at most {self.high:g}"
        return low or (f"at most {self.high:g}" if self.high is not None else "a finite number")


def at_least(low: float, high: float | None = None) -> Limit:
    return Limit(low, high)


def above(low: float, high: float | None = None) -> Limit:
    return Limit(low, high, low_open=True)


def check_flags(cfg: SimpleNamespace, **limits: Limit) -> None:
    """Stop with one line naming the first flag outside its Limit (`check_flags(cfg, dim=at_least(1))`).

    Float flags must also be finite (argparse takes "nan" and "inf" as floats). A numeric flag given no Limit
    is only checked for being finite; tests/test_robustness.py checks that every stage limits all of its flags.
    """
    for name, value in vars(cfg).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        limit = limits.get(name, Limit())
        if not limit.holds(value):
            allowed = limit.describe()
            if isinstance(value, float) and not math.isfinite(value) and allowed != "a finite number":
                allowed = f"a finite number {allowed}"
            fail(f"--{name.replace('_', '-')} must be {allowed}, got {value!r}")


def run(main: Callable[[], object]) -> None:
    """Run a stage's main(): a StageError becomes `error: ...` on stderr and exit status 2."""
    try:
        main()
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:
        if error.errno not in _DISK_FULL_ERRNOS:
            raise
        # A write outside atomic_output (none of the stages' outputs): still one line naming the disk.
        where = Path(error.filename) if error.filename else Path.cwd()
        print(f"error: disk full: no space left on {_mount_point(where)} writing {where} "
              f"({_megabytes(_free_bytes(where))} free)", file=sys.stderr)
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
def atomic_output(final_path: Path, needed_bytes: int | None = None) -> Iterator[Path]:
    """Yield a temporary sibling path; on success it replaces `final_path` (file or directory), on error it goes.

    A crash never leaves something at `final_path` that looks finished. Temporaries are named
    `.NAME.tmp-PID` (and `.NAME.old-PID` for a replaced directory), PID being the writer's: on entry, those of
    writers no longer alive (killed, say) are removed, never those of a live run. A full disk (ENOSPC, or any
    write error while the disk has no space left) becomes a DiskFullError naming the disk and the space the
    output needed (`needed_bytes` when the caller knows it, else more than what was written); the temporary
    is removed first and whatever was at `final_path` stays as it was.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(final_path)
    temp_path = final_path.with_name(f".{final_path.name}.tmp-{os.getpid()}")
    _remove(temp_path)
    try:
        yield temp_path
    except BaseException as error:
        full = _disk_full(error, temp_path)
        written = _size_on_disk(temp_path) if full else 0
        _remove(temp_path)
        if full:
            raise DiskFullError(_disk_full_message(final_path, written, needed_bytes, error)) from error
        raise
    if _exchange(temp_path, final_path):
        _remove(temp_path)  # the previous output, swapped in by the exchange
    elif final_path.is_dir() and temp_path.is_dir():
        trash = final_path.with_name(f".{final_path.name}.old-{os.getpid()}")
        os.replace(final_path, trash)
        os.replace(temp_path, final_path)
        _remove(trash)
    else:
        if final_path.is_dir():
            shutil.rmtree(final_path)
        os.replace(temp_path, final_path)


_TEMPORARY_KINDS = ("tmp", "old")
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def remove_dead_temporaries(final_path: Path) -> list[Path]:
    """Remove the `.NAME.tmp-PID` / `.NAME.old-PID` siblings of `final_path` whose writer is not alive.

    Alive means a process with that PID exists and started before the temporary was last modified, so a PID
    reused by an unrelated later process does not keep a dead run's temporary forever (a PID reused by a
    process that started before the dead run wrote it would, until that process ends: rare, and only disk).
    This process's own PID counts as dead: atomic_output would reuse that name. Returns what was removed.
    """
    final_path = Path(final_path)
    pattern = re.compile(rf"\.{re.escape(final_path.name)}\.(?:{'|'.join(_TEMPORARY_KINDS)})-(\d+)")
    removed = []
    try:
        siblings = list(final_path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = pattern.fullmatch(sibling.name)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            modified = sibling.lstat().st_mtime
        except OSError:
            continue  # already gone
        if pid != os.getpid() and _writer_alive(pid, modified):
            continue
        _remove(sibling, missing_ok=True)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def scratch_path(parent: Path, name: str) -> Iterator[Path]:
    """`parent/.NAME.tmp-PID`, a working path that is never an output itself (not created: like atomic_output's).

    Removed on exit, however the block ends; a killed earlier run's (its writer dead) is removed on entry, by the
    same rule as atomic_output's temporaries.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(parent / name)
    path = parent / f".{name}.tmp-{os.getpid()}"
    _remove(path, missing_ok=True)
    try:
        yield path
    finally:
        _remove(path, missing_ok=True)


def _writer_alive(pid: int, modified: float) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive, and not ours to judge
    started = _process_start_time(pid)
    # Clock ticks and the boot time are coarse: a margin of 2 s keeps a live writer's temporary safe.
    return started is None or started <= modified + 2.0


def _process_start_time(pid: int) -> float | None:
    """Start time (epoch seconds) of process `pid` from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, after the command name
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _exchange(temp_path: Path, final_path: Path) -> bool:
    """Swap two existing directories in one step (Linux renameat2 RENAME_EXCHANGE); False where not possible.

    With two renames (final -> trash, temp -> final) a kill between them leaves no output at `final_path`.
    """
    if not (temp_path.is_dir() and final_path.is_dir()) or not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc older than 2.28, or another libc
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(temp_path), _AT_FDCWD, os.fsencode(final_path), _RENAME_EXCHANGE) == 0


def _remove(path: Path, missing_ok: bool = False) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except FileNotFoundError:
        if not missing_ok:
            raise


_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# Below this many free bytes a failed write is taken for a full disk: numpy and torch report a short write
# without ENOSPC ("N requested and M written", "unexpected pos").
_NEARLY_FULL_BYTES = 1 << 20


def _disk_full(error: BaseException, path: Path) -> bool:
    if isinstance(error, (KeyboardInterrupt, SystemExit, DiskFullError)):
        return isinstance(error, DiskFullError)
    for cause in (error, error.__cause__, error.__context__):
        if isinstance(cause, OSError) and cause.errno in _DISK_FULL_ERRNOS:
            return True
        if cause is not None and ("No space left on device" in str(cause) or "errno 28]" in str(cause)):
            return True
    return isinstance(error, (OSError, RuntimeError)) and _free_bytes(path) < _NEARLY_FULL_BYTES


def _free_bytes(path: Path) -> int:
    """Bytes this process may still write on the disk holding `path` (its nearest existing ancestor)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return 1 << 62
    return stats.f_bavail * stats.f_frsize if os.geteuid() else stats.f_bfree * stats.f_frsize


def _mount_point(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def _size_on_disk(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(f.lstat().st_blocks * 512 for f in path.rglob("*") if not f.is_dir())
        return path.lstat().st_blocks * 512
    except OSError:
        return 0


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def _disk_full_message(final_path: Path, written: int, needed: int | None, error: BaseException) -> str:
    disk = _mount_point(final_path)
    need = f"it needs about {_megabytes(needed)}" if needed else f"it needed more than the {_megabytes(written)} " \
        "written"
    return (f"disk full: no space left on {disk} for {final_path} ({need}, {_megabytes(_free_bytes(disk))} "
            f"free once its partial output was removed; earlier outputs are untouched): free space there or "
            f"write elsewhere")


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
