"""Hierarchical softmax: the Huffman tree, the loss, and the skip-gram window steps against autograd and\nword2vec.c's pair loop (tests/word2vec_c_oracle.py)."""
import heapq
import os
import time

import numpy as np
import pytest
import torch

from w2v.kernels.cpu import sg_window_hs_step_cpu
from w2v.kernels.torch_steps import sg_window_hs_step_torch
from word2vec import SkipGram, nearest_neighbours
from w2v.kernels import MAX_SCORE
from w2v.huffman import HuffmanTree, build_huffman, huffman_for
from word2vec_c_oracle import hs_pairs, one_pair_windows
from helpers import TRAIN_ARGS, run_stages, write_corpus


def optimal_cost(counts):
    """Huffman's optimal sum(count * code length) = the sum of all merged weights (independent of our tree)."""
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        cost += merged
        heapq.heappush(heap, merged)
    return cost


def code_strings(tree):
    return ["".join(map(str, tree.codes[w, :tree.lengths[w]])) for w in range(tree.vocab_size)]


def assert_valid_tree(tree, counts):
    n_words = len(counts)
    assert tree.paths.shape == tree.codes.shape == (n_words, tree.max_len)
    assert tree.paths.dtype == np.int32 and tree.codes.dtype == np.int8 and tree.lengths.dtype == np.int32
    assert tree.max_len == tree.lengths.max()
    codes = code_strings(tree)
    assert len(set(codes)) == n_words
    ordered = sorted(codes)  # a code that is a prefix of another sorts right before some code it prefixes
    assert not any(b.startswith(a) for a, b in zip(ordered, ordered[1:]))
    # Each prefix of a code names exactly one inner node, each inner node one prefix: a binary tree with V-1 nodes.
    node_of_prefix = {}
    for w, code in enumerate(codes):
        assert tree.paths[w, 0] == n_words - 2  # every path starts at the root
        for j in range(tree.lengths[w]):
            assert node_of_prefix.setdefault(code[:j], tree.paths[w, j]) == tree.paths[w, j]
        assert not tree.paths[w, tree.lengths[w]:].any() and not tree.codes[w, tree.lengths[w]:].any()
    assert sorted(node_of_prefix.values()) == list(range(n_words - 1))
    assert int((np.asarray(counts, np.int64) * tree.lengths).sum()) == optimal_cost(counts)
    # A strictly more frequent word never has a longer code (else swapping the two would lower the cost).
    more_frequent = np.asarray(counts)[:, None] > np.asarray(counts)[None, :]
    assert not (more_frequent & (tree.lengths[:, None] > tree.lengths[None, :])).any()


@pytest.mark.parametrize("seed", range(6))
def test_huffman_tree_is_an_optimal_prefix_code(seed):
    rng = np.random.default_rng(seed)
    n_words = int(rng.integers(2, 300))
    counts = rng.integers(1, [3, 20, 1000, 10**9, 5, 50][seed], n_words)  # small ranges: many ties
    if seed % 2:
        counts = np.sort(counts)[::-1]  # vocab.json order (the no-sort path)
    assert_valid_tree(build_huffman(counts), counts)


def test_huffman_tree_known_shapes():
    assert build_huffman(np.array([9])).lengths.tolist() == [0]
    two = build_huffman(np.array([3, 8]))
    assert two.lengths.tolist() == [1, 1] and two.paths[:, 0].tolist() == [0, 0]
    assert sorted(two.codes[:, 0].tolist()) == [0, 1]
    equal = build_huffman(np.full(16, 7))  # 16 equal counts: a complete tree of depth 4
    assert equal.lengths.tolist() == [4] * 16
    zipf = np.array([2**k for k in range(12, 0, -1)] + [1])  # each word as frequent as all rarer ones together
    assert build_huffman(zipf).lengths.tolist() == list(range(1, 13)) + [12]


def test_huffman_tree_save_load_and_reuse(tmp_path):
    counts = np.array([50, 20, 20, 7, 3, 1])
    (tmp_path / "vocab.json").write_text("{}")
    tree = huffman_for(tmp_path, counts)
    loaded = HuffmanTree.load(tmp_path / "huffman.npz")
    for name in ("paths", "codes", "lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tree, name))
        assert getattr(loaded, name).dtype == getattr(tree, name).dtype
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huffman.npz", "vocab.json"]  # no temporary left

    # Kept while vocab.json is older and of the same size: a stale marker in the file shows it was not rebuilt.
    marked = HuffmanTree(tree.paths, tree.codes, tree.lengths + 100)
    marked.save(tmp_path / "huffman.npz")
    assert huffman_for(tmp_path, counts).lengths.tolist() == (tree.lengths + 100).tolist()
    # Another vocabulary size: rebuilt.
    assert huffman_for(tmp_path, counts[:4]).vocab_size == 4
    assert HuffmanTree.load(tmp_path / "huffman.npz").vocab_size == 4
    # vocab.json rewritten after the tree: rebuilt.
    marked.save(tmp_path / "huffman.npz")
    later = time.time() + 10
    os.utime(tmp_path / "vocab.json", (later, later))
    assert huffman_for(tmp_path, counts).lengths.tolist() == tree.lengths.tolist()
    # An unreadable file, newer than vocab.json: rebuilt.
    os.utime(tmp_path / "vocab.json", (later - 100, later - 100))
    (tmp_path / "huffman.npz").write_bytes(b"not a zip")
    assert huffman_for(tmp_path, counts).lengths.tolist() == tree.lengths.tolist()
    assert HuffmanTree.load(tmp_path / "huffman.npz").lengths.tolist() == tree.lengths.tolist()


def hs_model(vocab_size=13, dim=6, seed=3, scale=0.5):
    model = SkipGram(vocab_size, dim, seed=seed, loss="hs")
    with torch.no_grad():  # non-zero inner vectors so every gradient term is exercised
        model.inner.weight.copy_(torch.randn(vocab_size - 1, dim, generator=torch.Generator().manual_seed(seed))
                                 * scale)
        model.input.weight.mul_(20)
    return model


def assert_unsaturated(model):
    """Scores within +-MAX_EXP everywhere, where the steps follow the exact gradient (outside they skip)."""
    scores = (model.input.weight @ model.inner.weight.T).detach()
    assert 0.5 < scores.abs().max() < MAX_SCORE


def tree_for(vocab_size=13, seed=0):
    return build_huffman(np.random.default_rng(seed).integers(1, 40, vocab_size))


def test_hs_model_tables():
    model = SkipGram(50, 8, seed=1, loss="hs")
    assert model.inner.weight.shape == (49, 8) and torch.count_nonzero(model.inner.weight) == 0
    assert not hasattr(model, "output")
    assert set(model.state_dict()) == {"input.weight", "inner.weight"}
    torch.testing.assert_close(model.input.weight, SkipGram(50, 8, seed=1).input.weight)  # same start as NS
    with pytest.raises(ValueError, match="'ns' or 'hs'"):
        SkipGram(5, 2, loss="softmax")


def test_probabilities_over_the_vocabulary_sum_to_one():
    vocab_size = 37
    model, tree = hs_model(vocab_size, dim=5, scale=1.0), tree_for(vocab_size)
    all_words = torch.arange(vocab_size)
    with torch.no_grad():
        for target in (0, 11, 36):
            log_p = [-model.forward_hs(torch.tensor([target]), torch.tensor([c]), tree) for c in all_words]
            probabilities = torch.exp(torch.stack(log_p).double())
            assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)
            assert probabilities.min() > 0
        # A batch loss is the sum of its pairs' losses.
        batch = model.forward_hs(torch.full((vocab_size,), 36), all_words, tree)
        assert batch.item() == pytest.approx(-sum(lp.item() for lp in log_p), rel=1e-5)


def test_forward_hs_uses_label_one_minus_code():
    # One inner node, two words: word with code 0 has p = sigma(u.v), word with code 1 has p = sigma(-u.v).
    model, tree = SkipGram(2, 1, loss="hs"), build_huffman(np.array([5, 3]))
    with torch.no_grad():
        model.input.weight.fill_(1.0)
        model.inner.weight.fill_(2.0)
    for word in (0, 1):
        expected = -np.log(1 / (1 + np.exp(-2.0 if tree.codes[word, 0] == 0 else 2.0)))
        assert model.forward_hs(torch.tensor([0]), torch.tensor([word]), tree).item() == pytest.approx(expected)


def autograd_gradients(model, target, context, tree):
    model.zero_grad()
    loss = model.forward_hs(target, context, tree)
    loss.backward()
    return loss.item(), model.input.weight.grad.to_dense(), model.inner.weight.grad.to_dense()


# The window steps on windows of one pair each: the window's target owns the output side (its Huffman path), so a
# pair (t, c) of SkipGram.forward_hs is the window of target c and context t.

def test_torch_step_equals_autograd_sgd_step():
    model, tree = hs_model(), tree_for()
    assert_unsaturated(model)
    target = torch.tensor([0, 1, 5], dtype=torch.int32)
    context = torch.tensor([2, 12, 7], dtype=torch.int32)  # the paths share the root and maybe more: summed
    loss, grad_in, grad_inner = autograd_gradients(model, target, context, tree)
    assert grad_inner.abs().sum(1).count_nonzero() >= tree.lengths[[2, 12, 7]].max()
    expected_in = model.input.weight.detach() - 0.1 * grad_in
    expected_inner = model.inner.weight.detach() - 0.1 * grad_inner
    step_loss = sg_window_hs_step_torch(model, context, target, torch.arange(4), tree, 0.1, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.inner.weight.detach(), expected_inner)


@pytest.mark.slow
def test_cpu_kernel_single_pair_equals_autograd():
    model, tree = hs_model(), tree_for()
    assert_unsaturated(model)
    context = int(np.argmax(tree.lengths))  # the longest path
    target, context = torch.tensor([4], dtype=torch.int32), torch.tensor([context], dtype=torch.int32)
    loss, grad_in, grad_inner = autograd_gradients(model, target, context, tree)
    expected_in = model.input.weight.detach() - 0.2 * grad_in
    expected_inner = model.inner.weight.detach() - 0.2 * grad_inner
    step_loss = sg_window_hs_step_cpu(model.input.weight.data.numpy(), model.inner.weight.data.numpy(),
                                      context.numpy(), target.numpy(), one_pair_windows(1), tree.paths, tree.codes,
                                      tree.lengths, 0.2, 0.2, 1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.inner.weight.detach(), expected_inner)


def random_setup(seed=0, vocab_size=15, dim=8, n_pairs=60):
    rng = np.random.default_rng(seed)
    tree = build_huffman(rng.integers(1, 30, vocab_size))
    input_w = rng.normal(0, 0.4, (vocab_size, dim)).astype(np.float32)
    inner_w = rng.normal(0, 0.4, (vocab_size - 1, dim)).astype(np.float32)
    target = rng.integers(0, vocab_size, n_pairs).astype(np.int32)  # repeats: the order of updates matters
    context = rng.integers(0, vocab_size, n_pairs).astype(np.int32)
    return tree, input_w, inner_w, target, context


@pytest.mark.slow
def test_cpu_kernel_on_one_pair_windows_is_word2vec_c_pair_by_pair():
    tree, input_w, inner_w, target, context = random_setup()
    expected_in, expected_inner, expected_loss = hs_pairs(input_w, inner_w, target, context, tree, 0.08, 0.02)
    sampled_in, sampled_inner = input_w.copy(), inner_w.copy()
    starts = one_pair_windows(len(target))
    loss = sg_window_hs_step_cpu(input_w, inner_w, context, target, starts, tree.paths, tree.codes, tree.lengths,
                                 0.08, 0.02, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(inner_w, expected_inner, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-5)
    # a sampled loss (every 4th pair) leaves the updates exactly as they were
    sampled_loss = sg_window_hs_step_cpu(sampled_in, sampled_inner, context, target, starts, tree.paths, tree.codes,
                                         tree.lengths, 0.08, 0.02, 1, 4)
    np.testing.assert_array_equal(sampled_in, input_w)
    np.testing.assert_array_equal(sampled_inner, inner_w)
    assert 0 < sampled_loss != pytest.approx(loss, rel=1e-9)


def test_torch_step_with_one_pair_micro_batches_is_pair_by_pair():
    tree, input_w, inner_w, target, context = random_setup(seed=1)
    expected_in, expected_inner, expected_loss = hs_pairs(input_w, inner_w, target, context, tree, 0.08, 0.02)
    model = SkipGram(len(input_w), input_w.shape[1], loss="hs")
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(input_w))
        model.inner.weight.copy_(torch.from_numpy(inner_w))
    loss = sg_window_hs_step_torch(model, torch.from_numpy(context), torch.from_numpy(target),
                                   torch.from_numpy(one_pair_windows(len(target))), tree, 0.08, 0.02, micro_batch=1)
    np.testing.assert_allclose(model.input.weight.detach().numpy(), expected_in, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.inner.weight.detach().numpy(), expected_inner, rtol=1e-4, atol=1e-6)
    assert loss == pytest.approx(expected_loss.sum(), rel=1e-5)


def test_steps_skip_saturated_nodes_like_word2vec_c():
    tree = build_huffman(np.array([4, 3, 2, 1]))
    context = np.array([int(np.argmax(tree.lengths))], np.int32)
    input_w = np.full((4, 4), 2.0, np.float32)
    inner_w = np.full((3, 4), 2.0, np.float32)  # score 16 > MAX_EXP at every node: nothing moves
    inner_w[tree.paths[context[0], 1]] = 0.1  # except this node (score 0.8)
    model = SkipGram(4, 4, loss="hs")
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(input_w))
        model.inner.weight.copy_(torch.from_numpy(inner_w))
    loss = sg_window_hs_step_cpu(input_w, inner_w, context, np.array([0], np.int32), one_pair_windows(1), tree.paths,
                                 tree.codes, tree.lengths, 0.1, 0.1, 1)
    torch_loss = sg_window_hs_step_torch(model, torch.from_numpy(context), torch.tensor([0]), torch.arange(2), tree,
                                         0.1, 0.1)
    assert loss == pytest.approx(torch_loss, rel=1e-6)
    moved = np.flatnonzero((inner_w != 2.0).any(1))
    assert moved.tolist() == [tree.paths[context[0], 1]]
    np.testing.assert_allclose(model.inner.weight.detach().numpy(), inner_w, rtol=1e-6)
    np.testing.assert_allclose(model.input.weight.detach().numpy(), input_w, rtol=1e-6)
    assert (input_w[1:] == 2.0).all() and not (input_w[0] == 2.0).all()


def planted_pairs(rng, clusters, words_per_cluster, fillers, n_pairs):
    """Skip-gram pairs of a corpus whose documents each draw from one cluster (75%) or filler words."""
    cluster = rng.integers(clusters, size=n_pairs)
    target = cluster * words_per_cluster + rng.integers(words_per_cluster, size=n_pairs)
    context = cluster * words_per_cluster + rng.integers(words_per_cluster, size=n_pairs)
    filler = rng.random(n_pairs) < 0.25
    context[filler] = clusters * words_per_cluster + rng.integers(fillers, size=filler.sum())
    return target.astype(np.int32), context.astype(np.int32)


@pytest.mark.slow
@pytest.mark.parametrize("step", ["cpu", "torch"])
def test_planted_clusters_are_learned_by_the_hs_steps(step, one_torch_thread):
    clusters, per_cluster, fillers = 8, 12, 5
    vocab_size = clusters * per_cluster + fillers
    rng = np.random.default_rng(0)
    target, context = planted_pairs(rng, clusters, per_cluster, fillers, 300_000)
    tree = build_huffman(np.bincount(np.concatenate([target, context]), minlength=vocab_size))
    model = SkipGram(vocab_size, 24, seed=1, loss="hs")
    batches = np.array_split(np.arange(len(target)), 30)
    for i, batch in enumerate(batches):
        lr_start, lr_end = 0.025 * (1 - i / len(batches)), 0.025 * (1 - (i + 1) / len(batches))
        starts = one_pair_windows(len(batch))
        if step == "cpu":
            sg_window_hs_step_cpu(model.input.weight.data.numpy(), model.inner.weight.data.numpy(), context[batch],
                                  target[batch], starts, tree.paths, tree.codes, tree.lengths, lr_start, lr_end, 1)
        else:
            sg_window_hs_step_torch(model, torch.from_numpy(context[batch]), torch.from_numpy(target[batch]),
                                    torch.from_numpy(starts), tree, lr_start, lr_end, micro_batch=1024)
    words = [f"w{i}" for i in range(vocab_size)]
    queries = words[:clusters * per_cluster]
    found = nearest_neighbours(words, model.input.weight.detach(), queries, k=5)
    in_cluster = np.mean([int(w[1:]) // per_cluster == int(q[1:]) // per_cluster
                          for q in queries for w, _ in found[q]])
    assert in_cluster > 0.9, f"only {in_cluster:.0%} of the 5 nearest neighbours share the planted cluster"


@pytest.mark.slow
def test_train_with_hs_learns_planted_clusters_and_resumes(tmp_path):
    import train
    from w2v.common import StageError, load_vocab
    from w2v.vectors_io import load_vectors

    corpus, data_dir = tmp_path / "corpus.txt", tmp_path / "data"
    clusters = write_corpus(corpus, documents=1200)
    run_stages(data_dir, corpus, pairs_per_shard=40_000)
    args = ["--data-dir", str(data_dir), "--epochs", "3", "--loss", "hs", *TRAIN_ARGS]
    figures = train.main(args)
    assert figures["loss"] == "hs"

    words, counts = load_vocab(data_dir)
    stored, expected = HuffmanTree.load(data_dir / "huffman.npz"), build_huffman(counts)
    np.testing.assert_array_equal(stored.paths, expected.paths)
    np.testing.assert_array_equal(stored.codes, expected.codes)
    words, vectors = load_vectors(data_dir / "model" / "vectors.txt")
    cluster_of = {word: c for c, members in enumerate(clusters) for word in members}
    queries = [word for members in clusters for word in members]
    found = nearest_neighbours(words, vectors, queries, k=5)
    in_cluster = np.mean([cluster_of.get(w) == cluster_of[q] for q in queries for w, _ in found[q]])
    assert in_cluster > 0.9, f"only {in_cluster:.0%} of the 5 nearest neighbours share the planted cluster"
    checkpoint = torch.load(data_dir / "model" / "checkpoint.pt")
    assert checkpoint["model"]["inner.weight"].shape == (len(words) - 1, 24)
    assert "output.weight" not in checkpoint["model"]

    # Stopped inside the first shard and resumed: the same vectors and loss log as the uninterrupted run.
    uninterrupted = np.load(data_dir / "model" / "embeddings.npy")
    uninterrupted_loss = (data_dir / "model" / "loss.csv").read_text()
    for name in ("embeddings.npy", "checkpoint.pt", "loss.csv"):
        (data_dir / "model" / name).unlink()
    assert train.main(args + ["--stop-after-batches", "3"])["position"]["epoch_batches"] == 3
    with pytest.raises(StageError, match="--loss hs, not ns"):
        train.main(args + ["--resume", "--loss", "ns"])
    train.main(args + ["--resume"])
    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), uninterrupted)
    assert (data_dir / "model" / "loss.csv").read_text() == uninterrupted_loss
