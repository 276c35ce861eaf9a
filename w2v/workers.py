"""Worker processes of the stages: a spawned pool whose workers die with their parent (so a kill -9 of a stage
leaves no orphan writing into its outputs), an ordered map over it, and the default number of workers."""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Callable, Iterable, Iterator


def default_num_proc() -> int:
    return os.cpu_count() or 1



_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent dies, however the parent dies (Linux; elsewhere a no-op).

    A worker pool's or data loader's workers call it first thing. A parent killed before the call is not
    seen by the kernel, so the worker then checks its parent is still `parent_pid` and ends itself if not.
    The setting goes with the thread that started the worker: workers must be started from a thread that
    lives as long as the parent (the main thread, here).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


# Run first in a spawned worker, by a bare interpreter (-I -S: no site, ~20 ms): set the parent-death signal,
# check the parent is still the one that spawned it, then exec the real worker command, which keeps the setting.
_LAUNCHER = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); "
             "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execv(sys.argv[2], sys.argv[2:])")


def _spawn_context() -> "multiprocessing.context.BaseContext":
    """multiprocessing's "spawn" context, whose workers die with this process from their first instant (Linux).

    A spawned worker runs no code of ours until it has imported its stage script (numpy, pyarrow: seconds
    under load), so an initializer alone leaves it alive, then working, for that long after its parent is
    killed. So each worker is started through `_LAUNCHER`, which sets PR_SET_PDEATHSIG before exec'ing the
    usual spawn command line.
    """
    import multiprocessing

    return _DyingSpawnContext() if sys.platform.startswith("linux") else multiprocessing.get_context("spawn")


if sys.platform.startswith("linux"):
    import threading
    from multiprocessing import context as _mp_context
    from multiprocessing import popen_spawn_posix as _popen_spawn_posix
    from multiprocessing import spawn as _spawn

    _LAUNCH_LOCK = threading.Lock()

    class _LauncherPopen(_popen_spawn_posix.Popen):
        """A spawn Popen whose command line starts with `_LAUNCHER`."""

        def _launch(self, process_obj: object) -> None:
            usual, parent = _spawn.get_command_line, os.getpid()

            def through_launcher(**kwds: object) -> list[str]:
                return [_spawn.get_executable(), "-I", "-S", "-c", _LAUNCHER, str(parent), *usual(**kwds)]

            # popen_spawn_posix builds the command line through the spawn module: swapped for this launch only.
            with _LAUNCH_LOCK:
                _spawn.get_command_line = through_launcher
                try:
                    super()._launch(process_obj)
                finally:
                    _spawn.get_command_line = usual

    class _DyingSpawnProcess(_mp_context.SpawnProcess):
        @staticmethod
        def _Popen(process_obj: object) -> _LauncherPopen:
            return _LauncherPopen(process_obj)

    class _DyingSpawnContext(_mp_context.SpawnContext):
        Process = _DyingSpawnProcess


class WorkerPool:
    """Worker processes for ordered, bounded parallel maps; spawned on first need and reused across maps.

        with WorkerPool(num_proc) as pool:
            for result in pool.map(func, items): ...

    `map` yields func(item) in input order, hands out at most `in_flight` items at once (default 2 * num_proc)
    and consumes `items` lazily, so memory stays bounded however long the input (multiprocessing.Pool.imap
    drains its input). `func` and the items must pickle: module-level functions, plain data, Arrow arrays.
    num_proc <= 1, or a first map of a single item, runs in this process: no process start for tiny inputs.
    Workers are spawned, not forked: the caller may hold threads (datasets, tqdm, Arrow) that fork would copy
    mid-state; and as direct children they count in `peak_memory_mb` once the pool is closed. They die with
    this process however it ends (`die_with_parent`), SIGKILL included: left alive, they would go on writing
    into a dead run's temporary output.
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
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(self.num_proc, mp_context=_spawn_context(),
                                                 initializer=die_with_parent, initargs=(os.getpid(),))
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
