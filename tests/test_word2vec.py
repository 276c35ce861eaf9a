import numpy as np
import pytest
import torch

from w2v.kernels.cpu import sg_window_step_cpu, unigram_draws
from w2v.kernels.torch_steps import sg_window_step_torch
from word2vec import SkipGram, nearest_neighbours
from helpers import word_table
from word2vec_c_oracle import one_pair_windows, sgns_pairs


def small_model(vocab_size=12, dim=6, seed=3):
    model = SkipGram(vocab_size, dim, seed=seed)
    with torch.no_grad():  # non-zero output vectors so every gradient term is exercised
        model.output.weight.copy_(torch.randn(vocab_size, dim, generator=torch.Generator().manual_seed(seed)) * 0.3)
        model.input.weight.mul_(40)
    return model


def autograd_gradients(model, target, context, negatives):
    model.zero_grad()
    loss = model(target, context, negatives)
    loss.backward()
    return loss.item(), model.input.weight.grad.to_dense(), model.output.weight.grad.to_dense()


def test_initialisation_matches_word2vec_c():
    model = SkipGram(1000, 50, seed=1)
    weights = model.input.weight.detach()
    assert weights.abs().max() <= 0.5 / 50
    assert weights.std() == pytest.approx((1 / 50) / np.sqrt(12), rel=0.05)  # uniform over a width of 1/dim
    assert torch.count_nonzero(model.output.weight) == 0
    assert torch.equal(SkipGram(1000, 50, seed=1).input.weight, weights)


def test_init_range_scales_the_same_draws_and_its_default_is_word2vec_c():
    default = SkipGram(1000, 50, seed=1).input.weight.detach()
    assert torch.equal(SkipGram(1000, 50, seed=1, init_range=0.5).input.weight, default)
    wide = SkipGram(1000, 50, seed=1, init_range=1.0).input.weight.detach()  # gensim 4's +-1/dim
    torch.testing.assert_close(wide, 2 * default)
    assert wide.abs().max() <= 1.0 / 50 and wide.abs().max() > 0.99 / 50
    assert torch.count_nonzero(SkipGram(1000, 50, seed=1, init_range=1.0).output.weight) == 0


def one_pair_step_torch(model, target, context, negatives, lr):
    """sg_window_step_torch on windows of one pair each: the window's target owns the output side, so a pair
    (t, c) of SkipGram.forward is the window of target c and context t."""
    return sg_window_step_torch(model, context, target, torch.arange(len(target) + 1), negatives, lr, lr)


def test_torch_step_equals_autograd_sgd_step():
    # Distinct rows in the batch: one closed-form step must equal weight -= lr * autograd gradient.
    model = small_model()
    target = torch.tensor([0, 1], dtype=torch.int32)
    context = torch.tensor([2, 3], dtype=torch.int32)
    negatives = torch.tensor([[4, 5, 6], [7, 8, 9]], dtype=torch.int32)
    loss, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.1 * grad_in
    expected_out = model.output.weight.detach() - 0.1 * grad_out
    step_loss = one_pair_step_torch(model, target, context, negatives, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def test_torch_step_sums_repeated_rows_like_autograd():
    model = small_model()
    target = torch.tensor([0, 0, 1], dtype=torch.int32)
    context = torch.tensor([2, 2, 0], dtype=torch.int32)
    negatives = torch.tensor([[4, 4], [3, 5], [4, 1]], dtype=torch.int32)  # none equal to its pair's context
    _, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.05 * grad_in
    expected_out = model.output.weight.detach() - 0.05 * grad_out
    one_pair_step_torch(model, target, context, negatives, 0.05)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def kernel_negatives(seed: int, table: np.ndarray, n_windows: int, negatives: int) -> np.ndarray:
    """[W, K]: the negatives sg_window_step_cpu draws for each window (unigram_draw)."""
    counters = np.arange(n_windows * negatives)
    return unigram_draws(table, seed, counters).reshape(n_windows, negatives)


def test_window_kernel_on_one_pair_windows_is_word2vec_c_pair_by_pair():
    rng = np.random.default_rng(0)
    input_w = rng.normal(0, 0.3, (15, 8)).astype(np.float32)
    output_w = rng.normal(0, 0.3, (15, 8)).astype(np.float32)
    target = rng.integers(0, 15, 30).astype(np.int32)  # repeats included: order of updates matters
    context = rng.integers(0, 15, 30).astype(np.int32)
    table = word_table(np.arange(15))
    # word2vec.c trains a row drawn twice for one pair twice in turn, a window block once with both gradients:
    # a seed whose windows draw no row twice, so the two must agree exactly
    seed = next(seed for seed in range(10_000)
                if all(len(set(row)) == len(row) for row in kernel_negatives(seed, table, 30, 3)))
    negatives = kernel_negatives(seed, table, 30, 3)
    assert any(t in row for t, row in zip(target, negatives))  # negatives equal to the output word: skipped
    expected_in, expected_out, expected_loss = sgns_pairs(input_w, output_w, context, target, negatives, 0.05, 0.02)
    sampled_in, sampled_out = input_w.copy(), output_w.copy()
    starts = one_pair_windows(30)
    loss = sg_window_step_cpu(input_w, output_w, target, context, starts, table, 3, 0.05, 0.02, seed, 1, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(output_w, expected_out, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-4)

    # loss_every=3: the same updates, the loss of pairs 0, 3, 6, ... scaled to all 30 pairs
    sampled_loss = sg_window_step_cpu(sampled_in, sampled_out, target, context, starts, table, 3, 0.05, 0.02, seed,
                                      1, 3)
    np.testing.assert_array_equal(sampled_in, input_w)
    np.testing.assert_array_equal(sampled_out, output_w)
    assert sampled_loss == pytest.approx(expected_loss[::3].sum() * 30 / 10, rel=1e-4)


def test_window_kernel_single_pair_equals_autograd():
    model = small_model()
    table = word_table(np.array([1, 2, 9, 10, 11]), 15)
    negatives = torch.from_numpy(kernel_negatives(5, table, 1, 5))  # rows drawn twice get both gradients
    target = torch.tensor([3], dtype=torch.int32)
    context = torch.tensor([7], dtype=torch.int32)
    _, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.2 * grad_in
    expected_out = model.output.weight.detach() - 0.2 * grad_out
    sg_window_step_cpu(model.input.weight.data.numpy(), model.output.weight.data.numpy(), context.numpy(),
                       target.numpy(), one_pair_windows(1), table, 5, 0.2, 0.2, 5, 1, 1)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def test_window_kernel_saturates_like_word2vec_c():
    input_w = np.full((3, 4), 2.0, np.float32)
    output_w = np.full((3, 4), 2.0, np.float32)  # score 16 > MAX_EXP: the positive pair gives no gradient
    before = input_w.copy()
    sg_window_step_cpu(input_w, output_w, np.array([1], np.int32), np.array([0], np.int32), one_pair_windows(1),
                       word_table(np.array([2])), 0, 0.1, 0.1, 1, 1, 1)
    np.testing.assert_array_equal(input_w, before)


def test_nearest_neighbours_by_cosine():
    words = ["a", "b", "c", "d"]
    vectors = np.array([[1, 0], [0.9, 0.1], [0.1, 1], [-1, 0]], np.float32)
    found = nearest_neighbours(words, vectors, ["a", "c"], k=2)
    assert [w for w, _ in found["a"]] == ["b", "c"]
    assert found["a"][0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert [w for w, _ in found["c"]] == ["b", "a"]
    with pytest.raises(KeyError, match="unknown word: zz"):
        nearest_neighbours(words, vectors, ["zz"])
    model = SkipGram(4, 2, words=words)
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(vectors))
    assert model.nearest(["d"], k=1)["d"][0][0] == "c"


def test_counter_draw_is_uniform_and_depends_on_seed_and_counter_only():
    counters = np.arange(200_000, dtype=np.int64)
    uniform = word_table(np.arange(10))
    draws = unigram_draws(uniform, 7, counters)
    assert draws.min() == 0 and draws.max() == 9
    frequencies = np.bincount(draws, minlength=10) / len(draws)
    assert np.abs(frequencies - 0.1).max() < 0.005
    # the same (seed, counter) gives the same draw in any order; another seed gives others
    shuffled = np.random.default_rng(0).permutation(counters)
    assert np.array_equal(unigram_draws(uniform, 7, shuffled), draws[shuffled])
    assert (unigram_draws(uniform, 8, counters) != draws).mean() > 0.85
    # consecutive counters are not correlated (a window's negatives are consecutive counters)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.01
