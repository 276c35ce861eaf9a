"""What users look at: the map of words and their neighbours, the embedding projector's files, the loss plot.

    points = draw_map("map.png", words, vectors, {"москва": ["москва_PROPN", "петербург_PROPN", ...]})
    write_projector(Path("data/model"), words, counts, vectors, 10_000)   # vectors.tsv, metadata.tsv
    plot_loss(Path("data/model/loss.png"), loss_rows, "sg", "ns")

matplotlib is imported on first use only (with the Agg backend: no display needed), so the stages that draw
nothing never load it. The map projects with numpy alone (PCA by SVD): no new dependency.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from w2v.common import atomic_output, fail

# Names of the models and losses, for the loss plot's title.
MODEL_NAMES = {"sg": "skip-gram", "cbow": "CBOW"}
LOSS_NAMES = {"ns": "negative sampling", "hs": "hierarchical softmax"}
# The map's colours, one per query word, in turn (matplotlib's tab10).
MAP_COLOURS = 10
# Digits of a float32 written to vectors.tsv: 9 significant digits read back to the same float32.
PROJECTOR_FORMAT = "%.9g"
# LossPlot redraws at most this often (seconds): a draw costs ~0.3 s, and a small corpus checkpoints every epoch.
REDRAW_SECONDS = 30.0


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@dataclass
class MapPoints:
    """What draw_map drew: point i is labels[i] at coords[i], of query groups[i] (the index in the groups given);
    each group's points come in the order given, the query's own first."""

    labels: list[str]
    groups: list[int]
    coords: np.ndarray  # float64 [points, 2]: the first two principal components of the points' unit vectors


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The rows projected on their first two principal components (centred, by SVD); [n, 2] float64, zero
    columns where the rows span fewer than two dimensions."""
    rows = np.asarray(vectors, dtype=np.float64)
    centred = rows - rows.mean(axis=0, keepdims=True)
    _, _, basis = np.linalg.svd(centred, full_matrices=False)
    coords = np.zeros((len(rows), 2))
    width = min(2, basis.shape[0])
    coords[:, :width] = centred @ basis[:width].T
    return coords


def draw_map(path: str | Path, words: Sequence[str], vectors: np.ndarray, groups: Mapping[str, Sequence[str]],
             title: str = "") -> MapPoints:
    """Draw each group's words (keys of `words`) on one 2-D map, one colour per group, to a PNG at `path`.

    groups: {legend label (the query as typed): [the query's key, its neighbours...]}, in the order to draw.
    The points are the unit rows of those words, projected together by PCA (pca_2d). A word unknown to
    `words` stops with one line. Returns the points drawn (MapPoints), the query keys among them in order.
    """
    row_of: dict[str, int] = {}
    for row, word in enumerate(words):
        row_of.setdefault(word, row)
    labels, group_of, rows = [], [], []
    for index, (_, members) in enumerate(groups.items()):
        for word in members:
            if word not in row_of:
                fail(f"cannot draw {word!r}: not in the vocabulary")
            labels.append(word)
            group_of.append(index)
            rows.append(row_of[word])
    if not rows:
        fail("nothing to draw on the map: no query word is in the vocabulary")
    chosen = np.asarray(vectors[np.asarray(rows)], dtype=np.float64)
    norms = np.linalg.norm(chosen, axis=1, keepdims=True)
    coords = pca_2d(chosen / np.where(norms > 0, norms, 1.0))

    plt = _pyplot()
    colours = plt.get_cmap("tab10")
    figure, axis = plt.subplots(figsize=(9, 7))
    first_of_group = {}
    for i, group in enumerate(group_of):
        first_of_group.setdefault(group, i)
    for index, name in enumerate(groups):
        members = [i for i, group in enumerate(group_of) if group == index]
        colour = colours(index % MAP_COLOURS)
        axis.scatter(coords[members, 0], coords[members, 1], s=18, color=colour, label=name)
        for i in members:
            query = i == first_of_group[index]
            axis.annotate(labels[i], coords[i], xytext=(3, 3), textcoords="offset points", color=colour,
                          fontsize=11 if query else 8, fontweight="bold" if query else "normal")
        axis.scatter(*coords[first_of_group[index]], s=90, marker="*", color=colour, edgecolors="black",
                     linewidths=0.5)
    axis.set_title(title or "nearest neighbours (PCA of the unit vectors)")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(loc="best", fontsize=9)
    figure.tight_layout()
    with atomic_output(Path(path)) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)
    return MapPoints(labels, group_of, coords)


def write_projector(out_dir: Path, words: Sequence[str], counts: Sequence[int] | None, vectors: np.ndarray,
                    top: int) -> tuple[Path, Path]:
    """TensorBoard's embedding projector's files for the `top` first (most frequent) rows, in out_dir:
    vectors.tsv (one row per word, tab-separated floats, no header; float32 exactly, PROJECTOR_FORMAT) and
    metadata.tsv (a `word\\tcount` header, then one line per word; the word alone, no header, without counts).
    Returns the two paths. Words holding a tab or a line break stop with one line (the format has no escape)."""
    top = min(top, len(words))
    chosen = list(words[:top])
    bad = [word for word in chosen if "\t" in word or "\n" in word or "\r" in word]
    if bad:
        fail(f"{bad[0]!r} holds a tab or a line break: the projector's .tsv files cannot hold it")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors_path, metadata_path = out_dir / "vectors.tsv", out_dir / "metadata.tsv"
    with atomic_output(vectors_path) as temp:
        np.savetxt(temp, np.asarray(vectors[:top], dtype=np.float32), fmt=PROJECTOR_FORMAT, delimiter="\t",
                   encoding="utf-8")
    with atomic_output(metadata_path) as temp:
        with open(temp, "w", encoding="utf-8", newline="\n") as handle:
            if counts is None:
                handle.writelines(f"{word}\n" for word in chosen)
            else:
                handle.write("word\tcount\n")
                handle.writelines(f"{word}\t{int(count)}\n" for word, count in zip(chosen, counts[:top]))
    return vectors_path, metadata_path


def epoch_marks(loss_rows: Sequence[Sequence[float]]) -> list[float]:
    """Pairs trained (column 2 of the loss rows) where each epoch after the first begins: the last row of the
    epoch before it (the rows' epoch is column 1)."""
    return [float(before[2]) for before, after in zip(loss_rows, loss_rows[1:]) if after[1] != before[1]]


def plot_loss(path: Path, loss_rows: Sequence[Sequence[float]], model: str = "sg", loss: str = "ns",
              example: str = "pair", title: str = "") -> list[float]:
    """loss.png from train.py's loss rows [batch, epoch, pairs_done, lr, loss]: the loss per example against the
    pairs trained, a running mean, a dashed line where each epoch begins, the model and loss in the title.
    Written atomically, so a reader watching a long run never sees half a file. Returns the epoch marks drawn
    (epoch_marks, in pairs)."""
    plt = _pyplot()
    rows = np.asarray([(row[2], row[4]) for row in loss_rows], dtype=np.float64).reshape(-1, 2)
    marks = epoch_marks(loss_rows)
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(rows[:, 0] / 1e6, rows[:, 1], lw=0.8, label="batch")
    if len(rows) >= 20:
        width = max(1, len(rows) // 50)
        smooth = np.convolve(rows[:, 1], np.ones(width) / width, mode="valid")
        axis.plot(rows[width - 1:, 0] / 1e6, smooth, lw=1.5, label=f"mean of {width}")
    for i, mark in enumerate(marks):
        axis.axvline(mark / 1e6, color="grey", ls="--", lw=0.8, label="epoch" if i == 0 else None)
    epochs = int(loss_rows[-1][1]) if len(loss_rows) else 0
    axis.set_xlabel("pairs trained (millions)")
    axis.set_ylabel(f"loss per {example}")
    axis.set_title(title or f"{MODEL_NAMES.get(model, model)}, {LOSS_NAMES.get(loss, loss)}: training loss"
                   + (f" (epoch {epochs})" if epochs else ""))
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_output(Path(path)) as temp:
        figure.savefig(temp, format="png", dpi=120)
    plt.close(figure)
    return marks


class LossPlot:
    """loss.png kept current during training: `update` at each checkpoint redraws it (plot_loss) when it was
    never drawn, when `final`, or when REDRAW_SECONDS have passed since the last draw. Returns whether it drew."""

    def __init__(self, path: Path, model: str, loss: str, example: str = "pair"):
        self.path, self.model, self.loss, self.example = Path(path), model, loss, example
        self.drawn_at: float | None = None

    def update(self, loss_rows: Sequence[Sequence[float]], final: bool = False) -> bool:
        now = time.monotonic()
        if not final and self.drawn_at is not None and now - self.drawn_at < REDRAW_SECONDS:
            return False
        plot_loss(self.path, loss_rows, self.model, self.loss, self.example)
        self.drawn_at = time.monotonic()
        return True
