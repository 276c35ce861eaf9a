import sys
from pathlib import Path

import json
import shutil

import numpy as np
import pytest
import torch

# The stage scripts live at the top level of the repository; make them importable from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import SHARD_PAIRS, TABLE_SHARES, TOTAL, one_pair_windows, run_stages, write_corpus, write_stream_shards  # noqa: E402
from unigram_table import OUTPUT, build_alias  # noqa: E402
from w2v.shards import DOC_START  # noqa: E402


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
    vocab.json and an alias table of the negatives (TABLE_SHARES over words 0-3)."""
    bounds = np.cumsum([0] + SHARD_PAIRS)
    write_stream_shards(tmp_path / "pairs", [one_pair_windows(a, n) for a, n in zip(bounds, SHARD_PAIRS)],
                        vocab_size=TOTAL + 1)
    np.save(tmp_path / OUTPUT, build_alias(np.concatenate([TABLE_SHARES, np.zeros(TOTAL + 1 - 4)]), power=1.0))
    (tmp_path / "vocab.json").write_text(json.dumps({"words": [f"w{i}" for i in range(TOTAL + 1)],
                                                     "counts": [1] * (TOTAL + 1)}))
    return tmp_path


@pytest.fixture
def windows_dir(tmp_path: Path) -> Path:
    """Shards of a real kept stream: unique ids (a target names its place), documents of 1 to 30 tokens, windows
    drawn in 1..7 (1 to 14 pairs each). meta.json's windows are the reference's (`reference_windows`)."""
    rng = np.random.default_rng(17)
    streams, start = [], 0
    for _ in range(3):
        n = int(rng.integers(600, 900))
        ids = np.arange(start, start + n, dtype=np.int32)
        code = rng.integers(1, 8, size=n).astype(np.uint8)
        doc_starts = np.unique(np.concatenate([[0], rng.choice(n, size=n // 12, replace=False)]))
        code[doc_starts] |= DOC_START
        streams.append((ids, code))
        start += n
    write_stream_shards(tmp_path / "pairs", streams, seed=3, vocab_size=start)
    return tmp_path


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
