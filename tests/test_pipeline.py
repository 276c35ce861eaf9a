"""All seven stages end to end on a generated corpus with planted word clusters."""
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import train
from w2v.common import StageError
from word2vec import nearest_neighbours
from helpers import CLUSTERS, TRAIN_ARGS, WORDS_PER_CLUSTER, run_stages, write_corpus

ROOT = Path(__file__).resolve().parent.parent



@pytest.mark.slow
def test_planted_clusters_are_learned_through_all_stages(tmp_path):
    data_dir = tmp_path / "data"
    clusters = write_corpus(tmp_path / "corpus.txt")
    pairs_per_draw = run_stages(data_dir, tmp_path / "corpus.txt")
    figures = train.main(["--data-dir", str(data_dir), "--epochs", "3", *TRAIN_ARGS])
    # 3 epochs over 2 draws: epochs read draws 0, 1, 0
    assert len(set(pairs_per_draw)) == 2 and figures["pairs"] == 2 * pairs_per_draw[0] + pairs_per_draw[1]

    from w2v.vectors_io import load_vectors
    words, vectors = load_vectors(data_dir / "model" / "vectors.txt")
    assert len(words) == CLUSTERS * WORDS_PER_CLUSTER + 6  # + 5 fillers + "раз"
    cluster_of = {word: c for c, members in enumerate(clusters) for word in members}
    queries = [word for members in clusters for word in members]
    found = nearest_neighbours(words, vectors, queries, k=5)
    in_cluster = np.mean([cluster_of.get(w) == cluster_of[q] for q in queries for w, _ in found[q]])
    assert in_cluster > 0.9, f"only {in_cluster:.0%} of the 5 nearest neighbours share the planted cluster"

    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), vectors)
    rows = list(csv.DictReader(open(data_dir / "model" / "loss.csv")))
    losses = [float(row["loss"]) for row in rows]
    assert np.mean(losses[-5:]) < 0.75 * losses[0]  # the loss came down
    assert (data_dir / "model" / "loss.png").stat().st_size > 1000


@pytest.mark.slow
def test_resume_inside_a_shard_equals_uninterrupted_run(tmp_path):
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, documents=600)
    data_dir = tmp_path / "data"
    pairs_per_draw = run_stages(data_dir, corpus, pairs_per_shard=20_000, draws=2)
    shards_per_draw = [-(-pairs // 20_000) for pairs in pairs_per_draw]
    assert shards_per_draw[0] >= 2 and shards_per_draw[1] >= 2
    args = ["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS]

    figures = train.main(args)
    assert figures["pairs"] == sum(pairs_per_draw)  # epoch 0 read draw 0, epoch 1 draw 1
    uninterrupted = np.load(data_dir / "model" / "embeddings.npy")
    uninterrupted_loss = (data_dir / "model" / "loss.csv").read_text()

    for name in ("embeddings.npy", "checkpoint.pt", "loss.csv"):
        (data_dir / "model" / name).unlink()
    # 5,000-pair batches: one batch stops a quarter of the way into the first 20,000-pair shard
    stopped = train.main(args + ["--stop-after-batches", "1"])
    assert stopped["stopped"] and stopped["position"]["epoch_batches"] == 1
    assert not (data_dir / "model" / "embeddings.npy").exists()
    # the rest of epoch 0, then one batch into epoch 1, which reads draw 1
    batches_per_epoch = -(-pairs_per_draw[0] // 5000)
    stopped = train.main(args + ["--resume", "--stop-after-batches", str(batches_per_epoch)])
    assert stopped["stopped"] and (stopped["position"]["epoch"], stopped["position"]["epoch_batches"]) == (1, 1)
    train.main(args + ["--resume"])
    np.testing.assert_array_equal(np.load(data_dir / "model" / "embeddings.npy"), uninterrupted)
    assert (data_dir / "model" / "loss.csv").read_text() == uninterrupted_loss

    with pytest.raises(StageError, match="--dim"):
        train.main(args[:-len(TRAIN_ARGS)] + ["--resume", "--dim", "8"] + TRAIN_ARGS[2:])


@pytest.mark.slow
def test_vectors_load_in_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    corpus = tmp_path / "corpus.txt"
    write_corpus(corpus, documents=300)
    data_dir = tmp_path / "data"
    run_stages(data_dir, corpus)
    train.main(["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS])
    ours = np.load(data_dir / "model" / "embeddings.npy")
    for name, binary in (("vectors.txt", False), ("vectors.bin", True)):
        loaded = gensim_models.KeyedVectors.load_word2vec_format(str(data_dir / "model" / name), binary=binary)
        assert loaded.vectors.shape == ours.shape
        np.testing.assert_allclose(loaded.vectors, ours, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_stages_run_out_of_order_say_which_stage_first(tmp_path):
    data_dir = tmp_path / "empty"
    with pytest.raises(StageError, match="run pairs_dataset.py first"):
        train.main(["--data-dir", str(data_dir)])
    done = subprocess.run([sys.executable, "train.py", "--data-dir", str(data_dir)], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {data_dir}/pairs/meta.json not found: "
                                                "run pairs_dataset.py first"]


@pytest.mark.slow
def test_every_script_lists_its_constants_as_flags():
    for script, flag in [("prep.py", "--max-docs"), ("convert_to_int.py", "--min-count"),
                         ("pairs_dataset.py", "--pairs-per-shard"), ("unigram_table.py", "--power"),
                         ("dataset.py", "--batch-size"), ("word2vec.py", "--words"), ("train.py", "--resume")]:
        done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert flag in done.stdout and "--data-dir" in done.stdout, script
