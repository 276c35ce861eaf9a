import sys
from pathlib import Path

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

# The stage scripts live at the top level of the repository; make them importable from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import ROW_GROUP, SHARD_PAIRS, TABLE_SHARES, TOTAL, run_stages, window_flag, write_corpus  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes several seconds or more (pytest -m \"not slow\" "
                                       "leaves them out; make test runs them all)")


@pytest.fixture
def one_torch_thread():
    # Small torch ops on a shared 2-core machine: a second torch thread makes them slower, not faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Shards whose pair k is (k, k + 1): a pair is known by its target, and is a window of its own. Plus
    vocab.json and a unigram table."""
    pairs_dir = tmp_path / "pairs"
    pairs_dir.mkdir()
    shards, start = [], 0
    for i, n in enumerate(SHARD_PAIRS):
        target = np.arange(start, start + n, dtype=np.int32)
        table = pa.table({"target": target, "context": target + 1, "window_start": np.ones(n, dtype=bool)})
        pq.write_table(table, pairs_dir / f"shard-{i:05d}.parquet", row_group_size=ROW_GROUP,
                       compression="lz4", use_dictionary=False)
        shards.append({"file": f"shard-{i:05d}.parquet", "pairs": n})
        start += n
    (pairs_dir / "meta.json").write_text(json.dumps({"pairs": TOTAL, "shards": shards, "vocab_size": TOTAL + 1,
                                                     "order": "windows"}))
    np.save(tmp_path / "unigram_table.npy", np.repeat(np.arange(4, dtype=np.int32), (TABLE_SHARES * 1000).astype(int)))
    (tmp_path / "vocab.json").write_text(json.dumps({"words": [f"w{i}" for i in range(TOTAL + 1)],
                                                     "counts": [1] * (TOTAL + 1)}))
    return tmp_path


@pytest.fixture
def windows_dir(data_dir: Path) -> Path:
    """data_dir's shards (pair k = (k, k + 1)) with windows of 1 to 7 pairs (`window_flag`)."""
    meta_path = data_dir / "pairs" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for shard in meta["shards"]:
        path = data_dir / "pairs" / shard["file"]
        table = pq.read_table(path)
        target = table.column("target").to_numpy()
        table = table.set_column(table.schema.get_field_index("window_start"), "window_start",
                                 pa.array(window_flag(target)))
        pq.write_table(table, path, row_group_size=ROW_GROUP, compression="lz4", use_dictionary=False)
    return data_dir


@pytest.fixture(scope="module")
def corpus_data(tmp_path_factory) -> tuple[Path, list[int], list[list[str]]]:
    """Stages 1-4 on the planted-cluster corpus once: 2 draws in shards of 20,000 pairs."""
    folder = tmp_path_factory.mktemp("train")
    clusters = write_corpus(folder / "corpus.txt", documents=1500)
    pairs_per_draw = run_stages(folder / "data", folder / "corpus.txt", pairs_per_shard=20_000, draws=2)
    return folder / "data", pairs_per_draw, clusters


@pytest.fixture
def data(corpus_data, tmp_path) -> tuple[Path, list[int], list[list[str]]]:
    """A private copy of the stage outputs (without model/), so tests do not see each other's checkpoints."""
    source, pairs_per_draw, clusters = corpus_data
    copy = tmp_path / "data"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("model"))
    return copy, pairs_per_draw, clusters
