"""What users look at: the map of neighbours, the projector's files, the model card, plain words on a
tagged vocabulary, the loss plot drawn during training with its epoch marks."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import convert_to_int
import evaluate
import pairs_dataset
import prep
import train
import unigram_table
import word2vec
from w2v import views
from w2v.common import StageError, load_vocab
from w2v.model_card import render_card, vocab_figures
from w2v.morphology import keys_of_query, resolve_queries
from w2v.vectors_io import save_word2vec_text

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402
from helpers import TRAIN_ARGS, write_corpus

# A lemma_UPOS vocabulary in frequency order: москва is both a proper noun and (less often) a common noun.
TAGGED = ["город_NOUN", "москва_PROPN", "в_ADP", "столица_NOUN", "сталь_NOUN", "стать_VERB", "москва_NOUN",
          "петербург_PROPN", "река_NOUN", "король_NOUN"]


def tagged_vectors(folder: Path, dim: int = 8) -> tuple[Path, np.ndarray, np.ndarray]:
    """vectors.txt of TAGGED with vocab.json beside it (lemmatize upos), as convert_to_int.py and train.py write
    them; returns (the vectors' path, the vectors, the counts)."""
    vectors = np.random.default_rng(5).standard_normal((len(TAGGED), dim)).astype(np.float32)
    counts = np.arange(len(TAGGED), 0, -1) * 10
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({"min_count": 1, "lemmatize": "upos", "words": TAGGED,
                                                   "counts": counts.tolist()}, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    save_word2vec_text(folder / "vectors.txt", TAGGED, vectors)
    return folder / "vectors.txt", vectors, counts


# ---------------------------------------------------------------- plain words on a tagged vocabulary


def test_plain_words_answer_for_their_tagged_keys():
    vocabulary = {word: row for row, word in enumerate(TAGGED)}
    assert keys_of_query("москвы", vocabulary, "upos") == ["москва_PROPN", "москва_NOUN"]  # first parse first
    assert keys_of_query("Москва", vocabulary, "upos") == ["москва_PROPN", "москва_NOUN"]
    assert keys_of_query("москва_NOUN", vocabulary, "upos") == ["москва_NOUN"]  # a key stands for itself
    assert keys_of_query("рекой", vocabulary, "upos") == ["река_NOUN"]
    assert keys_of_query("стали", vocabulary, "upos") == ["стать_VERB", "сталь_NOUN"]  # both parses, first first
    assert keys_of_query("лондон", vocabulary, "upos") == []
    assert keys_of_query("москвы", vocabulary, "none") == []  # a plain vocabulary takes words as they are
    assert resolve_queries(["москвы", "река_NOUN", "xyz"], TAGGED, "upos") == {
        "москвы": ["москва_PROPN", "москва_NOUN"], "река_NOUN": ["река_NOUN"], "xyz": []}


def test_evaluate_and_word2vec_answer_plain_words_with_the_keys_they_used(tmp_path, capsys):
    vectors_path, vectors, _ = tagged_vectors(tmp_path / "model")
    figures = evaluate.main(["--vectors", str(vectors_path), "--similarity", "--neighbors", "москвы", "лондон",
                             "--k", "3"])
    assert figures["keys"] == {"москвы": ["москва_PROPN", "москва_NOUN"], "лондон": []}
    assert figures["neighbors"]["лондон"] is None
    expected = word2vec.nearest_neighbours(TAGGED, vectors, ["москва_PROPN", "москва_NOUN"], 3)
    for key in ("москва_PROPN", "москва_NOUN"):
        assert [w for w, _ in figures["neighbors"][key]] == [w for w, _ in expected[key]]
    out = capsys.readouterr().out
    assert "москва_PROPN (for москвы)" in out and "москва_NOUN (for москвы)" in out and "unknown word: лондон" in out

    # word2vec.py reads DATA_DIR/vocab.json and DATA_DIR/model/embeddings.npy
    data_dir = tmp_path
    (data_dir / "model").mkdir(exist_ok=True)
    (data_dir / "vocab.json").write_text((tmp_path / "model" / "vocab.json").read_text(encoding="utf-8"),
                                         encoding="utf-8")
    np.save(data_dir / "model" / "embeddings.npy", vectors)
    found = word2vec.main(["--data-dir", str(data_dir), "--words", "москвы", "река_NOUN", "--k", "2"])
    assert list(found) == ["москва_PROPN", "москва_NOUN", "река_NOUN"]
    assert "москвы: the keys москва_PROPN, москва_NOUN" in capsys.readouterr().out


# ---------------------------------------------------------------- the map


def test_map_draws_the_query_words_in_the_order_given(tmp_path):
    _, vectors, _ = tagged_vectors(tmp_path)
    groups = {"река": ["река_NOUN", "город_NOUN", "столица_NOUN"], "москвы": ["москва_PROPN", "петербург_PROPN"]}
    path = tmp_path / "map.png"
    points = views.draw_map(path, TAGGED, vectors, groups)
    assert points.labels == ["река_NOUN", "город_NOUN", "столица_NOUN", "москва_PROPN", "петербург_PROPN"]
    assert points.groups == [0, 0, 0, 1, 1]
    # the coordinates are the first two principal components of the unit rows (up to each axis's sign)
    rows = vectors[[TAGGED.index(word) for word in points.labels]].astype(np.float64)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    centred = rows - rows.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    expected = centred @ eigenvectors[:, ::-1][:, :2]
    for axis in range(2):
        sign = np.sign(expected[0, axis] * points.coords[0, axis])
        np.testing.assert_allclose(points.coords[:, axis], sign * expected[:, axis], atol=1e-9)
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.01  # something drawn, not a blank canvas


def test_evaluate_map_flag_writes_the_png_of_the_neighbours(tmp_path, monkeypatch):
    vectors_path, _, _ = tagged_vectors(tmp_path / "model")
    drawn = {}
    original = evaluate.draw_map

    def recording(path, words, vectors, groups, title=""):
        drawn.update(groups)
        return original(path, words, vectors, groups, title)

    monkeypatch.setattr(evaluate, "draw_map", recording)
    figures = evaluate.main(["--vectors", str(vectors_path), "--similarity", "--neighbors", "река_NOUN", "москвы",
                             "--k", "2", "--map", str(tmp_path / "map.png")])
    assert [members[0] for members in drawn.values()] == ["река_NOUN", "москва_PROPN", "москва_NOUN"]
    assert drawn["река_NOUN"][1:] == [w for w, _ in figures["neighbors"]["река_NOUN"]]
    assert imread(tmp_path / "map.png").shape[0] > 100
    with pytest.raises(StageError, match="--map draws the --neighbors"):
        evaluate.main(["--vectors", str(vectors_path), "--similarity", "--map", str(tmp_path / "m.png")])


# ---------------------------------------------------------------- the projector's files


def test_projector_files_hold_the_most_frequent_rows(tmp_path):
    vectors_path, vectors, counts = tagged_vectors(tmp_path / "model")
    figures = evaluate.main(["--vectors", str(vectors_path), "--similarity", "--projector", "6"])
    assert figures["projector"] == [str(tmp_path / "model" / "vectors.tsv"), str(tmp_path / "model" / "metadata.tsv")]
    read = np.loadtxt(tmp_path / "model" / "vectors.tsv", delimiter="\t", dtype=np.float64)
    assert read.shape == (6, vectors.shape[1])
    np.testing.assert_array_equal(read.astype(np.float32), vectors[:6])  # float32 exactly
    lines = (tmp_path / "model" / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "word\tcount"
    assert [line.split("\t") for line in lines[1:]] == [[w, str(c)] for w, c in zip(TAGGED[:6], counts[:6])]
    # more than there are: all of them; elsewhere with --projector-dir
    evaluate.main(["--vectors", str(vectors_path), "--similarity", "--projector", "99",
                   "--projector-dir", str(tmp_path / "out")])
    assert len(np.loadtxt(tmp_path / "out" / "vectors.tsv", delimiter="\t")) == len(TAGGED)
    # without a vocab.json: the words alone, no header (TensorBoard's one-column form)
    lone = tmp_path / "lone" / "vectors.txt"
    lone.parent.mkdir()
    lone.write_bytes(vectors_path.read_bytes())
    evaluate.main(["--vectors", str(lone), "--similarity", "--projector", "3"])
    assert (lone.parent / "metadata.tsv").read_text(encoding="utf-8").splitlines() == TAGGED[:3]


# ---------------------------------------------------------------- training: the card and the loss plot


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Stages 1-4 on a small planted corpus (lemma_UPOS keys, function words dropped), then 2 epochs of training
    with the plot calls recorded."""
    folder = tmp_path_factory.mktemp("views")
    data_dir = folder / "data"
    write_corpus(folder / "corpus.txt", documents=400)
    common = ["--data-dir", str(data_dir)]
    prep.main(common + ["--dataset", str(folder / "corpus.txt"), "--num-proc", "1"])
    convert_to_int.main(common + ["--min-count", "2", "--num-proc", "1", "--lemmatize", "upos", "--drop-pos"])
    pairs_dataset.main(common + ["--window", "3", "--sample", "0", "--row-group-pairs", "2000", "--draws", "2"])
    unigram_table.main(common)
    return data_dir


@pytest.mark.slow
def test_loss_plot_is_drawn_at_each_checkpoint_with_epoch_marks(trained, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    shutil.copytree(trained, data_dir)
    calls = []
    original = views.plot_loss

    def recording(path, loss_rows, *args, **kwargs):
        calls.append((Path(path), [row[1] for row in loss_rows], args))
        return original(path, loss_rows, *args, **kwargs)

    monkeypatch.setattr(views, "plot_loss", recording)
    monkeypatch.setattr(views, "REDRAW_SECONDS", 1e9)  # no redraw by time: the first and the last only
    args = ["--data-dir", str(data_dir), "--epochs", "3", *TRAIN_ARGS, "--batch-size", "1000"]
    stopped = train.main(args + ["--stop-after-batches", "2"])
    assert stopped["stopped"] and (data_dir / "model" / "loss.png").is_file()  # before training ended
    assert not (data_dir / "model" / "vectors.txt").exists()
    assert calls == [(data_dir / "model" / "loss.png", [1, 1], ("sg", "ns", "pair"))]
    figures = train.main(args + ["--resume"])
    assert figures["checkpoints"] == 3  # the three epoch ends: the first drawn, the second too soon, the last drawn
    assert [sorted(set(epochs)) for _, epochs, _ in calls] == [[1], [1], [1, 2, 3]]
    rows = [[float(value) for value in row] for row in
            list(csv.reader(open(data_dir / "model" / "loss.csv")))[1:]]
    assert len(calls[-1][1]) == len(rows)
    ends = [max(row[2] for row in rows if row[1] == epoch) for epoch in (1, 2)]
    marks = views.plot_loss(tmp_path / "loss.png", rows, "sg", "ns")
    assert marks == ends and 0 < marks[0] < marks[1] < rows[-1][2]
    assert imread(data_dir / "model" / "loss.png").shape[0] > 100
    assert views.epoch_marks([row for row in rows if row[1] == 1]) == []  # one epoch: nothing to mark
    plot = views.LossPlot(tmp_path / "watched.png", "cbow", "hs", "window")
    assert plot.update(rows) and not plot.update(rows) and plot.update(rows, final=True)


@pytest.mark.slow
def test_the_model_card_holds_the_figures_of_stats_and_vocab(trained, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(trained, data_dir)
    figures = train.main(["--data-dir", str(data_dir), "--epochs", "2", *TRAIN_ARGS, "--negatives", "4"])
    card = json.loads((data_dir / "model" / "card.json").read_text(encoding="utf-8"))
    prep_stats = json.loads((data_dir / "stats" / "prep.json").read_text(encoding="utf-8"))
    words, counts = load_vocab(data_dir)
    vocab = vocab_figures(data_dir / "vocab.json")
    meta = json.loads((data_dir / "pairs" / "meta.json").read_text(encoding="utf-8"))
    assert card["corpus"] == {"dataset": prep_stats["dataset"], "documents": prep_stats["documents"],
                              "tokens": prep_stats["tokens"], "vocab_tokens": int(counts.sum())}
    assert prep_stats["dataset"].endswith("corpus.txt")
    assert card["preprocessing"] == {"lemmatize": "upos", "drop_upos": vocab["drop_upos"], "phrases": 0}
    assert card["preprocessing"]["drop_upos"] == sorted(convert_to_int.DROP_UPOS)
    assert card["vocabulary"] == {"size": len(words), "min_count": 2, "max_vocab": 0}
    assert card["pairs"] == {"window": 3, "dynamic_window": True, "sample": 0.0, "draws": 2}
    assert meta["window"] == 3
    training = card["training"]
    assert {key: training[key] for key in ("model", "loss", "dim", "negatives", "epochs", "pairs", "train_s")} == {
        "model": "sg", "loss": "ns", "dim": 24, "negatives": 4, "epochs": 2, "pairs": figures["pairs"],
        "train_s": figures["train_s"]}
    assert training["machine"] and training["machine"] != "unknown"
    assert card["scores"] == {}
    readme = (data_dir / "model" / "README.md").read_text(encoding="utf-8")
    assert readme == render_card(card)
    assert f"| vocabulary | {len(words):,} |" in readme and f"| tokens | {prep_stats['tokens']:,} |" in readme
    assert "| lemmatize | upos |" in readme and "None yet" in readme

    # evaluate.py --card adds its scores to both files
    pairs = data_dir / "pairs.tsv"
    keys = [word for word in words if not word.startswith("раз")][:6]
    pairs.write_text("".join(f"{a}\t{b}\t{i}\n" for i, (a, b) in enumerate(zip(keys, keys[1:]))), encoding="utf-8")
    result = evaluate.main(["--data-dir", str(data_dir), "--similarity", str(pairs), "--card"])
    card = json.loads((data_dir / "model" / "card.json").read_text(encoding="utf-8"))
    assert card["scores"]["similarity"]["pairs.tsv"]["spearman"] == result["similarity"]["pairs.tsv"]["spearman"]
    readme = (data_dir / "model" / "README.md").read_text(encoding="utf-8")
    assert "similarity pairs.tsv: Spearman" in readme and "None yet" not in readme
    assert card["training"] == training  # the rest of the card untouched


def test_training_puts_the_shipped_sets_scores_in_the_card(trained, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(trained, data_dir)
    args = [arg for arg in TRAIN_ARGS if arg != "--no-card-scores"]
    train.main(["--data-dir", str(data_dir), "--epochs", "1", *args])
    card = json.loads((data_dir / "model" / "card.json").read_text(encoding="utf-8"))
    # evaluate.py's default sets, the shipped Russian ones, as evaluate.py scores them
    expected = evaluate.main(["--data-dir", str(data_dir), "--vectors", str(data_dir / "model" / "embeddings.npy")])
    assert set(card["scores"]["similarity"]) == {"ru_simlex965.tsv", "hj.csv"}
    assert card["scores"]["similarity"] == json.loads(json.dumps(expected["similarity"]))


def test_card_without_a_trained_model_is_one_line(tmp_path):
    vectors_path, _, _ = tagged_vectors(tmp_path / "model")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("город_NOUN\tстолица_NOUN\t3\nрека_NOUN\tкороль_NOUN\t1\n", encoding="utf-8")
    with pytest.raises(StageError, match="card.json not found"):
        evaluate.main(["--vectors", str(vectors_path), "--similarity", str(pairs), "--card"])
