"""dataset.py: every pair once per epoch with 0/1/2 workers, epochs read their draw, exact batch sizes, window
batches rebuilt from the kept-stream shards and cut at batch edges only, resume inside a window, errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

import dataset
import pairs_dataset
from w2v.common import StageError
from dataset import PairsDataset
from w2v.pairs_meta import LAYOUT, PairsMeta, draw_pairs, draw_shards, epoch_shards, shard_order
from helpers import ROW_GROUP, SHARD_PAIRS, TOTAL, assert_windows_whole_but_at_batch_edges, reference_windows
from w2v.shards import shard_pairs

REPO = Path(__file__).resolve().parent.parent


def pairs(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A window batch as (target of every pair, context, window_starts)."""
    return batch.pair_targets(), batch.context, batch.window_starts


def rows(batches) -> np.ndarray:
    """All batches as one array of rows (target, context), sorted: a multiset to compare."""
    stacked = np.concatenate([torch.stack([t, c], 1).numpy() for t, c, _ in map(pairs, batches)])
    return stacked[np.lexsort(stacked.T[::-1])]


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_every_pair_once_per_epoch(data_dir, num_workers):
    ds = PairsDataset(data_dir, batch_size=300, seed=3)
    batches = list(DataLoader(ds, batch_size=None, num_workers=num_workers))
    targets = torch.cat([b.pair_targets() for b in batches]).numpy()
    assert np.array_equal(np.sort(targets), np.arange(TOTAL))
    assert all(np.array_equal(c.numpy(), t.numpy() + 1) for t, c, _ in map(pairs, batches))
    for batch in batches:
        assert batch.context.dtype == batch.window_target.dtype == batch.window_starts.dtype == torch.int32
        assert not hasattr(batch, "negatives")  # every step draws its own
    sizes = [b.n_pairs for b in batches]
    assert sum(size != 300 for size in sizes) <= max(1, num_workers)
    assert all(size <= 300 for size in sizes)
    assert np.array_equal(rows(batches), rows(PairsDataset(data_dir, batch_size=300, seed=3)))


@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_worker_streams_disjoint_and_batches_exact(data_dir, num_workers):
    ds = PairsDataset(data_dir, batch_size=250)
    assert len(ds.units) == sum(-(-n // ROW_GROUP) for n in SHARD_PAIRS) == 7 + 5 + 3 + 1
    seen = []
    for worker in range(num_workers):
        units = ds.plan.worker_units(worker, num_workers)
        assert units == ds.units[worker::num_workers]
        sizes = [batch.n_pairs for batch in ds.iterate(units)]
        expected_pairs = sum(rows for _, _, rows in units)
        assert sizes == [250] * (expected_pairs // 250) + ([expected_pairs % 250] if expected_pairs % 250 else [])
        seen += [tuple(u[:2]) for u in units]
    assert sorted(seen) == sorted(u[:2] for u in ds.units) and len(set(seen)) == len(seen)


def test_shard_order_and_explicit_shards(data_dir):
    ds = PairsDataset(data_dir, batch_size=10_000, seed=5, epoch=2)
    order = shard_order(5, 2, 4)
    assert ds.shards == order and sorted(order) == [0, 1, 2, 3]
    assert len({tuple(shard_order(5, epoch, 4)) for epoch in range(6)}) > 1  # epochs reshuffle
    assert shard_order(5, 2, 4) == order  # and are reproducible
    bounds = np.cumsum([0] + SHARD_PAIRS)
    (batch,), = [list(ds)]
    targets = batch.pair_targets()
    starts = [bounds[s] for s in order]
    # shards in that order, each shard's units in order (each unit's windows shuffled)
    first = targets[:SHARD_PAIRS[order[0]]].tolist()
    assert sorted(first) == list(range(starts[0], starts[0] + SHARD_PAIRS[order[0]])) and first != sorted(first)
    picked = PairsDataset(data_dir, batch_size=10_000, shards=[2, 0])
    (batch,), = [list(picked)]
    targets = batch.pair_targets()
    assert sorted(targets[:SHARD_PAIRS[2]].tolist()) == list(range(bounds[2], bounds[3]))
    assert sorted(targets[SHARD_PAIRS[2]:].tolist()) == list(range(0, bounds[1]))
    assert picked.num_pairs == SHARD_PAIRS[2] + SHARD_PAIRS[0]
    with pytest.raises(StageError, match="shard index 4 out of range"):
        PairsDataset(data_dir, shards=[4])


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_epoch_reads_its_draw_every_pair_once(tmp_path, num_workers):
    # pairs_dataset.py's own output: 3 draws of a small corpus, several shards and row groups per draw
    rng = np.random.default_rng(11)
    docs = [rng.integers(0, 50, size=k).tolist() for k in rng.integers(2, 60, size=80)]
    (tmp_path / "ids").mkdir()
    pq.write_table(pa.table({"ids": pa.array(docs, type=pa.list_(pa.int32()))}),
                   tmp_path / "ids" / "part-00000.parquet")
    counts = np.bincount(np.concatenate(docs), minlength=50)
    (tmp_path / "vocab.json").write_text(json.dumps({"words": [f"w{i}" for i in range(50)], "counts": counts.tolist(),
                                                     "vocab_tokens": int(counts.sum())}))
    pairs_dataset.main(["--data-dir", str(tmp_path), "--window", "3", "--sample", "1e-2", "--draws", "3",
                        "--pairs-per-shard", "1500", "--row-group-pairs", "400"])
    meta = PairsMeta.read(tmp_path / "pairs")
    shards_of = draw_shards(meta)
    assert [len(shards) for shards in shards_of] == [len(shards_of[0])] * 3 and len(shards_of[0]) > 2
    assert draw_pairs(meta) == meta.pairs_per_draw

    def pairs(files) -> np.ndarray:
        stacked = np.concatenate([np.stack(shard_pairs(tmp_path, i)[:2], 1) for i in files])
        return stacked[np.lexsort(stacked.T[::-1])]

    for epoch, draw in [(0, 0), (1, 1), (2, 2), (3, 0), (4, 1)]:  # epoch e reads draw e % 3, each pair once
        ds = PairsDataset(tmp_path, batch_size=500, seed=4, epoch=epoch)
        assert ds.shards == epoch_shards(meta, 4, epoch)
        assert ds.shards == [shards_of[draw][i] for i in shard_order(4, epoch, len(shards_of[draw]))]
        batches = list(DataLoader(ds, batch_size=None, num_workers=num_workers))
        got = rows(batches)
        assert ds.num_pairs == len(got) == meta.pairs_per_draw[draw]
        assert np.array_equal(got[np.lexsort(got.T[::-1])], pairs(shards_of[draw]))
    assert not np.array_equal(pairs(shards_of[0]), pairs(shards_of[1]))


def test_meta_without_draws_is_one_draw(data_dir):
    raw = json.loads((data_dir / "pairs" / "meta.json").read_text())
    meta = PairsMeta.read(data_dir / "pairs")
    assert "draws" not in raw and draw_shards(meta) == [[0, 1, 2, 3]] and draw_pairs(meta) == [TOTAL]
    assert meta.draws == 1 and meta.pairs_per_draw == [TOTAL] and meta.shuffle is True
    assert epoch_shards(meta, 5, 7) == shard_order(5, 7, 4)
    bad = {**raw, "shards": [{**shard, "draw": 1} for shard in raw["shards"]]}
    with pytest.raises(StageError, match="is of draw 1, but there are 1 draws"):
        draw_shards(PairsMeta.from_dict(bad))


def test_same_arguments_same_batches(data_dir):
    def batches(**kwargs):
        return list(PairsDataset(data_dir, batch_size=777, **kwargs))
    a, b = batches(seed=1, epoch=0), batches(seed=1, epoch=0)
    assert len(a) == len(b) == -(-TOTAL // 777)
    assert all(torch.equal(x, y) for batch_a, batch_b in zip(a, b) for x, y in zip(pairs(batch_a), pairs(batch_b)))
    # same shard order given explicitly, another epoch: the same batches
    c = list(PairsDataset(data_dir, batch_size=777, seed=1, epoch=1, shards=shard_order(1, 0, 4)))
    assert all(torch.equal(x.context, y.context) for x, y in zip(a, c))
    # another seed: another shard order
    d = batches(seed=2, epoch=0)
    assert not all(torch.equal(x.context, y.context) for x, y in zip(a, d))


def test_the_unigram_table_is_not_read(data_dir):
    (data_dir / "unigram_alias.npy").unlink()  # the steps draw the negatives: the loader needs no table
    assert sum(batch.n_pairs for batch in PairsDataset(data_dir, batch_size=4000)) == TOTAL


def test_missing_inputs_errors(data_dir, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(StageError, match="pairs not found: run pairs_dataset.py first"):
        PairsDataset(empty)


def test_corrupt_shard_names_the_file(data_dir):
    (data_dir / "pairs" / "shard-00002.parquet").write_bytes(b"not a parquet file at all" * 10)
    with pytest.raises(StageError, match=r"shard-00002\.parquet is corrupt") as error:
        PairsDataset(data_dir)
    assert "\n" not in str(error.value)
    (data_dir / "pairs" / "shard-00001.parquet").unlink()
    with pytest.raises(StageError, match=r"shard-00001\.parquet not found"):
        PairsDataset(data_dir, shards=[1])


def test_quick_look_main(data_dir, capsys):
    figures = dataset.main(["--data-dir", str(data_dir), "--batch-size", "1000", "--batches", "2"])
    assert figures["batches"] == 2 and figures["pairs"] == 2000
    assert "batch 0: 1,000 pairs in 1,000 windows: w" in capsys.readouterr().out


@pytest.mark.slow
def test_shell_shows_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "dataset.py"), "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'pairs'} not found: run pairs_dataset.py first"]


# --- window_starts ----------------------------------------------------------------------------------------------



@pytest.mark.parametrize("num_workers", [0, 2])
def test_window_starts_cut_at_batch_edges_only(windows_dir, num_workers):
    ds = PairsDataset(windows_dir, batch_size=333, seed=3)
    assert ds.meta.order == "windows" and ds.meta.layout == LAYOUT
    batches = list(DataLoader(ds, batch_size=None, num_workers=num_workers))
    pieces, cut = assert_windows_whole_but_at_batch_edges(
        [(b.context, b.window_target, b.window_starts, b.longest) for b in batches], reference_windows(windows_dir))
    assert 3 < len(cut) <= 2 * len(batches)  # batch edges inside windows were exercised
    # a unit is a sample spread over its shard (windows u, u + U, ...; here one block of UNIT_BLOCK, so rising)
    assert np.median(np.diff([t for t, *_ in pieces[:30]])) > 3


def test_window_starts_of_one_pair_windows_are_every_pair(data_dir):
    for batch in PairsDataset(data_dir, batch_size=777):
        assert np.array_equal(batch.window_starts.numpy(), np.arange(batch.n_pairs + 1))


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_inside_a_cut_window_gives_the_same_batches(windows_dir, num_workers):
    def stream(start_batch: int) -> list:
        ds = PairsDataset(windows_dir, batch_size=333, seed=3, start_batch=start_batch)
        return list(DataLoader(ds, batch_size=None, num_workers=num_workers))

    full = stream(0)
    for start in (1, 4, len(full) - 1):
        resumed = stream(start)
        assert len(resumed) == len(full) - start
        for got, expected in zip(resumed, full[start:]):
            for a, b in zip(pairs(got), pairs(expected)):
                assert torch.equal(a, b)


def test_a_shard_without_its_columns_is_one_line(data_dir):
    path = data_dir / "pairs" / "shard-00002.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["window"]), path)
    meta_path = data_dir / "pairs" / "meta.json"
    with pytest.raises(StageError) as error:
        PairsDataset(data_dir, shards=[2, 1])
    assert str(error.value) == (f"{data_dir / 'pairs' / 'shard-00002.parquet'} has columns ['id'], "
                                f"not ['id', 'window']: run pairs_dataset.py again")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "order": "sorted"}))
    with pytest.raises(StageError, match=r"^pairs/meta.json: unknown order 'sorted': run pairs_dataset.py again$"):
        PairsDataset(data_dir)


def test_a_shard_that_does_not_hold_its_listed_windows_is_one_line(data_dir):
    meta_path = data_dir / "pairs" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["shards"][1]["units"][0] += 1
    meta["shards"][1]["units"][1] -= 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StageError) as error:
        list(PairsDataset(data_dir, shards=[1]))
    assert str(error.value) == (f"{data_dir / 'pairs' / 'shard-00001.parquet'} does not hold the windows meta.json "
                                f"lists: run pairs_dataset.py again")


def test_a_pairs_dir_of_the_retired_window_shards_is_one_line_rebuild_it(data_dir):
    # the layout before the kept stream: pairs in columns target, context and window_start; no "layout"
    meta_path = data_dir / "pairs" / "meta.json"
    meta = {key: value for key, value in json.loads(meta_path.read_text()).items() if key != "layout"}
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StageError) as error:
        PairsDataset(data_dir)
    assert str(error.value) == (f"{data_dir / 'pairs'} holds the pair shards of earlier versions (target, context, "
                                f"window_start), which this version no longer reads: rebuild it with "
                                f"pairs_dataset.py")
    result = subprocess.run([sys.executable, str(REPO / "dataset.py"), "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"error: {error.value}"


@pytest.mark.slow
@pytest.mark.parametrize("order", ["pairs", None])
def test_a_pairs_dir_of_the_retired_pair_order_is_one_line_rebuild_it(data_dir, order):
    # an old pairs/: written in pair order ("order" "pairs"), or before orders existed (no "order": pair order)
    meta_path = data_dir / "pairs" / "meta.json"
    meta = {key: value for key, value in json.loads(meta_path.read_text()).items() if key != "order"}
    meta_path.write_text(json.dumps(meta if order is None else {**meta, "order": order}))
    with pytest.raises(StageError) as error:
        PairsDataset(data_dir)
    assert str(error.value) == (f"{data_dir / 'pairs'} was written in pair order, which this version no longer "
                                f"reads: rebuild it with pairs_dataset.py")
    assert "\n" not in str(error.value)
    result = subprocess.run([sys.executable, str(REPO / "dataset.py"), "--data-dir", str(data_dir)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"error: {error.value}"
