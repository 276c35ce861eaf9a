"""Draws of pairs, as training sees them: how many pairs a draw is expected to hold (the disk plan's and a rolling
run's schedule), the pairs of all epochs for the learning rate, and rolling draws (train.py --rolling-draws).

Rolling draws, for a corpus whose draws cannot all be on disk at once: before epoch e, draw e % draws is written if
absent (pairs_dataset.py --only-draws with the settings of pairs/meta.json); while epoch e trains, one
pairs_dataset.py process writes the next epoch's draw in the background (one core: --num-proc 1); at the epoch's
end training waits for it, checkpoints, and deletes the draws no later epoch reads (pairs_meta.remove_draws, which
marks them absent in meta.json). With --draws >= --epochs two draws are on disk at the peak. The background writer
dies with train.py, its failure stops training with its error line, and --resume rewrites a draw it left half
written. The learning rate schedule needs the pairs of all epochs from the start: draws not yet written count
their expected pairs (`expected_pairs_per_draw`, an upper bound: document edges ignored).
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from w2v.common import fail, remove_dead_temporaries, scratch_path
from w2v.pairs_meta import PairsMeta, draw_pairs, draws_on_disk, pairs_dataset_argv, remove_draws
from w2v.workers import die_with_parent

PAIRS_SCRIPT = Path(__file__).resolve().parent.parent / "pairs_dataset.py"


def expected_pairs_bound(counts: np.ndarray, keep_prob: np.ndarray, window: int, dynamic_window: bool) -> float:
    """Expected pairs of one draw, document edges ignored: an upper bound of the expectation (edges only remove pairs).

    Word w is retained counts[w] * keep_prob[w] times on average, and a retained token away from its document's
    edges pairs with 2 * b others, b uniform in 1..window (mean (window + 1) / 2), or with 2 * window without
    the dynamic window.
    """
    mean_reach = (window + 1) / 2 if dynamic_window else window
    return float((np.asarray(counts, dtype=np.float64) * np.minimum(1.0, keep_prob)).sum()) * 2 * mean_reach


def expected_pairs_per_draw(counts: np.ndarray, window: int, sample: float, dynamic_window: bool) -> float:
    """The disk plan's expected pairs of one draw (`expected_pairs_bound`) from the vocabulary's counts."""
    keep_prob = keep_probabilities(counts, sample, int(np.asarray(counts).sum()))
    return expected_pairs_bound(counts, keep_prob, window, dynamic_window)


def keep_probabilities(counts: np.ndarray, sample: float, total: int | None = None) -> np.ndarray:
    """word2vec.c's probability of keeping each word: min(1, (sqrt(c/(s*T)) + 1) * (s*T)/c); all 1 when s <= 0.

    `total` (T) is the number of tokens in the id stream; default: the sum of `counts`.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones(len(counts))
    threshold = sample * (counts.sum() if total is None else total)
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(counts / threshold) + 1) * threshold / counts
    # A count of 0 never occurs in the stream; give it 1 rather than inf/nan.
    return np.where(counts > 0, np.minimum(keep, 1.0), 1.0)


def remove_stale_staging(pairs_dir: Path) -> None:
    """Remove the staging folders of --only-draws runs that are gone (killed: no clean-up ran)."""
    remove_dead_temporaries(Path(pairs_dir) / "draws")


def staging_dir(pairs_dir: Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary folder inside pairs/ for the shards of added draws (same filesystem: moved by rename).

    Folders left by a killed run (its pid gone) are removed first: a rolling train.py --resume rewrites the
    draw its killed background writer had half written.
    """
    return scratch_path(pairs_dir, "draws")


def schedule_pairs(meta: PairsMeta, counts: np.ndarray, epochs: int, rolling: bool) -> int:
    """Pairs of all epochs for the learning rate schedule; a rolling run counts absent draws' expected pairs."""
    n_draws = meta.draws
    if not rolling:
        pairs_per_draw = draw_pairs(meta)
        absent = [draw for draw in sorted({epoch % n_draws for epoch in range(epochs)}) if not pairs_per_draw[draw]]
        if absent:
            fail(f"pairs/ holds no shards of draw {absent[0]}: write it with pairs_dataset.py --only-draws "
                 f"{','.join(map(str, absent))}, or train with --rolling-draws")
        return sum(pairs_per_draw[epoch % n_draws] for epoch in range(epochs))
    expected = None
    total = 0
    for epoch in range(epochs):
        pairs = meta.pairs_per_draw[epoch % n_draws]
        if pairs is None:
            if expected is None:
                expected = round(expected_pairs_per_draw(counts, meta.window, meta.sample, meta.dynamic_window))
            pairs = expected
        total += int(pairs)
    return total


class DrawWriter:
    """pairs_dataset.py --only-draws `draw` in a child process; its output goes to a log beside the model."""

    def __init__(self, data_dir: Path, draw: int, log_dir: Path):
        self.data_dir, self.draw = Path(data_dir), draw
        meta = PairsMeta.read(self.data_dir / "pairs")
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"pairs-draw-{draw}.log"
        script = PAIRS_SCRIPT
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(script), *pairs_dataset_argv(data_dir, meta, draw)],
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            preexec_fn=functools.partial(die_with_parent, os.getpid()))

    def check(self) -> bool:
        """True once the draw is written; stops training with the writer's error line when it failed."""
        code = self.process.poll()
        if code is None:
            return False
        if code != 0:
            self._failed(code)
        self.log_path.unlink(missing_ok=True)
        return True

    def wait(self) -> None:
        self.process.wait()
        self.check()

    def _failed(self, code: int) -> None:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        said = errors[-1].removeprefix("error: ") if errors else (lines[-1] if lines else "no output")
        fail(f"writing draw {self.draw} (pairs_dataset.py --only-draws {self.draw}) failed with exit status {code}: "
             f"{said} (log: {self.log_path})")

    def kill(self) -> None:
        """Stop a writer still running and remove the shards it had begun (pairs_dataset.py's staging folder)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            shutil.rmtree(self.data_dir / "pairs" / f".draws.tmp-{self.process.pid}", ignore_errors=True)


class RollingDraws:
    """--rolling-draws: the hooks of the epoch loop that keep two draws on disk (see the module docstring).

    before_epoch writes the epoch's draw if absent and starts the background writer of the next one; check stops
    training as soon as that writer fails; after_epoch waits for it (before the epoch's checkpoint, so a failed
    writer stops training first); drop_finished deletes the draws no later epoch reads (after the checkpoint);
    close kills a writer still running (its half-written draw is rewritten by --resume). Without --rolling-draws
    (active False) every hook does nothing.
    """

    def __init__(self, data_dir: Path, epochs: int, n_draws: int, progress: tqdm, active: bool = True):
        self.data_dir, self.pairs_dir, self.log_dir = data_dir, data_dir / "pairs", data_dir / "model"
        self.epochs, self.n_draws, self.progress, self.active = epochs, n_draws, progress, active
        self.writer: DrawWriter | None = None  # the background writer of the next epoch's draw

    def before_epoch(self, epoch: int) -> None:
        """The epoch's draw on disk (written now if absent), the next epoch's writer started."""
        if not self.active:
            return
        remove_stale_staging(self.pairs_dir)  # a writer killed with an earlier train.py left its shards there
        self.drop_finished(epoch)
        draw = epoch % self.n_draws
        if draw not in draws_on_disk(self.pairs_dir):
            self.progress.write(f"writing draw {draw} for epoch {epoch + 1} (pairs_dataset.py --only-draws {draw})")
            DrawWriter(self.data_dir, draw, self.log_dir).wait()
        following = (epoch + 1) % self.n_draws
        if epoch + 1 < self.epochs and following != draw and following not in draws_on_disk(self.pairs_dir):
            self.writer = DrawWriter(self.data_dir, following, self.log_dir)

    def check(self) -> None:
        """Stop training with the background writer's error line as soon as it failed."""
        if self.writer is not None:
            self.writer.check()

    def after_epoch(self, epoch: int) -> None:
        """Wait for the next epoch's draw at the epoch's end, showing the wait."""
        if self.writer is None:
            return
        waited = time.perf_counter()
        if not self.writer.check():
            self.progress.set_postfix(epoch=epoch + 1, waiting=f"draw {self.writer.draw} being written")
            self.writer.wait()
        self.progress.write(f"epoch {epoch + 1} waited {time.perf_counter() - waited:.1f} s for draw "
                            f"{self.writer.draw}")
        self.writer = None

    def drop_finished(self, next_epoch: int) -> list[int]:
        """Delete the draws on disk that no epoch from `next_epoch` on reads; the draws deleted."""
        if not self.active:
            return []
        needed = {epoch % self.n_draws for epoch in range(next_epoch, self.epochs)}
        on_disk = draws_on_disk(self.pairs_dir)
        finished = sorted(on_disk - needed)
        # A draw listed with files missing (a deletion cut short) is finished off too.
        broken = sorted(PairsMeta.read(self.pairs_dir).listed_draws() - on_disk)
        if finished or broken:
            remove_draws(self.pairs_dir, finished + broken)
        return finished

    def close(self) -> None:
        if self.writer is not None:
            self.writer.kill()
            self.writer = None
