import numpy as np
import pytest
import torch

from word2vec import SkipGram, nearest_neighbours, sgns_step_cpu, sgns_step_torch


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


def test_torch_step_equals_autograd_sgd_step():
    # Distinct rows in the batch: one closed-form step must equal weight -= lr * autograd gradient.
    model = small_model()
    target = torch.tensor([0, 1], dtype=torch.int32)
    context = torch.tensor([2, 3], dtype=torch.int32)
    negatives = torch.tensor([[4, 5, 6], [7, 8, 9]], dtype=torch.int32)
    loss, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.1 * grad_in
    expected_out = model.output.weight.detach() - 0.1 * grad_out
    step_loss = sgns_step_torch(model, target, context, negatives, 0.1, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def test_torch_step_sums_repeated_rows_like_autograd():
    model = small_model()
    target = torch.tensor([0, 0, 1], dtype=torch.int32)
    context = torch.tensor([2, 2, 0], dtype=torch.int32)
    negatives = torch.tensor([[4, 4], [2, 5], [4, 1]], dtype=torch.int32)
    _, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.05 * grad_in
    expected_out = model.output.weight.detach() - 0.05 * grad_out
    sgns_step_torch(model, target, context, negatives, 0.05, 0.05)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def numpy_reference(input_w, output_w, target, context, negatives, lr):
    """word2vec.c's skip-gram inner loop written plainly, pair after pair."""
    input_w, output_w, pair_losses = input_w.copy(), output_w.copy(), []
    for t, c, negs in zip(target, context, negatives):
        u = input_w[t].astype(np.float64)
        grad_u = np.zeros_like(u)
        pair_losses.append(0.0)
        for o, label in [(c, 1.0)] + [(n, 0.0) for n in negs]:
            v = output_w[o].astype(np.float64)
            score = u @ v
            pair_losses[-1] += np.log1p(np.exp(-score if label else score))
            g = (label - 1 / (1 + np.exp(-score))) * lr
            grad_u += g * v
            output_w[o] = v + g * u
        input_w[t] = u + grad_u
    return input_w, output_w, np.array(pair_losses)


def test_cpu_kernel_matches_numpy_reference_pair_by_pair():
    rng = np.random.default_rng(0)
    input_w = rng.normal(0, 0.3, (15, 8)).astype(np.float32)
    output_w = rng.normal(0, 0.3, (15, 8)).astype(np.float32)
    target = rng.integers(0, 15, 40).astype(np.int32)
    context = rng.integers(0, 15, 40).astype(np.int32)
    negatives = rng.integers(0, 15, (40, 4)).astype(np.int32)  # repeats included: order of updates matters
    expected_in, expected_out, expected_loss = numpy_reference(input_w, output_w, target, context, negatives, 0.05)
    sampled_in, sampled_out = input_w.copy(), output_w.copy()
    loss = sgns_step_cpu(input_w, output_w, target, context, negatives, 0.05, 0.05, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(output_w, expected_out, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-4)

    # loss_every=3: the same updates, the loss of pairs 0, 3, 6, ... scaled to all 40 pairs
    sampled_loss = sgns_step_cpu(sampled_in, sampled_out, target, context, negatives, 0.05, 0.05, 1, 3)
    np.testing.assert_array_equal(sampled_in, input_w)
    np.testing.assert_array_equal(sampled_out, output_w)
    assert sampled_loss == pytest.approx(expected_loss[::3].sum() * 40 / 14, rel=1e-4)


def test_cpu_kernel_single_pair_equals_autograd():
    model = small_model()
    target = torch.tensor([3], dtype=torch.int32)
    context = torch.tensor([7], dtype=torch.int32)
    negatives = torch.tensor([[1, 2, 9, 10, 11]], dtype=torch.int32)
    _, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    expected_in = model.input.weight.detach() - 0.2 * grad_in
    expected_out = model.output.weight.detach() - 0.2 * grad_out
    sgns_step_cpu(model.input.weight.data.numpy(), model.output.weight.data.numpy(), target.numpy(),
                  context.numpy(), negatives.numpy(), 0.2, 0.2, 1)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def test_cpu_kernel_saturates_like_word2vec_c():
    input_w = np.full((3, 4), 2.0, np.float32)
    output_w = np.full((3, 4), 2.0, np.float32)  # score 16 > MAX_EXP: the positive pair gives no gradient
    before = input_w.copy()
    sgns_step_cpu(input_w, output_w, np.array([0], np.int32), np.array([1], np.int32),
                  np.zeros((1, 0), np.int32), 0.1, 0.1, 1)
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
    from word2vec import counter_draws
    counters = np.arange(200_000, dtype=np.int64)
    draws = counter_draws(7, counters, 10)
    assert draws.min() == 0 and draws.max() == 9
    frequencies = np.bincount(draws, minlength=10) / len(draws)
    assert np.abs(frequencies - 0.1).max() < 0.005
    # the same (seed, counter) gives the same draw in any order; another seed gives others
    shuffled = np.random.default_rng(0).permutation(counters)
    assert np.array_equal(counter_draws(7, shuffled, 10), draws[shuffled])
    assert (counter_draws(8, counters, 10) != draws).mean() > 0.85
    # consecutive counters are not correlated (a window's negatives are consecutive counters)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.01
