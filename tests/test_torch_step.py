"""The torch (GPU) steps: against the sequential kernel, against autograd, the count scaling, planted clusters."""
import numpy as np
import pytest
import torch

from test_hierarchical_softmax import planted_pairs
from test_word2vec import autograd_gradients
from word2vec import (SkipGram, nearest_neighbours, row_count_scale, sgns_step_cpu, sgns_step_shared,
                      sgns_step_torch, shared_negative_groups)


def random_model(vocab_size: int, dim: int, seed: int = 3, scale: float = 0.3) -> SkipGram:
    model = SkipGram(vocab_size, dim, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # both tables non-zero, so every gradient term is exercised
        model.input.weight.copy_(torch.randn(vocab_size, dim, generator=generator) * scale)
        model.output.weight.copy_(torch.randn(vocab_size, dim, generator=generator) * scale)
    return model


def counts_of(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    return torch.from_numpy(np.bincount(ids.reshape(-1).numpy(), minlength=vocab_size)).float().clamp_min(1)


@pytest.mark.parametrize("micro_batch", [0, 3, 4])
@pytest.mark.parametrize("count_power", [0.0, 1.0])
def test_torch_step_equals_sequential_kernel_when_rows_are_distinct(micro_batch, count_power):
    # No row twice in the batch (inputs among inputs, outputs among contexts and negatives): no pair can see
    # another's update, so the batched step must land exactly where word2vec.c's pair-by-pair loop lands,
    # and the count scaling (every count 1) must change nothing.
    n_pairs, n_negatives, vocab_size, dim = 8, 4, 64, 10
    rng = np.random.default_rng(5)
    target = rng.permutation(vocab_size)[:n_pairs].astype(np.int32)
    outputs = rng.permutation(vocab_size)[:n_pairs * (n_negatives + 1)].astype(np.int32)
    context, negatives = outputs[:n_pairs], outputs[n_pairs:].reshape(n_pairs, n_negatives)
    model = random_model(vocab_size, dim)
    input_w, output_w = model.input.weight.detach().numpy().copy(), model.output.weight.detach().numpy().copy()
    cpu_loss = sgns_step_cpu(input_w, output_w, target, context, negatives, 0.2, 0.2, 1)
    torch_loss = sgns_step_torch(model, torch.from_numpy(target), torch.from_numpy(context),
                                 torch.from_numpy(negatives), 0.2, 0.2, micro_batch, count_power=count_power)
    assert not np.allclose(input_w, random_model(vocab_size, dim).input.weight.detach().numpy())  # it moved
    np.testing.assert_allclose(model.input.weight.detach().numpy(), input_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.output.weight.detach().numpy(), output_w, rtol=1e-5, atol=1e-6)
    assert torch_loss == pytest.approx(cpu_loss, rel=1e-5)


def test_row_count_scale_is_count_to_the_minus_power_per_occurrence():
    ids = torch.tensor([[3, 1], [3, 3], [0, 1]])
    assert row_count_scale(ids, 5, 0.0).tolist() == [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    torch.testing.assert_close(row_count_scale(ids, 5, 1.0),
                               torch.tensor([[1 / 3, 1 / 2], [1 / 3, 1 / 3], [1.0, 1 / 2]]))
    torch.testing.assert_close(row_count_scale(ids, 5, 0.5),
                               torch.tensor([[3 ** -0.5, 2 ** -0.5], [3 ** -0.5, 3 ** -0.5], [1.0, 2 ** -0.5]]))
    # weighted: an occurrence standing for 4 summed gradients counts 4 times; weight 0 (padding) not at all
    # free 2: rows seen at most twice keep their sum; row 3 (3 times) is scaled by (3 / 2)^-1
    torch.testing.assert_close(row_count_scale(ids, 5, 1.0, free=2.0),
                               torch.tensor([[2 / 3, 1.0], [2 / 3, 2 / 3], [1.0, 1.0]]))
    weights = torch.tensor([[4.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(row_count_scale(ids, 5, 1.0, weights),
                               torch.tensor([[1 / 5, 1 / 2], [1 / 5, 1 / 5], [1.0, 1 / 2]]))


@pytest.mark.parametrize("count_power, count_free", [(1.0, 1.0), (0.5, 1.0), (1.0, 3.0)])
def test_torch_step_count_power_divides_each_rows_summed_gradient_exactly(count_power, count_free):
    # Rows repeated in one micro-batch: the update must be lr * autograd's summed gradient / count^power,
    # with the counts taken separately in the input table (targets) and the output table (contexts + negatives).
    vocab_size = 12
    model = random_model(vocab_size, 6)
    target = torch.tensor([0, 0, 0, 1, 2], dtype=torch.int32)
    context = torch.tensor([2, 2, 0, 5, 2], dtype=torch.int32)
    negatives = torch.tensor([[4, 4], [2, 5], [4, 1], [7, 8], [9, 4]], dtype=torch.int32)
    _, grad_in, grad_out = autograd_gradients(model, target, context, negatives)
    in_counts = counts_of(target, vocab_size)
    out_counts = counts_of(torch.cat([context[:, None], negatives], 1), vocab_size)
    assert in_counts[0] == 3 and out_counts[2] == 4 and out_counts[4] == 4  # the case is what it claims
    in_scale = (in_counts / count_free).clamp_min(1) ** count_power
    out_scale = (out_counts / count_free).clamp_min(1) ** count_power
    expected_in = model.input.weight.detach() - 0.05 * grad_in / in_scale[:, None]
    expected_out = model.output.weight.detach() - 0.05 * grad_out / out_scale[:, None]
    sgns_step_torch(model, target, context, negatives, 0.05, 0.05, count_power=count_power, count_free=count_free)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def expand_shared(negatives: torch.Tensor, n_pairs: int, group: int) -> torch.Tensor:
    """The per-pair negatives the shared step stands for: pair p uses set p // group."""
    return negatives[torch.arange(n_pairs) // group]


@pytest.mark.parametrize("n_pairs, group", [(12, 4), (7, 3), (5, 8), (6, 1)])
@pytest.mark.parametrize("count_power, count_free", [(0.0, 1.0), (1.0, 1.0), (1.0, 2.0)])
@pytest.mark.parametrize("layout", ["block", "split"])
def test_shared_step_equals_autograd_on_the_expanded_negatives(n_pairs, group, count_power, count_free, layout):
    # One micro-batch: the step must equal SGD on the summed loss of every pair with its group's negatives
    # (short last group included), each row's gradient divided by its count^power (a shared negative counts
    # once per pair of its group).
    vocab_size, n_negatives = 20, 3
    rng = np.random.default_rng(n_pairs * 10 + group)
    model = random_model(vocab_size, 5)
    target = torch.from_numpy(rng.integers(vocab_size, size=n_pairs).astype(np.int32))
    context = torch.from_numpy(rng.integers(vocab_size, size=n_pairs).astype(np.int32))
    negatives = torch.from_numpy(
        rng.integers(vocab_size, size=(shared_negative_groups(n_pairs, group), n_negatives)).astype(np.int32))
    expanded = expand_shared(negatives, n_pairs, group)
    loss, grad_in, grad_out = autograd_gradients(model, target, context, expanded)
    in_counts = (counts_of(target, vocab_size) / count_free).clamp_min(1) ** count_power
    out_counts = (counts_of(torch.cat([context[:, None], expanded], 1), vocab_size) / count_free).clamp_min(1) \
        ** count_power
    expected_in = model.input.weight.detach() - 0.1 * grad_in / in_counts[:, None]
    expected_out = model.output.weight.detach() - 0.1 * grad_out / out_counts[:, None]
    step_loss = sgns_step_shared(model, target, context, negatives, 0.1, 0.1, 0, group, count_power=count_power,
                                 count_free=count_free, layout=layout)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


@pytest.mark.parametrize("layout", ["block", "split"])
def test_shared_step_micro_batches_are_successive_updates(layout):
    # micro_batch 5 with groups of 3 is rounded up to 6: two updates, pairs 0-5 then 6-9, each at its own lr.
    vocab_size, group = 15, 3
    rng = np.random.default_rng(2)
    target = torch.from_numpy(rng.integers(vocab_size, size=10).astype(np.int32))
    context = torch.from_numpy(rng.integers(vocab_size, size=10).astype(np.int32))
    negatives = torch.from_numpy(rng.integers(vocab_size, size=(4, 2)).astype(np.int32))
    reference = random_model(vocab_size, 4)
    lrs = [0.2 + (0.1 - 0.2) * (0 + 6) / 2 / 10, 0.2 + (0.1 - 0.2) * (6 + 10) / 2 / 10]  # midpoints
    for (start, stop), lr in zip([(0, 6), (6, 10)], lrs):
        _, grad_in, grad_out = autograd_gradients(reference, target[start:stop], context[start:stop],
                                                  expand_shared(negatives[start // group:], stop - start, group))
        with torch.no_grad():
            reference.input.weight.sub_(lr * grad_in)
            reference.output.weight.sub_(lr * grad_out)
    model = random_model(vocab_size, 4)
    sgns_step_shared(model, target, context, negatives, 0.2, 0.1, 5, group, layout=layout)
    torch.testing.assert_close(model.input.weight.detach(), reference.input.weight.detach())
    torch.testing.assert_close(model.output.weight.detach(), reference.output.weight.detach())


@pytest.mark.parametrize("count_power", [0.0, 0.5])
def test_shared_step_layouts_agree_on_a_real_sized_batch(count_power):
    # Saturated scores included (large vectors): the two layouts are the same update, to float rounding.
    vocab_size, n_pairs, group = 500, 3000, 32
    rng = np.random.default_rng(4)
    target = torch.from_numpy(rng.zipf(1.3, n_pairs).clip(1, vocab_size).astype(np.int32) - 1)
    context = torch.from_numpy(rng.zipf(1.3, n_pairs).clip(1, vocab_size).astype(np.int32) - 1)
    negatives = torch.from_numpy(rng.integers(vocab_size, size=(shared_negative_groups(n_pairs, group), 5))
                                 .astype(np.int32))
    models = {layout: random_model(vocab_size, 16, scale=1.0) for layout in ("block", "split")}
    losses = {layout: sgns_step_shared(model, target, context, negatives, 0.05, 0.01, 1000, group,
                                       count_power=count_power, layout=layout) for layout, model in models.items()}
    assert losses["block"] == pytest.approx(losses["split"], rel=1e-5)
    torch.testing.assert_close(models["block"].input.weight, models["split"].input.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(models["block"].output.weight, models["split"].output.weight, rtol=1e-4, atol=1e-5)


def test_shared_step_checks_its_negatives():
    model = random_model(10, 4)
    pairs = torch.zeros(10, dtype=torch.int32)
    with pytest.raises(ValueError, match="10 pairs in groups of 4 need 3 negative sets, got 2"):
        sgns_step_shared(model, pairs, pairs, torch.zeros((2, 5), dtype=torch.int32), 0.1, 0.1, 0, 4)


@pytest.mark.parametrize("step", ["torch", "shared"])
def test_planted_clusters_are_learned_at_the_gpu_micro_batch(step, one_torch_thread):
    # The GPU settings proposed in bench/RESULTS.md: micro-batches of 8,192 pairs, no count scaling, the shared
    # step in groups of 32. 20 clusters of 50 words and 5 filler words that make a quarter of the contexts: the
    # fillers repeat hundreds of times per micro-batch, as `the` does in text8. The same data in micro-batches
    # of 65,536 must fail (summed stale updates of the fillers blow up), or the test could not tell.
    clusters, per_cluster, fillers = 20, 50, 5
    vocab_size = clusters * per_cluster + fillers
    rng = np.random.default_rng(0)
    target, context = planted_pairs(rng, clusters, per_cluster, fillers, 400_000)
    counts = np.bincount(context, minlength=vocab_size) ** 0.75
    table = torch.from_numpy(np.repeat(np.arange(vocab_size), np.round(counts / counts.sum() * 100_000).astype(int)))

    def train(micro_batch: int) -> tuple[SkipGram, float]:
        generator = torch.Generator().manual_seed(1)
        model = SkipGram(vocab_size, 24, seed=1)
        batches = np.array_split(np.arange(len(target)), 8)
        for i, batch in enumerate(batches):
            lr_start, lr_end = 0.04 * (1 - i / len(batches)), 0.04 * (1 - (i + 1) / len(batches))
            t, c = torch.from_numpy(target[batch]), torch.from_numpy(context[batch])
            rows = shared_negative_groups(len(batch), 32) if step == "shared" else len(batch)
            negatives = table[torch.randint(len(table), (rows, 5), generator=generator)]
            if step == "torch":
                loss = sgns_step_torch(model, t, c, negatives, lr_start, lr_end, micro_batch)
            else:
                loss = sgns_step_shared(model, t, c, negatives, lr_start, lr_end, micro_batch, 32)
        return model, loss / len(batch)

    def in_cluster(model: SkipGram) -> float:
        words = [f"w{i}" for i in range(vocab_size)]
        queries = words[:clusters * per_cluster]
        found = nearest_neighbours(words, model.input.weight.detach(), queries, k=5)
        return np.mean([int(w[1:]) // per_cluster == int(q[1:]) // per_cluster for q in queries for w, _ in found[q]])

    model, loss = train(8192)
    assert loss < 3.0
    share = in_cluster(model)
    assert share > 0.95, f"only {share:.0%} of the 5 nearest neighbours share the planted cluster"
    model, loss = train(65536)
    assert not loss < 10.0 and in_cluster(model) < 0.5
