"""pairs/meta.json, read and written in one place: what pairs_dataset.py wrote and how epochs read it.

`PairsMeta.read` reads meta.json once and fills the defaults of a file written before a setting existed (no
"draws": one draw; no "shuffle": shuffled; no "order": pair order; a shard without "draw": draw 0), so no reader
repeats them. Beside it the helpers that share its knowledge: shard file numbers, the shards and pairs of each
draw, the shards an epoch reads and in what order, the draws on disk, removing draws, the --only-draws list,
the settings check of added draws and the flags that write a draw as a full run would.

Shards hold a draw's kept stream (layout LAYOUT, meta.json's "layout": the ids left after sub-sampling and each
one's window byte; w2v/shards.py rebuilds the windows from them), and each shard entry says which of its rows are
targets ("targets"), how many rows it has ("tokens"), its place in its draw ("part") and the pairs of each of its
units ("units"). A pairs/ written in a layout of earlier versions is refused with one line: rebuild it with
pairs_dataset.py. Those are the pair order (every pair shuffled alone: "order" "pairs", or no "order") and the
window shards (pairs in int32 columns target and context, windows flagged by window_start: no "layout").

This module imports no stage script: pairs_dataset.py, dataset.py and train.py all import it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from w2v.common import fail, read_json, write_json

ORDER = "windows"  # the one shard order written and read: windows kept together
LAYOUT = "kept-stream-1"  # the one shard layout written and read: the kept stream and its window bytes
# meta.json settings that a pairs/ must share with a run for draws to be added to it.
SHARED_SETTINGS = ("window", "sample", "seed", "dynamic_window", "draws", "compression", "row_group_pairs",
                   "pairs_per_shard", "tokens", "vocab_size", "order", "shuffle", "layout")
STAGE = "pairs_dataset.py"


@dataclass
class PairsMeta:
    """pairs/meta.json with an old file's defaults filled in; `shards`: {"file", "pairs", "draw"} each."""

    shards: list[dict]
    draws: int = 1
    order: str = "pairs"  # a meta.json without "order" was written in pair order
    shuffle: bool = True
    layout: str = "pairs"  # a meta.json without "layout" holds the window shards of earlier versions
    window: int | None = None
    sample: float | None = None
    seed: int | None = None
    dynamic_window: bool = True
    tokens: int | None = None
    vocab_size: int | None = None
    compression: str | None = None
    row_group_pairs: int | None = None
    pairs_per_shard: int | None = None
    pairs: int = 0
    bytes: int = 0
    retained_tokens: int | None = None
    pairs_per_draw: list = field(default_factory=list)  # None for a draw not on disk
    retained_per_draw: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> PairsMeta:
        known = {f.name for f in dataclasses.fields(cls)}
        meta = cls(**{key: value for key, value in data.items() if key in known})
        meta.draws = max(1, int(meta.draws))
        meta.shards = [{**shard, "draw": int(shard.get("draw", 0))} for shard in meta.shards]
        if not meta.pairs_per_draw:  # written before draws were listed: counted from the shards
            meta.pairs_per_draw = draw_pairs(meta)
        if not meta.retained_per_draw:
            meta.retained_per_draw = [meta.retained_tokens] + [None] * (meta.draws - 1)
        return meta

    @classmethod
    def read(cls, pairs_dir: Path) -> PairsMeta:
        """pairs_dir/meta.json of window order; one line (rebuild it) for a pairs/ in pair order."""
        meta = cls.from_dict(read_json(Path(pairs_dir) / "meta.json", STAGE))
        if meta.order == "pairs":
            fail(f"{pairs_dir} was written in pair order, which this version no longer reads: rebuild it with "
                 f"pairs_dataset.py")
        if meta.order != ORDER:
            fail(f"pairs/meta.json: unknown order {meta.order!r}: run pairs_dataset.py again")
        if meta.layout == "pairs":
            fail(f"{pairs_dir} holds the pair shards of earlier versions (target, context, window_start), which this "
                 f"version no longer reads: rebuild it with pairs_dataset.py")
        if meta.layout != LAYOUT:
            fail(f"pairs/meta.json: unknown layout {meta.layout!r}: run pairs_dataset.py again")
        return meta

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def write(self, pairs_dir: Path) -> None:
        write_json(Path(pairs_dir) / "meta.json", self.to_dict())

    def settings(self) -> dict:
        """The settings a run adding draws must share (`SHARED_SETTINGS`)."""
        return {key: getattr(self, key) for key in SHARED_SETTINGS}

    def listed_draws(self) -> set[int]:
        """Draws meta.json lists as written (their files may be missing: see `draws_on_disk`)."""
        return {draw for draw, pairs in enumerate(self.pairs_per_draw) if pairs is not None}

    def per_draw(self, leave_out: Iterable[int] = ()) -> dict[int, dict]:
        """{draw: {"pairs", "retained"}} of the draws listed, but those of `leave_out`."""
        leave_out = set(leave_out)
        return {draw: {"pairs": pairs, "retained": self.retained_per_draw[draw]}
                for draw, pairs in enumerate(self.pairs_per_draw) if pairs is not None and draw not in leave_out}


def build_meta(settings: dict, per_draw: dict[int, dict], shards: list[dict], shard_bytes: int) -> PairsMeta:
    """The meta.json of a pairs/ holding the draws of `per_draw` ({draw: {"pairs", "retained"}}); None for the
    others. `settings`: `SHARED_SETTINGS` and their values."""
    listed = [per_draw.get(draw) for draw in range(settings["draws"])]
    return PairsMeta(
        shards=shards, **{key: settings[key] for key in SHARED_SETTINGS},
        pairs=sum(figures["pairs"] for figures in per_draw.values()), bytes=shard_bytes,
        retained_tokens=listed[0]["retained"] if listed[0] else None,
        pairs_per_draw=[figures and figures["pairs"] for figures in listed],
        retained_per_draw=[figures and figures["retained"] for figures in listed])


def draw_seed(seed: int, draw: int) -> int | list[int]:
    """SeedSequence entropy of draw `draw`: `seed` for draw 0 (a one-draw run's shards), [seed, draw] after."""
    return seed if draw == 0 else [seed, draw]


def check_settings(meta: PairsMeta, settings: dict, pairs_dir: Path) -> None:
    """Stop with one line when draws written with `settings` cannot join the pairs/ of `meta`."""
    for key in SHARED_SETTINGS:
        if getattr(meta, key) != settings[key]:
            what = "the ids changed since" if key in ("tokens", "vocab_size") else \
                f"--{key.replace('_', '-')} {getattr(meta, key)!r} against {settings[key]!r} now:"
            fail(f"cannot add draws to {pairs_dir}: {what} it was written ({key}); "
                 f"run pairs_dataset.py without --only-draws to write every draw anew")


def shard_number(name: str, default: int = -1) -> int:
    """NNNNN of shard-NNNNN.parquet; `default` for a file named otherwise."""
    number = name.removeprefix("shard-").removesuffix(".parquet")
    return int(number) if number.isdigit() else default


def parse_draws(spec: str, draws: int) -> list[int]:
    """The draws of --only-draws ("2,3"), sorted; every draw 0..draws-1 when `spec` is empty."""
    if not spec.strip():
        return list(range(draws))
    try:
        chosen = sorted({int(item) for item in spec.split(",") if item.strip()})
    except ValueError:
        fail(f"--only-draws takes draw numbers separated by commas, e.g. 2,3; got {spec!r}")
    if not chosen or chosen[0] < 0 or chosen[-1] >= draws:
        fail(f"--only-draws must name draws in 0..{draws - 1} (--draws {draws}), got {spec!r}")
    return chosen


def draw_shards(meta: PairsMeta) -> list[list[int]]:
    """Indices into meta.shards of each draw, draw by draw."""
    draws: list[list[int]] = [[] for _ in range(meta.draws)]
    for index, shard in enumerate(meta.shards):
        draw = shard["draw"]
        if not 0 <= draw < len(draws):
            fail(f"pairs/meta.json: shard {shard.get('file')} is of draw {draw}, but there are {len(draws)} "
                 f"draws: run pairs_dataset.py again")
        draws[draw].append(index)
    return draws


def draw_pairs(meta: PairsMeta) -> list[int]:
    """Pairs of each draw (one epoch's worth), from the shard list."""
    return [sum(int(meta.shards[i]["pairs"]) for i in shards) for shards in draw_shards(meta)]


def shard_order(seed: int, epoch: int, n_shards: int) -> list[int]:
    """Order in which an epoch reads the shards: a permutation of 0..n_shards-1 fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(n_shards).tolist()


def epoch_shards(meta: PairsMeta, seed: int, epoch: int) -> list[int]:
    """The shards epoch `epoch` reads, in order: its draw's (epoch % draws), permuted by `shard_order` (in file
    order when the shards are in text order, meta.shuffle false)."""
    draws = draw_shards(meta)
    draw = epoch % len(draws)
    shards = draws[draw]
    if not shards:
        fail(f"pairs/ holds no shards of draw {draw}, which epoch {epoch + 1} reads: write it with "
             f"pairs_dataset.py --only-draws {draw} (or train with --rolling-draws)")
    if not meta.shuffle:  # pairs_dataset.py --no-shuffle: text order, the shards in file order
        return shards
    return [shards[i] for i in shard_order(seed, epoch, len(shards))]


def draws_on_disk(pairs_dir: Path) -> set[int]:
    """Draws that meta.json lists with every shard file present (a deletion cut short leaves files missing)."""
    meta = PairsMeta.read(pairs_dir)
    missing = {shard["draw"] for shard in meta.shards if not (Path(pairs_dir) / shard["file"]).exists()}
    return meta.listed_draws() - missing


def remove_draws(pairs_dir: Path, draws: Iterable[int]) -> int:
    """Delete the shards of `draws` from pairs/ and mark them absent in meta.json; the bytes freed.

    The files go first: an interruption leaves meta.json listing a draw with files missing, which train.py
    --rolling-draws treats as absent (and removes again), never unlisted shards taking disk unseen.
    """
    pairs_dir = Path(pairs_dir)
    meta = PairsMeta.read(pairs_dir)
    draws = set(draws)
    freed = 0
    for shard in meta.shards:
        path = pairs_dir / shard["file"]
        if shard["draw"] in draws and path.exists():
            freed += path.stat().st_size
            path.unlink()
    kept = [shard for shard in meta.shards if shard["draw"] not in draws]
    kept_bytes = sum((pairs_dir / shard["file"]).stat().st_size for shard in kept
                     if (pairs_dir / shard["file"]).exists())
    build_meta(meta.settings(), meta.per_draw(leave_out=draws), kept, kept_bytes).write(pairs_dir)
    return freed


def pairs_dataset_argv(data_dir: Path, meta: PairsMeta, draw: int) -> list[str]:
    """pairs_dataset.py's flags that write draw `draw` into data_dir/pairs as a full run with meta's settings."""
    return ["--data-dir", str(data_dir), "--only-draws", str(draw), "--num-proc", "1",
            "--draws", str(meta.draws), "--window", str(meta.window), "--sample", repr(float(meta.sample)),
            "--seed", str(meta.seed), "--compression", meta.compression,
            "--pairs-per-shard", str(meta.pairs_per_shard), "--row-group-pairs", str(meta.row_group_pairs),
            "--dynamic-window" if meta.dynamic_window else "--no-dynamic-window",
            "--shuffle" if meta.shuffle else "--no-shuffle"]
