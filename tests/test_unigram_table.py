"""unigram_table.py: the alias table's exact probabilities against count^0.75, the kernels' draws through it
against the distribution, atomic output, the retired table refused, errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import train
import unigram_table
from unigram_table import build_alias, column_weights, implied_probabilities
from w2v.common import StageError
from w2v.kernels.cpu import unigram_draws

REPO = Path(__file__).resolve().parent.parent
TWO_64 = float(1 << 64)


def write_vocab(data_dir: Path, counts: list[int]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "vocab.json").write_text(json.dumps({
        "words": [f"w{i}" for i in range(len(counts))], "counts": counts, "min_count": 1, "max_vocab": 0,
        "corpus_tokens": sum(counts), "vocab_tokens": sum(counts)}))


def zipf_counts(vocab_size: int, exponent: float = 1.05) -> np.ndarray:
    """Counts as a corpus has them: a Zipf law from 1e7 down to the min_count floor 5."""
    return (1e7 / np.arange(1, vocab_size + 1) ** exponent).astype(np.int64) + 5


def test_column_weights_are_the_high_values_that_pick_each_column():
    for vocab in (1, 3, 7, 70_001, 2_350_000):
        n = column_weights(vocab)
        assert n.sum() == 1 << 32 and n.max() - n.min() <= 1
    # by brute force on a 2^12-value analogue: column (hi * V) >> 12
    vocab, bits = 7, 12
    picked = np.bincount((np.arange(1 << bits) * vocab) >> bits, minlength=vocab)
    edges = (np.arange(vocab + 1) * (1 << bits) + vocab - 1) // vocab
    assert np.array_equal(picked, np.diff(edges))


@pytest.mark.parametrize("vocab_size", [1, 2, 5, 1000, 70_001])
def test_implied_probabilities_are_count_power_to_the_rounding(vocab_size):
    counts = zipf_counts(vocab_size)
    table = build_alias(counts, 0.75)
    assert table.dtype == np.int64 and table.shape == (vocab_size,)
    threshold, alias = table & 0xFFFFFFFF, table >> 32
    assert threshold.max() < 1 << 32 and alias.min() >= 0 and alias.max() < vocab_size
    exact = counts ** 0.75 / (counts ** 0.75).sum()
    implied = implied_probabilities(table)
    # each column that holds word i (its own, and every column aliased to it) is off by at most half a step
    # of its threshold, n_j / 2^64 / 2; twice that, for the float64 build, bounds it
    holders = 1 + np.bincount(alias[alias != np.arange(vocab_size)], minlength=vocab_size)
    bound = holders * column_weights(vocab_size).max() / TWO_64
    assert np.all(np.abs(implied - exact) <= bound + 1e-17)
    assert abs(implied.sum() - 1.0) < 1e-12
    # relative to the word's own probability, even the rarest word is within 1e-8
    assert np.max(np.abs(implied - exact) / exact) < 1e-8


def test_implied_probabilities_at_taiga_size():
    counts = zipf_counts(2_350_000, 1.1)
    table = build_alias(counts, 0.75)
    exact = counts ** 0.75 / (counts ** 0.75).sum()
    assert np.max(np.abs(implied_probabilities(table) - exact) / exact) < 1e-7


def test_a_column_rounding_ignored_would_fail_the_bound():
    # the column choice's unequal weights, if the build took every column as 2^32 / V, would bias each word by up
    # to V / 2^32 of its share: far past the bound above at 70,001 words, so the test above can tell
    vocab_size = 70_001
    table = build_alias(zipf_counts(vocab_size), 0.75)
    n = column_weights(vocab_size)
    threshold, alias = table & 0xFFFFFFFF, table >> 32
    as_if_equal = (threshold + np.bincount(alias, weights=(1 << 32) - threshold, minlength=vocab_size)) / (
        vocab_size * float(1 << 32))
    exact = zipf_counts(vocab_size) ** 0.75 / (zipf_counts(vocab_size) ** 0.75).sum()
    assert not np.allclose(implied_probabilities(table), as_if_equal, rtol=1e-8, atol=0)
    assert np.max(np.abs(implied_probabilities(table) - exact) / exact) < np.max(np.abs(as_if_equal - exact) / exact)
    assert n.min() < n.max()


def test_zero_counts_are_never_drawn_and_the_build_is_deterministic():
    counts = np.array([0, 7, 0, 3, 1, 0])
    table = build_alias(counts, 1.0)
    implied = implied_probabilities(table)
    assert np.all(implied[[0, 2, 5]] == 0)
    assert np.allclose(implied[[1, 3, 4]], [7 / 11, 3 / 11, 1 / 11], rtol=1e-9)
    assert np.array_equal(build_alias(counts, 1.0), table)
    assert not np.any(np.isin(unigram_draws(table, 3, np.arange(100_000)), [0, 2, 5]))


def test_the_kernels_draws_follow_the_distribution():
    # 4M counter draws through the numba kernels' draw (the torch and Triton draws equal it: test_triton_kernel.py,
    # test_sg_window_torch.py): a chi-square over the words expected 50 times or more, and the frequent words'
    # shares within 4 standard errors
    vocab_size, draws = 70_001, 4_000_000
    counts = zipf_counts(vocab_size)
    table = build_alias(counts, 0.75)
    p = implied_probabilities(table)
    found = np.bincount(unigram_draws(table, 2**62 + 5, np.arange(draws)), minlength=vocab_size)
    expected = p * draws
    often = expected >= 50
    chi2 = ((found[often] - expected[often]) ** 2 / expected[often]).sum()
    dof = int(often.sum()) - 1
    assert dof > 1000
    assert chi2 < dof + 5 * np.sqrt(2 * dof)  # 5 sigma of the chi-square's spread
    rest = found[~often].sum()  # the rarer words together
    assert abs(rest - expected[~often].sum()) < 5 * np.sqrt(expected[~often].sum())
    top = slice(0, 100)
    assert np.all(np.abs(found[top] - expected[top]) < 4 * np.sqrt(expected[top]))
    # and the draws are not the raw unigram distribution
    assert abs(found[0] / draws - counts[0] / counts.sum()) > 0.05


def test_stage_writes_the_alias_table(tmp_path):
    counts = [1000, 300, 300, 20, 7]
    write_vocab(tmp_path, counts)
    figures = unigram_table.main(["--data-dir", str(tmp_path)])
    table = np.load(tmp_path / "unigram_alias.npy")
    assert table.dtype == np.int64 and table.shape == (5,)
    weights = np.array(counts) ** 0.75
    assert np.allclose(implied_probabilities(table), weights / weights.sum(), rtol=1e-9)
    assert figures["vocab_size"] == 5 and figures["words_drawn"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats", "unigram_alias.npy", "vocab.json"]
    # re-running replaces it
    unigram_table.main(["--data-dir", str(tmp_path), "--power", "1"])
    assert np.allclose(implied_probabilities(np.load(tmp_path / "unigram_alias.npy")), np.array(counts) / 1627,
                       rtol=1e-9)


def test_train_refuses_the_retired_table_with_one_line(data_dir):
    # data_dir (conftest): pairs/, vocab.json and the alias table; as stage 4 left a data dir before: the old table
    words = json.loads((data_dir / "vocab.json").read_text())["words"]
    assert train.load_data(data_dir, "ns").table.shape == (len(words),)
    (data_dir / "unigram_alias.npy").unlink()
    np.save(data_dir / "unigram_table.npy", np.zeros(100, dtype=np.int32))
    done = subprocess.run([sys.executable, str(REPO / "train.py"), "--data-dir", str(data_dir), "--device", "cpu"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {data_dir / 'unigram_table.npy'} is word2vec.c's 1e8-entry table, no longer read: run "
        "unigram_table.py again (it writes unigram_alias.npy, the alias table)"]
    # a table of another vocabulary's size is refused too
    np.save(data_dir / "unigram_alias.npy", build_alias(np.array([5, 3, 2])))
    with pytest.raises(StageError, match="does not match vocab.json: run unigram_table.py again"):
        train.load_data(data_dir, "ns")


def test_missing_vocab_error(tmp_path):
    with pytest.raises(StageError, match="run convert_to_int.py first"):
        unigram_table.main(["--data-dir", str(tmp_path)])


def test_zero_counts_error(tmp_path):
    write_vocab(tmp_path, [])
    with pytest.raises(StageError, match="no word with a positive count"):
        unigram_table.main(["--data-dir", str(tmp_path)])
    assert not (tmp_path / "unigram_alias.npy").exists()


def test_shell_shows_one_error_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "unigram_table.py"), "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    expected = f"error: {tmp_path / 'vocab.json'} not found: run convert_to_int.py first"
    assert result.stderr.strip().splitlines() == [expected]
