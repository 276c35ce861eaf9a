"""unigram_table.py: shares proportional to count^0.75, int32, atomic output, errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unigram_table
from w2v.common import StageError
from unigram_table import build_table

REPO = Path(__file__).resolve().parent.parent


def write_vocab(data_dir: Path, counts: list[int]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "vocab.json").write_text(json.dumps({
        "words": [f"w{i}" for i in range(len(counts))], "counts": counts, "min_count": 1, "max_vocab": 0,
        "corpus_tokens": sum(counts), "vocab_tokens": sum(counts)}))


def test_build_table_exact_small():
    # weights 16^0.5=4, 4^0.5=2, 1, 1 -> shares 4/8, 2/8, 1/8, 1/8 of 8 entries
    table = build_table(np.array([16, 4, 1, 1]), 8, 0.5)
    assert table.dtype == np.int32
    assert table.tolist() == [0, 0, 0, 0, 1, 1, 2, 3]


def test_shares_follow_count_power():
    counts = np.array([50_000, 12_000, 3_000, 700, 90, 5, 5, 1])
    size = 1_000_000
    table = build_table(counts, size, 0.75)
    assert len(table) == size
    share = counts ** 0.75 / (counts ** 0.75).sum() * size
    held = np.bincount(table, minlength=len(counts))
    assert np.all(np.abs(held - share) <= 1.0)  # each word within one entry of its exact share
    assert np.all(np.diff(table) >= 0)
    # not the raw unigram distribution
    assert abs(held[0] / size - counts[0] / counts.sum()) > 0.05


def test_stage_writes_table(tmp_path):
    counts = [1000, 300, 300, 20, 7]
    write_vocab(tmp_path, counts)
    figures = unigram_table.main(["--data-dir", str(tmp_path), "--table-size", "100000"])
    table = np.load(tmp_path / "unigram_table.npy")
    assert table.dtype == np.int32 and table.shape == (100_000,)
    weights = np.array(counts) ** 0.75
    assert np.allclose(np.bincount(table) / 100_000, weights / weights.sum(), atol=1e-5)
    assert figures["table_size"] == 100_000 and figures["words_in_table"] == 5 and figures["vocab_size"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats", "unigram_table.npy", "vocab.json"]
    # re-running replaces it
    unigram_table.main(["--data-dir", str(tmp_path), "--table-size", "10", "--power", "1"])
    assert np.load(tmp_path / "unigram_table.npy").tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]


def test_missing_vocab_error(tmp_path):
    with pytest.raises(StageError, match="run convert_to_int.py first"):
        unigram_table.main(["--data-dir", str(tmp_path)])


def test_zero_counts_error(tmp_path):
    write_vocab(tmp_path, [])
    with pytest.raises(StageError, match="no word with a positive count"):
        unigram_table.main(["--data-dir", str(tmp_path), "--table-size", "10"])
    assert not (tmp_path / "unigram_table.npy").exists()


def test_shell_shows_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "unigram_table.py"), "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    expected = f"error: {tmp_path / 'vocab.json'} not found: run convert_to_int.py first"
    assert result.stderr.strip().splitlines() == [expected]
