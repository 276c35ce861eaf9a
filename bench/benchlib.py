"""What the bench tools share: the project's paths (and its root on sys.path, once), the machine a run ran on,
a stage's command, a process tree's memory and a folder's disk use sampled while a stage runs, a kernel looked
up by name (today's or a commit's), and one draw of a corpus's windows held in memory for the kernels alone.

A tool imports this first: `from benchlib import ROOT, ...`; the pipeline's modules import after it.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the stage scripts and the w2v package live in the repository root
if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))
from helpers import batch_window_starts, drawn_windows, windows_of  # noqa: E402,F401 (the tests' window builder)
SHARED = ROOT.parent / "shared" / "data"  # corpora and evaluation sets beside the project (MANIFEST.md)
RU_CORPUS = SHARED / "corpus" / "ru_corpus.parquet"  # the Russian corpus the tools measure on
WORK = ROOT / "bench" / "work"  # every tool's scratch and results (git-ignored)
PYTHON = sys.executable

# Where a kernel may live, looked up in this order (the numba kernels, the torch steps, the model's module).
# where a kernel lives: today's modules first, then the names older commits used (kernel_versions.py --before)
KERNEL_MODULES = ("w2v.kernels.cpu", "w2v.kernels.torch_steps", "kernels_cpu", "kernels_torch", "word2vec")


def machine_facts(**versions: str) -> dict:
    """The machine as a dict, plus any library versions given; the load average is taken now (before the run)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            **versions, "load_average": [round(x, 2) for x in os.getloadavg()]}


def machine_line() -> str:
    """One line for a table's title: CPU model, cores, system."""
    facts = machine_facts()
    return f"{facts['cpu']}, {facts['cores']} cores, {facts['system']}"


def script_command(stage: str, data_dir: Path, *arguments: str) -> list[str]:
    """A stage script run as a user runs it: this python, `<stage>.py --data-dir DATA_DIR ARGUMENTS`."""
    return [PYTHON, str(ROOT / f"{stage}.py"), "--data-dir", str(data_dir), *arguments]


def run_logged(stage: str, command: list[str], data_dir: Path, log: Path, watch: Callable | None = None,
               new_session: bool = False, failed_note: str = "") -> tuple[dict, float, object]:
    """Run a stage's command to its end, its output appended to `log` after the command line; `watch(pid)`, called
    as it starts, returns what samples it (anything with stop(), or None). Returns (the stage's stats json, the
    process's wall time, what watch's sampler's stop() gave). Exits with the end of the log when the stage fails."""
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=new_session)
        sampler = watch(process.pid) if watch else None
        returncode = process.wait()
        process_s = time.perf_counter() - started
        sampled = sampler.stop() if sampler else None
    if returncode != 0:
        stage_failed(stage, returncode, log, failed_note)
    return json.loads((data_dir / "stats" / f"{stage}.json").read_text()), process_s, sampled


def stage_failed(stage: str, returncode: int, log: Path, note: str = "") -> NoReturn:
    """Exit naming the stage that failed, its exit status and the end of its log."""
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    sys.exit(f"{stage}.py failed (exit {returncode}){note}; end of {log}:\n{tail}")


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of the files under a folder (0 when absent; files vanishing meanwhile are skipped)."""
    if path.is_file():
        return path.stat().st_size
    total, stack = 0, [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    return total


class TreeSampler:
    """Samples in a thread, every `period` s, the summed resident memory of a process and its descendants (a
    stage's workers) and the largest single one of them; with `data_dir`, every `disk_period` s also the bytes
    under it and its filesystem's free space. With `child_named`, `child_alive` says whether a descendant whose
    command line holds that name runs now, and `child_seen_s` how long one was seen running.

    A stage's own peak_memory_mb is its ru_maxrss: the largest single process, not main + workers, and never
    written by a killed run. Needs psutil (ImportError when it is absent).
    """

    def __init__(self, pid: int, period: float, data_dir: Path | None = None, disk_period: float = 2.0,
                 child_named: str | None = None):
        import psutil

        self.psutil, self.root, self.period = psutil, psutil.Process(pid), period
        self.data_dir, self.disk_period, self.child_named = data_dir, disk_period, child_named
        self.tree_peak = self.process_peak = self.disk_peak = 0
        self.free_min = shutil.disk_usage(data_dir).free if data_dir else None
        self.disk_start = tree_bytes(data_dir) if data_dir else None
        self.child_alive, self.child_seen_s = False, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_disk = 0.0
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except self.psutil.Error:
                processes = []
            total, child = 0, False
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    if self.child_named and process is not self.root and \
                            self.child_named in " ".join(process.cmdline()):
                        child = True
                except self.psutil.Error:  # ended meanwhile
                    continue
                total += rss
                self.process_peak = max(self.process_peak, rss)
            self.tree_peak = max(self.tree_peak, total)
            if child:
                self.child_seen_s += self.period
            self.child_alive = child
            now = time.monotonic()
            if self.data_dir and now >= next_disk:
                self.disk_peak = max(self.disk_peak, tree_bytes(self.data_dir))
                self.free_min = min(self.free_min, shutil.disk_usage(self.data_dir).free)
                next_disk = now + self.disk_period
            self._stop.wait(self.period)

    def stop(self) -> dict:
        """The peaks in MB (and, with a data_dir, the disk figures)."""
        self._stop.set()
        self._thread.join()
        figures = {"process_peak_mb": round(self.process_peak / 2**20, 1),
                   "tree_peak_mb": round(self.tree_peak / 2**20, 1)}
        if self.data_dir:
            self.disk_peak = max(self.disk_peak, tree_bytes(self.data_dir))
            figures.update(disk_start_mb=round(self.disk_start / 2**20, 1),
                           disk_peak_mb=round(self.disk_peak / 2**20, 1), free_min_gb=round(self.free_min / 2**30, 2))
        return figures


def kernel(name: str, commit: str | None = None) -> Callable:
    """The kernel (a numba kernel or a torch step) called `name`, from the first of KERNEL_MODULES that holds it:
    today's, or with `commit` as that commit's files had it (each loaded from git under another module name)."""
    for module_name in KERNEL_MODULES:
        module = _module_at(module_name, _commit_id(commit)) if commit else _module(module_name)
        if module is not None and hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"no kernel {name!r} in {', '.join(KERNEL_MODULES)}" + (f" at {commit}" if commit else ""))


def _module(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise


def _commit_id(commit: str) -> str:
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=ROOT,
                           capture_output=True, text=True)
    if found.returncode:
        raise ValueError(f"{commit}: not a commit of {ROOT}")
    return found.stdout.strip()


@functools.cache
def _module_at(module_name: str, commit_id: str):
    """`module_name`.py as it was at the commit, imported as <module_name>_at_<commit>; None where it had none.
    Its file stays under WORK/kernels-at/ (rewritten only when it differs), so numba's cache stays valid."""
    shown = subprocess.run(["git", "show", f"{commit_id}:{module_name.replace('.', '/')}.py"], cwd=ROOT,
                           capture_output=True, text=True)
    if shown.returncode:
        return None
    alias = f"{module_name.replace('.', '_')}_at_{commit_id[:12]}"
    path = WORK / "kernels-at" / f"{alias}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != shown.stdout:
        path.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location(alias, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module



