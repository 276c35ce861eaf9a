"""The skip-gram window kernels (w2v/kernels/cpu.py): sg_window_step_cpu (negatives shared by a window) and
sg_window_hs_step_cpu (the target's Huffman path shared by a window), against plain numpy references."""
import numpy as np
import pytest

from w2v.kernels.cpu import sg_window_hs_step_cpu, sg_window_step_cpu, unigram_draws
from w2v.kernels import MAX_SCORE
from w2v.huffman import build_huffman
from helpers import tables, window_batch, word_table



def softplus(x: float) -> float:
    return float(np.log1p(np.exp(-abs(x))) + max(x, 0.0))


def ns_reference(input_w, output_w, target, context, window_starts, table, negatives, lr_start, lr_end, seed):
    """HogBatch written plainly: window after window, every score of the block from the rows before it moves."""
    input_w, output_w = input_w.astype(np.float64), output_w.astype(np.float64)
    n_pairs = len(target)
    pair_losses = np.zeros(n_pairs)
    for w in range(len(window_starts) - 1):
        start, stop = window_starts[w], window_starts[w + 1]
        t = target[start]
        drawn = unigram_draws(table, seed, np.arange(w * negatives, (w + 1) * negatives))
        rows = np.array([t] + [n for n in drawn if n != t])
        labels = np.array([1.0] + [0.0] * (len(rows) - 1))
        lr = lr_start + (lr_end - lr_start) * start / n_pairs
        inputs = context[start:stop]
        u, v = input_w[inputs], output_w[rows]
        scores = u @ v.T
        for i in range(len(inputs)):
            pair_losses[start + i] = sum(softplus(-s if label else s) for s, label in zip(scores[i], labels))
        sigma = np.where(scores > MAX_SCORE, 1.0, np.where(scores < -MAX_SCORE, 0.0, 1 / (1 + np.exp(-scores))))
        g = (labels - sigma) * lr
        np.add.at(input_w, inputs, g @ v)
        np.add.at(output_w, rows, g.T @ u)
    return input_w, output_w, pair_losses


def hs_reference(input_w, inner_w, target, context, window_starts, tree, lr_start, lr_end):
    input_w, inner_w = input_w.astype(np.float64), inner_w.astype(np.float64)
    n_pairs = len(target)
    pair_losses = np.zeros(n_pairs)
    for w in range(len(window_starts) - 1):
        start, stop = window_starts[w], window_starts[w + 1]
        t = target[start]
        nodes = tree.paths[t, :tree.lengths[t]]
        labels = 1.0 - tree.codes[t, :tree.lengths[t]]
        lr = lr_start + (lr_end - lr_start) * start / n_pairs
        inputs = context[start:stop]
        u, v = input_w[inputs], inner_w[nodes]
        scores = u @ v.T
        for i in range(len(inputs)):
            pair_losses[start + i] = sum(softplus(-s if label else s) for s, label in zip(scores[i], labels))
        g = np.where(np.abs(scores) < MAX_SCORE, (labels - 1 / (1 + np.exp(-scores))) * lr, 0.0)
        np.add.at(input_w, inputs, g @ v)
        np.add.at(inner_w, nodes, g.T @ u)
    return input_w, inner_w, pair_losses



def test_ns_window_kernel_matches_numpy_reference():
    rng = np.random.default_rng(0)
    vocab, dim, negatives, seed = 9, 8, 4, 12345
    input_w, output_w = tables(rng, vocab, dim)
    target, context, window_starts = window_batch(rng, vocab, 30)
    table = word_table(rng.integers(0, vocab, 50), vocab)  # small vocabulary: negatives equal to targets happen
    expected_in, expected_out, expected_loss = ns_reference(input_w, output_w, target, context, window_starts,
                                                            table, negatives, 0.08, 0.02, seed)
    sampled_in, sampled_out = input_w.copy(), output_w.copy()
    loss = sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, negatives, 0.08, 0.02,
                              seed, 1, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(output_w, expected_out, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-5)
    # loss_every=3: the same updates, the loss of pairs 0, 3, 6, ... scaled up to the batch
    sampled_loss = sg_window_step_cpu(sampled_in, sampled_out, target[window_starts[:-1]], context, window_starts, table, negatives,
                                      0.08, 0.02, seed, 1, 3)
    np.testing.assert_array_equal(sampled_in, input_w)
    np.testing.assert_array_equal(sampled_out, output_w)
    n = len(target)
    assert sampled_loss == pytest.approx(expected_loss[::3].sum() * n / len(range(0, n, 3)), rel=1e-5)


def test_ns_window_kernel_skips_negatives_equal_to_the_target():
    # A table of the target alone: every negative is skipped, so only the target's row and the contexts move,
    # by the positive gradient alone.
    rng = np.random.default_rng(1)
    input_w, output_w = tables(rng, 5, 4)
    target, context = np.array([2, 2], np.int32), np.array([0, 3], np.int32)
    window_starts = np.array([0, 2], np.int64)
    before_in, before_out = input_w.copy(), output_w.copy()
    sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, word_table(np.array([2]), 5), 3, 0.1, 0.1,
                       7, 1, 1)
    untouched = [0, 1, 3, 4]
    np.testing.assert_array_equal(output_w[untouched], before_out[untouched])
    u, v = before_in[[0, 3]].astype(np.float64), before_out[2].astype(np.float64)
    g = (1 - 1 / (1 + np.exp(-(u @ v)))) * 0.1
    np.testing.assert_allclose(output_w[2], v + g @ u, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(input_w[[0, 3]], u + g[:, None] * v, rtol=1e-5, atol=1e-7)


def test_ns_window_kernel_shares_counter_draws_across_the_window():
    # Output rows zero and inputs distinct unit vectors: after one step, row r of the output table has moved by
    # -lr/2 * (the summed inputs of the windows that drew r as a negative), +lr/2 * those whose target is r.
    vocab, dim, negatives, seed = 40, 40, 5, 99
    input_w = np.eye(vocab, dim, dtype=np.float32)
    output_w = np.zeros((vocab, dim), np.float32)
    window_starts = np.array([0, 3, 5], np.int64)
    target = np.array([0, 0, 0, 1, 1], np.int32)
    context = np.array([10, 11, 12, 13, 14], np.int32)
    table = word_table(np.arange(2, 40))  # never a target: nothing is skipped
    sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, negatives, 0.2, 0.2, seed, 1, 1)
    expected = np.zeros((vocab, dim))
    for w, (start, stop) in enumerate([(0, 3), (3, 5)]):
        drawn = unigram_draws(table, seed, np.arange(w * negatives, (w + 1) * negatives))
        summed = np.eye(vocab, dim)[context[start:stop]].sum(0)
        expected[target[start]] += 0.1 * summed
        for n in drawn:
            expected[n] -= 0.1 * summed
    np.testing.assert_allclose(output_w, expected, atol=1e-7)


def test_window_kernels_interpolate_the_learning_rate_by_the_windows_first_pair():
    # One-pair windows of distinct rows: each window's update is its own, at lr of its first pair.
    vocab, dim = 8, 4
    input_w = np.full((vocab, dim), 0.1, np.float32)
    output_w = np.zeros((vocab, dim), np.float32)  # scores 0: sigma 1/2, so the gradient is +lr/2
    target = np.array([0, 1, 1, 2], np.int32)
    context = np.array([4, 5, 6, 7], np.int32)
    window_starts = np.array([0, 1, 3, 4], np.int64)
    sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, np.zeros(1, np.int32), 0, 0.4, 0.0, 1,
                       1, 1)
    lrs = [0.4, 0.4 * (1 - 1 / 4), 0.4 * (1 - 3 / 4)]  # windows start at pairs 0, 1, 3 of 4
    np.testing.assert_allclose(output_w[:3, 0], [lr / 2 * 0.1 * k for lr, k in zip(lrs, [1, 2, 1])], rtol=1e-6)


def test_ns_window_kernel_reruns_are_bit_identical_with_one_thread():
    rng = np.random.default_rng(2)
    vocab, dim = 50, 16
    start_in, start_out = tables(rng, vocab, dim)
    target, context, window_starts = window_batch(rng, vocab, 400)
    table = word_table(rng.integers(0, vocab, 1000), vocab)
    runs = []
    for _ in range(2):
        input_w, output_w = start_in.copy(), start_out.copy()
        loss = sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, 5, 0.05, 0.01, 3, 1, 1)
        runs.append((input_w, output_w, loss))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_ns_window_kernel_threads_split_the_windows():
    # The halves of the batch touch disjoint rows (the table draws from the second half's rows, which the first
    # half's windows leave alone only when drawn there too: so no negatives), so 2 threads equal 1 exactly.
    rng = np.random.default_rng(6)
    vocab, dim = 40, 8
    start_in, start_out = tables(rng, vocab, dim)
    first = window_batch(rng, 20, 50)
    second = window_batch(rng, 20, 50)
    target = np.concatenate([first[0], second[0] + 20])
    context = np.concatenate([first[1], second[1] + 20])
    window_starts = np.concatenate([first[2], second[2][1:] + first[2][-1]])
    runs = []
    for threads in (1, 2):
        input_w, output_w = start_in.copy(), start_out.copy()
        loss = sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, np.zeros(1, np.int32), 0,
                                  0.05, 0.05, 3, threads, 1)
        runs.append((input_w, output_w, loss))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[1][2] == pytest.approx(runs[0][2], rel=1e-12)


def test_hs_window_kernel_matches_numpy_reference():
    rng = np.random.default_rng(3)
    vocab, dim = 11, 8
    counts = np.sort(rng.integers(1, 200, vocab))[::-1]
    tree = build_huffman(counts)
    input_w = rng.normal(0, 0.3, (vocab, dim)).astype(np.float32)
    inner_w = rng.normal(0, 0.3, (vocab - 1, dim)).astype(np.float32)
    input_w[0] *= 20  # some scores beyond +-MAX_SCORE: those nodes are skipped
    target, context, window_starts = window_batch(rng, vocab, 30)
    expected_in, expected_inner, expected_loss = hs_reference(input_w, inner_w, target, context, window_starts,
                                                              tree, 0.08, 0.02)
    sampled_in, sampled_inner = input_w.copy(), inner_w.copy()
    loss = sg_window_hs_step_cpu(input_w, inner_w, target[window_starts[:-1]], context, window_starts, tree.paths, tree.codes,
                                 tree.lengths, 0.08, 0.02, 1, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(inner_w, expected_inner, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-5)
    sampled_loss = sg_window_hs_step_cpu(sampled_in, sampled_inner, target[window_starts[:-1]], context, window_starts, tree.paths,
                                         tree.codes, tree.lengths, 0.08, 0.02, 1, 4)
    np.testing.assert_array_equal(sampled_in, input_w)
    np.testing.assert_array_equal(sampled_inner, inner_w)
    n = len(target)
    assert sampled_loss == pytest.approx(expected_loss[::4].sum() * n / len(range(0, n, 4)), rel=1e-5)


def test_hs_window_kernel_reruns_are_identical_with_one_thread():
    rng = np.random.default_rng(4)
    vocab, dim = 60, 16
    tree = build_huffman(np.sort(rng.integers(1, 1000, vocab))[::-1])
    target, context, window_starts = window_batch(rng, vocab, 300)
    start_in = rng.normal(0, 0.3, (vocab, dim)).astype(np.float32)
    start_inner = rng.normal(0, 0.3, (vocab - 1, dim)).astype(np.float32)
    runs = []
    for _ in range(2):
        input_w, inner_w = start_in.copy(), start_inner.copy()
        loss = sg_window_hs_step_cpu(input_w, inner_w, target[window_starts[:-1]], context, window_starts, tree.paths, tree.codes,
                                     tree.lengths, 0.05, 0.01, 1, 1)
        runs.append((input_w, inner_w, loss))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def planted_windows(rng, clusters: int, per_cluster: int, n_windows: int):
    """Windows whose contexts are words of the target's own cluster (vocabulary: clusters x per_cluster)."""
    cluster = rng.integers(0, clusters, n_windows)
    sizes = rng.integers(2, 7, n_windows)
    window_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    target = np.repeat(cluster * per_cluster + rng.integers(0, per_cluster, n_windows), sizes).astype(np.int32)
    context = (np.repeat(cluster, sizes) * per_cluster + rng.integers(0, per_cluster, sizes.sum())).astype(np.int32)
    return target, context, window_starts


def share_in_cluster(vectors: np.ndarray, per_cluster: int, k: int = 5) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    nearest = np.argsort(-cosine, axis=1)[:, :k]
    return float(np.mean(nearest // per_cluster == (np.arange(len(vectors)) // per_cluster)[:, None]))


@pytest.mark.parametrize("loss", ["ns", "hs"])
def test_window_kernels_learn_planted_clusters(loss):
    rng = np.random.default_rng(5)
    clusters, per_cluster, dim = 6, 8, 20
    vocab = clusters * per_cluster
    input_w = ((rng.random((vocab, dim)) - 0.5) / dim).astype(np.float32)
    output_w = np.zeros((vocab if loss == "ns" else vocab - 1, dim), np.float32)
    tree = build_huffman(np.full(vocab, 10))
    table = word_table(np.arange(vocab))
    for batch in range(20):
        target, context, window_starts = planted_windows(rng, clusters, per_cluster, 2000)
        lr = 0.05 * (1 - batch / 20)
        if loss == "ns":
            sg_window_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, 5, lr, lr, batch, 1, 16)
        else:
            sg_window_hs_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, tree.paths, tree.codes,
                                  tree.lengths, lr, lr, 1, 16)
    assert share_in_cluster(input_w, per_cluster) > 0.95
