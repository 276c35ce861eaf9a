"""CBOW (word2vec.c's -cbow 1): the numba kernels against a plain numpy loop, the torch steps against autograd,
the kernels' own negatives against unigram_draw, reruns bit-identical, and planted clusters learned."""
import numpy as np
import pytest
import torch

from w2v.kernels.cpu import cbow_hs_step_cpu, cbow_step_cpu, unigram_draws
from w2v.kernels.torch_steps import cbow_hs_step_torch, cbow_step_torch, window_chunks, window_negatives
from word2vec import SkipGram, nearest_neighbours
from w2v.kernels import MAX_SCORE
from w2v.huffman import build_huffman
from helpers import TRAIN_ARGS, share_in_cluster, uninterrupted_then_reset, word_table


def random_windows(rng, vocab_size, n_windows, max_size=6):
    """Windows of 1..max_size pairs with one target each, rows repeated across and inside windows."""
    sizes = rng.integers(1, max_size + 1, n_windows)
    window_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    target = np.repeat(rng.integers(0, vocab_size, n_windows), sizes).astype(np.int32)
    context = rng.integers(0, vocab_size, window_starts[-1]).astype(np.int32)
    return target, context, window_starts


def kernel_negatives(seed, n_windows, n_negatives, table):
    """The negatives the numba kernel draws: unigram_draw(table, seed, w * K + j)."""
    counters = np.arange(n_windows * n_negatives, dtype=np.int64)
    return unigram_draws(table, seed, counters).reshape(n_windows, n_negatives)


def numpy_reference(input_w, output_w, target, context, window_starts, lr_start, lr_end, negatives=None,
                    tree=None):
    """word2vec.c's `if (cbow)` loop written plainly, window after window, in float64; (input, output, loss)."""
    input_w, output_w, loss = input_w.astype(np.float64), output_w.astype(np.float64), 0.0
    n_pairs = window_starts[-1]
    for w in range(len(window_starts) - 1):
        start, stop = window_starts[w], window_starts[w + 1]
        t = target[start]
        lr = lr_start + (lr_end - lr_start) * start / n_pairs
        h = input_w[context[start:stop]].mean(0)
        grad_h = np.zeros_like(h)
        if tree is None:
            outputs = [(t, 1.0, False)] + [(n, 0.0, False) for n in negatives[w] if n != t]
        else:
            outputs = [(node, 1.0 - code, True) for node, code in
                       zip(tree.paths[t, :tree.lengths[t]], tree.codes[t, :tree.lengths[t]])]
        for row, label, skip_saturated in outputs:
            v = output_w[row].copy()
            score = h @ v
            loss += np.log1p(np.exp(-score if label else score))
            if skip_saturated and abs(score) >= MAX_SCORE:
                continue
            sigma = 1.0 if score > MAX_SCORE else 0.0 if score < -MAX_SCORE else 1 / (1 + np.exp(-score))
            g = (label - sigma) * lr
            grad_h += g * v
            output_w[row] = v + g * h
        for c in context[start:stop]:  # added undivided to every context row, repeats included
            input_w[c] += grad_h
    return input_w, output_w, loss


def ns_setup(seed=0, vocab_size=17, dim=8, n_windows=40):
    rng = np.random.default_rng(seed)
    input_w = rng.normal(0, 0.5, (vocab_size, dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (vocab_size, dim)).astype(np.float32)
    table = word_table(rng.integers(0, vocab_size, 50), vocab_size)
    return (input_w, output_w, table, *random_windows(rng, vocab_size, n_windows))


@pytest.mark.slow
def test_numba_ns_kernel_matches_numpy_reference_with_its_counter_negatives():
    input_w, output_w, table, target, context, window_starts = ns_setup()
    negatives = kernel_negatives(11, len(window_starts) - 1, 5, table)
    assert (negatives == target[window_starts[:-1], None]).any()  # the skip of a negative equal to the target runs
    expected_in, expected_out, expected_loss = numpy_reference(input_w, output_w, target, context, window_starts,
                                                               0.3, 0.1, negatives=negatives)
    loss = cbow_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, 5, 0.3, 0.1, 11, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(output_w, expected_out, rtol=1e-5, atol=1e-5)
    assert loss == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.slow
def test_numba_hs_kernel_matches_numpy_reference():
    rng = np.random.default_rng(1)
    vocab_size, dim = 15, 8
    tree = build_huffman(rng.integers(1, 30, vocab_size))
    input_w = rng.normal(0, 0.5, (vocab_size, dim)).astype(np.float32)
    inner_w = rng.normal(0, 0.5, (vocab_size - 1, dim)).astype(np.float32)
    target, context, window_starts = random_windows(rng, vocab_size, 40)
    expected_in, expected_inner, expected_loss = numpy_reference(input_w, inner_w, target, context, window_starts,
                                                                 0.3, 0.1, tree=tree)
    loss = cbow_hs_step_cpu(input_w, inner_w, target[window_starts[:-1]], context, window_starts, tree.paths, tree.codes,
                            tree.lengths, 0.3, 0.1, 1)
    np.testing.assert_allclose(input_w, expected_in, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(inner_w, expected_inner, rtol=1e-5, atol=1e-5)
    assert loss == pytest.approx(expected_loss, rel=1e-5)


def test_numba_ns_kernel_touches_exactly_the_target_and_counter_draw_negatives():
    input_w = np.full((40, 4), 0.1, np.float32)
    output_w = np.zeros((40, 4), np.float32)  # zero rows: any row the window scores moves (g = -lr / 2 at 0)
    table = word_table(np.arange(40))
    window_starts = np.array([0, 3, 5], np.int64)
    target = np.array([7, 7, 7, 9, 9], np.int32)
    context = np.array([1, 2, 1, 3, 4], np.int32)
    cbow_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, 6, 0.1, 0.1, 107, 1)
    draws = kernel_negatives(107, 2, 6, table)
    # seed 107: twelve distinct negatives, neither target among them, so no row is scored twice (see below)
    assert len(set(draws.ravel().tolist()) | {7, 9}) == 14
    expected = {7, 9} | set(draws.ravel().tolist())
    assert set(np.flatnonzero(output_w.any(1)).tolist()) == expected
    # zero output rows gave h no gradient; a second step does, to the contexts' rows only, and row 1 (twice in
    # window 0) gets window 0's gradient twice
    assert (input_w == np.float32(0.1)).all()
    cbow_step_cpu(input_w, output_w, target[window_starts[:-1]], context, window_starts, table, 6, 0.1, 0.1, 107, 1)
    assert np.flatnonzero((input_w != np.float32(0.1)).any(1)).tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(input_w[1] - 0.1, 2 * (input_w[2] - 0.1), rtol=1e-5)


@pytest.mark.slow
def test_numba_kernels_rerun_bit_identical_with_one_thread_and_sampled_loss_changes_no_update():
    input_w, output_w, table, target, context, window_starts = ns_setup(seed=2, n_windows=500)
    runs = []
    for loss_every in (1, 1, 7):
        w_in, w_out = input_w.copy(), output_w.copy()
        loss = cbow_step_cpu(w_in, w_out, target[window_starts[:-1]], context, window_starts, table, 5, 0.2, 0.0, 5, 1, loss_every)
        runs.append((w_in, w_out, loss))
    for w_in, w_out, _ in runs[1:]:
        np.testing.assert_array_equal(w_in, runs[0][0])
        np.testing.assert_array_equal(w_out, runs[0][1])
    assert runs[1][2] == runs[0][2]
    assert runs[2][2] != runs[0][2] and runs[2][2] == pytest.approx(runs[0][2], rel=0.3)
    # two threads take contiguous halves of the windows: halves that share no row give the one-thread result
    half = len(window_starts) // 2
    target[window_starts[half]:] += 17
    context[window_starts[half]:] += 17
    tables = [np.concatenate([w, w]) for w in (input_w, output_w)]
    results = []
    for threads in (1, 2):
        w_in, w_out = tables[0].copy(), tables[1].copy()
        cbow_step_cpu(w_in, w_out, target[window_starts[:-1]], context, window_starts, table, 0, 0.2, 0.2, 5, threads)
        results.append(w_in)
    np.testing.assert_array_equal(results[1], results[0])
    assert not np.array_equal(results[0][17:], tables[0][17:])


def tiny_model(loss="ns", vocab_size=12, dim=5, seed=3):
    model = SkipGram(vocab_size, dim, seed=seed, loss=loss)
    with torch.no_grad():  # non-zero output vectors and larger inputs so every gradient term is exercised
        table = model.output if loss == "ns" else model.inner
        table.weight.copy_(torch.randn(table.weight.shape, generator=torch.Generator().manual_seed(seed)) * 0.4)
        model.input.weight.mul_(30)
    return model


# Windows of 3, 1 and 2 pairs; context rows distinct across the batch, so each input row's closed-form update is
# its window's size times autograd's gradient through the mean. Output rows repeat (target 2 is also a negative
# of window 0 and skipped there; row 4 is a negative twice): autograd sums those as the steps do.
TARGET = torch.tensor([2, 2, 2, 7, 9, 9], dtype=torch.int32)
CONTEXT = torch.tensor([0, 1, 3, 5, 6, 8], dtype=torch.int32)
WINDOW_STARTS = torch.tensor([0, 3, 4, 6])
NEGATIVES = torch.tensor([[4, 2, 4], [10, 11, 3], [1, 4, 0]], dtype=torch.int32)
SIZE_OF_CONTEXT_ROW = {0: 3, 1: 3, 3: 3, 5: 1, 6: 2, 8: 2}


def expected_after_one_sgd_step(model, loss, lr):
    """(loss, input, output) after weight -= lr * gradient, input rows' gradients scaled by their window's size."""
    model.zero_grad()
    loss.backward()
    grad_in = model.input.weight.grad.to_dense().clone()
    for row, size in SIZE_OF_CONTEXT_ROW.items():
        grad_in[row] *= size
    output = model.output if model.loss == "ns" else model.inner
    return (loss.item(), model.input.weight.detach() - lr * grad_in,
            output.weight.detach() - lr * output.weight.grad.to_dense())


@pytest.mark.slow
def test_torch_ns_step_equals_autograd_with_the_gradient_of_h_added_undivided():
    model = tiny_model()
    loss, expected_in, expected_out = expected_after_one_sgd_step(
        model, model.forward_cbow(TARGET, CONTEXT, WINDOW_STARTS, NEGATIVES), 0.1)
    h = model._window_mean_inputs(CONTEXT, WINDOW_STARTS).detach()
    assert 1.0 < (h @ model.output.weight.detach().T).abs().max() < MAX_SCORE  # no clipping in this case
    step_loss = cbow_step_torch(model, TARGET[WINDOW_STARTS[:-1]], CONTEXT, WINDOW_STARTS, NEGATIVES, 0.1, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.output.weight.detach(), expected_out)


def test_torch_hs_step_equals_autograd_with_the_gradient_of_h_added_undivided():
    model = tiny_model("hs")
    tree = build_huffman(np.random.default_rng(0).integers(1, 40, 12))
    loss, expected_in, expected_inner = expected_after_one_sgd_step(
        model, model.forward_cbow_hs(TARGET, CONTEXT, WINDOW_STARTS, tree), 0.1)
    h = model._window_mean_inputs(CONTEXT, WINDOW_STARTS).detach()
    assert 1.0 < (h @ model.inner.weight.detach().T).abs().max() < MAX_SCORE  # no node skipped in this case
    step_loss = cbow_hs_step_torch(model, TARGET[WINDOW_STARTS[:-1]], CONTEXT, WINDOW_STARTS, tree, 0.1, 0.1)
    assert step_loss == pytest.approx(loss, rel=1e-5)
    torch.testing.assert_close(model.input.weight.detach(), expected_in)
    torch.testing.assert_close(model.inner.weight.detach(), expected_inner)


@pytest.mark.parametrize("loss", ["ns", "hs"])
def test_torch_steps_with_one_window_micro_batches_are_the_window_by_window_loop(loss):
    input_w, output_w, table, target, context, window_starts = ns_setup(seed=4, n_windows=30)
    tree = build_huffman(np.random.default_rng(4).integers(1, 30, 17)) if loss == "hs" else None
    # distinct within a window: a micro-batch sums a repeated row's stale gradients where the loop applies them
    # one after another
    negatives = np.argsort(np.random.default_rng(5).random((30, 17)), axis=1)[:, :4].astype(np.int32)
    output_w = output_w[:16] if loss == "hs" else output_w
    expected_in, expected_out, expected_loss = numpy_reference(input_w, output_w, target, context, window_starts,
                                                               0.2, 0.2, negatives=negatives, tree=tree)
    model = SkipGram(17, 8, loss=loss)
    with torch.no_grad():
        model.input.weight.copy_(torch.from_numpy(input_w))
        (model.output if loss == "ns" else model.inner).weight.copy_(torch.from_numpy(output_w))
    args = (model, torch.from_numpy(target[window_starts[:-1]]), torch.from_numpy(context),
            torch.from_numpy(window_starts))
    if loss == "ns":
        step_loss = cbow_step_torch(*args, torch.from_numpy(negatives), 0.2, 0.2, micro_batch=1)
    else:
        step_loss = cbow_hs_step_torch(*args, tree, 0.2, 0.2, micro_batch=1)
    table_after = (model.output if loss == "ns" else model.inner).weight.detach().numpy()
    np.testing.assert_allclose(model.input.weight.detach().numpy(), expected_in, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table_after, expected_out, rtol=1e-4, atol=1e-5)
    assert step_loss == pytest.approx(expected_loss, rel=1e-5)


def test_window_chunks_cut_at_window_edges_only():
    starts = torch.tensor([0, 3, 4, 9, 10, 12])
    assert window_chunks(starts, 0) == [(0, 5)]
    assert window_chunks(starts, 100) == [(0, 5)]
    assert window_chunks(starts, 4) == [(0, 2), (2, 3), (3, 5)]  # the 5-pair window stands alone
    assert window_chunks(starts, 1) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert window_chunks(torch.tensor([0]), 8) == []


def planted_windows(rng, clusters, per_cluster, fillers, n_windows, size=4):
    """CBOW windows of a corpus whose documents each draw from one cluster, a quarter of the contexts filler."""
    cluster = rng.integers(clusters, size=n_windows)
    target = np.repeat(cluster * per_cluster + rng.integers(per_cluster, size=n_windows), size)
    context = np.repeat(cluster, size) * per_cluster + rng.integers(per_cluster, size=n_windows * size)
    filler = rng.random(n_windows * size) < 0.25
    context[filler] = clusters * per_cluster + rng.integers(fillers, size=filler.sum())
    window_starts = np.arange(0, n_windows * size + 1, size, dtype=np.int64)
    return target.astype(np.int32), context.astype(np.int32), window_starts



@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ns", "hs"])
@pytest.mark.parametrize("step", ["numba", "torch"])
def test_planted_clusters_are_learned_by_the_cbow_steps(step, loss, one_torch_thread):
    clusters, per_cluster, fillers, size = 8, 12, 5, 4
    vocab_size = clusters * per_cluster + fillers
    rng = np.random.default_rng(0)
    target, context, window_starts = planted_windows(rng, clusters, per_cluster, fillers, 60_000, size)
    counts = np.bincount(context, minlength=vocab_size)
    table = word_table(np.repeat(np.arange(vocab_size), np.maximum(1, counts // 50)))
    tree = build_huffman(counts + 1)
    model = SkipGram(vocab_size, 24, seed=1, loss=loss)
    input_w = model.input.weight.data
    output_w = (model.output if loss == "ns" else model.inner).weight.data
    batches = np.array_split(np.arange(len(window_starts) - 1), 20)
    for i, windows in enumerate(batches):
        lr_start, lr_end = 0.05 * (1 - i / len(batches)), 0.05 * (1 - (i + 1) / len(batches))
        p0, p1 = window_starts[windows[0]], window_starts[windows[-1] + 1]
        c = context[p0:p1]
        starts = window_starts[windows[0]:windows[-1] + 2] - p0
        t = target[p0:p1][starts[:-1]]  # one target per window
        if step == "numba" and loss == "ns":
            cbow_step_cpu(input_w.numpy(), output_w.numpy(), t, c, starts, table, 5, lr_start, lr_end, i, 1)
        elif step == "numba":
            cbow_hs_step_cpu(input_w.numpy(), output_w.numpy(), t, c, starts, tree.paths, tree.codes, tree.lengths,
                             lr_start, lr_end, 1)
        elif loss == "ns":
            negatives = window_negatives(i, torch.from_numpy(table), len(windows), 5)
            cbow_step_torch(model, torch.from_numpy(t), torch.from_numpy(c), torch.from_numpy(starts), negatives,
                            lr_start, lr_end, micro_batch=1024)
        else:
            cbow_hs_step_torch(model, torch.from_numpy(t), torch.from_numpy(c), torch.from_numpy(starts), tree,
                               lr_start, lr_end, micro_batch=1024)
    words = [f"w{i}" for i in range(vocab_size)]
    queries = words[:clusters * per_cluster]
    found = nearest_neighbours(words, input_w, queries, k=5)
    in_cluster = np.mean([int(w[1:]) // per_cluster == int(q[1:]) // per_cluster
                          for q in queries for w, _ in found[q]])
    assert in_cluster > 0.9, f"only {in_cluster:.0%} of the 5 nearest neighbours share the planted cluster"


# --- through train.py (--model cbow on shards of order windows) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kernel, loss", [("window", "ns"), ("window", "hs"), ("torch", "ns"), ("torch", "hs")])
def test_train_cbow_learns_planted_clusters(data, kernel, loss):
    import train
    data_dir, pairs_per_draw, clusters = data
    args = ["--data-dir", str(data_dir), "--epochs", "3", *TRAIN_ARGS, "--model", "cbow", "--loss", loss,
            "--kernel", kernel, "--lr", "0.05", "--micro-batch", "1024"]
    figures = train.main(args)
    assert (figures["model"], figures["kernel"], figures["order"]) == ("cbow", kernel, "windows")
    assert figures["pairs"] == 2 * pairs_per_draw[0] + pairs_per_draw[1]
    share = share_in_cluster(data_dir, clusters)
    assert share > 0.9, f"only {share:.0%} of the 5 nearest neighbours share the planted cluster"


@pytest.mark.slow
@pytest.mark.parametrize("kernel, loss", [("window", "ns"), ("window", "hs"), ("torch", "ns")])
def test_train_cbow_resume_is_bit_exact_with_one_thread(data, kernel, loss):
    import train
    data_dir, pairs_per_draw, _ = data
    args = ["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--model", "cbow", "--loss", loss,
            "--kernel", kernel, "--micro-batch", "1024"]
    vectors, loss_log = uninterrupted_then_reset(args, data_dir)
    # the same run again is bit-identical (threads 1): the kernel's negatives depend on the batch seed only
    again, again_log = uninterrupted_then_reset(args, data_dir)
    np.testing.assert_array_equal(again, vectors)
    assert again_log == loss_log
    stopped = train.main(args + ["--stop-after-batches", "3"])  # inside the first shard of epoch 1
    assert stopped["position"]["epoch_batches"] == 3
    train.main(args + ["--resume"])
    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), vectors)
    assert (data_dir / "model" / "loss.csv").read_text() == loss_log


@pytest.mark.slow
def test_lr_zero_takes_the_models_default(data):
    import train
    data_dir, _, _ = data
    without_lr = [arg for arg in TRAIN_ARGS if arg not in ("--lr", "0.025")]
    args = ["--data-dir", str(data_dir), "--epochs", "1", *without_lr, "--stop-after-batches", "1"]
    assert "--lr" not in args and train.LR == 0.0
    for model, expected in (("sg", 0.04), ("cbow", 0.05)):
        train.main(args + ["--model", model])
        saved = torch.load(data_dir / "model" / "checkpoint.pt", weights_only=False)["config"]
        assert saved["lr"] == expected == train.DEFAULT_LR[model]
        (data_dir / "model" / "checkpoint.pt").unlink()
    train.main(args + ["--model", "cbow", "--lr", "0.01"])
    assert torch.load(data_dir / "model" / "checkpoint.pt", weights_only=False)["config"]["lr"] == 0.01


def test_init_range_zero_takes_the_models_default(data):
    from w2v.common import load_vocab
    # With a rate of 1e-12 one batch moves no input row by more than ~1e-12: the written vectors are the start.
    import train
    data_dir, _, _ = data
    without_lr = [arg for arg in TRAIN_ARGS if arg not in ("--lr", "0.025")]
    args = ["--data-dir", str(data_dir), "--epochs", "1", *without_lr, "--lr", "1e-12", "--stop-after-batches", "1"]
    assert train.INIT_RANGE == 0.0 and train.DEFAULT_INIT_RANGE == {"sg": 0.5, "cbow": 1.0}
    vocab_size = len(load_vocab(data_dir)[0])
    for model, extra, init_range in (("sg", [], 0.5), ("cbow", [], 1.0), ("cbow", ["--init-range", "0.25"], 0.25)):
        train.main(args + ["--model", model, *extra])
        start = SkipGram(vocab_size, 24, seed=1, init_range=init_range).input.weight.detach().numpy()
        trained = torch.load(data_dir / "model" / "checkpoint.pt", weights_only=False)["model"]["input.weight"]
        np.testing.assert_allclose(trained.numpy(), start, rtol=0, atol=1e-9)
        assert np.abs(start).max() == pytest.approx(init_range / 24, rel=0.01)
        (data_dir / "model" / "checkpoint.pt").unlink()


@pytest.mark.parametrize("vocab_size", [12, 400])
def test_numba_ns_kernel_in_threes_and_row_by_row_both_match_the_reference(vocab_size):
    """The kernel scores a window's distinct output rows in threes and falls back to word2vec.c's row-by-row loop
    when its negatives repeat a row: a large vocabulary gives (nearly) only the first, a tiny one many repeats."""
    rng = np.random.default_rng(vocab_size)
    dim = 19  # not a multiple of the vector width: the loops' tails run
    input_w = rng.normal(0, 0.5, (vocab_size, dim)).astype(np.float32)
    output_w = rng.normal(0, 0.5, (vocab_size, dim)).astype(np.float32)
    table = word_table(rng.integers(0, vocab_size, 997), vocab_size)
    target, context, window_starts = random_windows(rng, vocab_size, 60)
    for negatives in (4, 5, 7):  # 5, 6 and 8 output rows: threes with and without a tail
        drawn = kernel_negatives(3, len(window_starts) - 1, negatives, table)
        repeats = [len(set(row.tolist())) < negatives for row in drawn]
        assert not all(repeats) and (any(repeats) or vocab_size > 12)
        expected_in, expected_out, expected_loss = numpy_reference(input_w, output_w, target, context, window_starts,
                                                                   0.2, 0.05, negatives=drawn)
        got_in, got_out = input_w.copy(), output_w.copy()
        loss = cbow_step_cpu(got_in, got_out, target[window_starts[:-1]], context, window_starts, table, negatives, 0.2, 0.05, 3, 1)
        np.testing.assert_allclose(got_in, expected_in, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_out, expected_out, rtol=1e-5, atol=1e-5)
        assert loss == pytest.approx(expected_loss, rel=1e-5)
