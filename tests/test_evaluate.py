"""evaluate.py: analogy and similarity figures equal to gensim's on the same vectors file; neighbours; the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import evaluate
from w2v.common import StageError
from evaluate import (evaluate_analogies, evaluate_similarity, main, merge_repeated_flags, nearest_neighbours,
                      rank_average, spearman)
from w2v.vectors_io import save_word2vec_binary, save_word2vec_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample"  # the evaluation sets shipped with the project
RESTRICT = 160  # of 200 words: the restriction decides which questions count and which answers exist


def planted_analogies(folder: Path, noise: float = 2.0, seed: int = 3) -> tuple[list[str], np.ndarray, Path]:
    """200 words in two analogy sections with planted offsets, plus the cases where conventions differ:
    case variants, words beyond the restriction, unknown words, an invalid line, an empty section."""
    rng = np.random.default_rng(seed)
    dim, size = 32, 200
    words = [f"filler{i}" for i in range(size)]
    vectors = rng.standard_normal((size, dim))
    slots = iter(rng.permutation(np.arange(1, 140)).tolist())  # rows 0 and 140..159: placed by hand below
    outside = iter(range(170, 200))
    offsets = rng.standard_normal((2, dim)) * 1.5

    def place(word, vector, row=None):
        row = next(slots) if row is None else row
        words[row], vectors[row] = word, vector

    pairs = {0: [], 1: []}
    for i in range(12):
        base = rng.standard_normal(dim)
        place(f"Country{i}", base)
        # pair 11's answer lies beyond the restriction: its 22 questions are skipped
        place(f"Capital{i}", base + offsets[0] + noise * rng.standard_normal(dim), next(outside) if i == 11 else None)
        pairs[0].append((f"Country{i}", f"Capital{i}"))
        noun = rng.standard_normal(dim)
        place(f"noun{i}", noun)
        place(f"noun{i}s", noun + offsets[1] + noise * rng.standard_normal(dim))
        pairs[1].append((f"noun{i}", f"noun{i}s"))
    row_of = {word: row for row, word in enumerate(words)}
    place("CAPITAL3", vectors[row_of["Capital3"]] + 0.05 * rng.standard_normal(dim), 152)  # counts as Capital3
    place("capital5", vectors[row_of["Capital5"]] + 0.3 * rng.standard_normal(dim), 0)  # more frequent spelling
    place("NOUN2S", rng.standard_normal(dim), 155)
    place("Noun4", vectors[row_of["noun4"]] + 0.01, 185)  # beyond the restriction
    place("decoy", vectors[row_of["Country2"]] + offsets[0], 195)  # the ideal answer, but beyond the restriction
    place("COUNTRY7", vectors[row_of["Country7"]] + 0.05 * rng.standard_normal(dim), 153)  # a spelling of c wins
    for row, spelling in zip(range(140, 145), ["COUNTRY0", "country0", "cOUNTRY0", "CoUNTRY0", "COuNTRY0"]):
        place(spelling, vectors[row_of["Country0"]] + 0.02 * rng.standard_normal(dim), row)  # fill gensim's top 5
    lines = [": capital-common-countries"]
    lines += [f"{a} {b} {c} {d}" for a, b in pairs[0] for c, d in pairs[0] if a != c]
    lines += ["Country1 Capital1 Atlantis Nowhere", "Country1 Capital1 Country2"]  # unknown words; invalid line
    lines += [": gram8-plural"]
    lines += [f"{a} {b} {c} {d}" for a, b in pairs[1] for c, d in pairs[1] if a != c]
    lines += ["NOUN1 NOUN1S Noun4 noun4s", "noun1 noun1s zzz zzzs", ": empty-section", "a b c d"]
    path = folder / "questions.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return words, vectors.astype(np.float32), path


def gensim_vectors(tmp_path: Path, words: list[str], vectors: np.ndarray):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    path = tmp_path / "vectors.bin"
    save_word2vec_binary(path, words, vectors)
    return KeyedVectors.load_word2vec_format(str(path), binary=True)


@pytest.mark.slow
@pytest.mark.parametrize("lowercase", [True, False])
def test_analogies_equal_gensim(tmp_path, lowercase):
    words, vectors, questions = planted_analogies(tmp_path)
    model = gensim_vectors(tmp_path, words, vectors)
    total, sections = model.evaluate_word_analogies(str(questions), restrict_vocab=RESTRICT,
                                                    case_insensitive=lowercase)
    ours = evaluate_analogies(words, vectors, questions, restrict_vocab=RESTRICT, lowercase=lowercase)
    theirs = [(s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections]
    assert [(s["section"], s["correct"], s["scored"]) for s in ours["sections"] + [ours["total"]]] == theirs
    assert ours["total"]["accuracy"] == total
    assert 0.3 < ours["total"]["accuracy"] < 0.7  # planted structure, noisy: neither trivially right nor wrong
    # Skipped: pair 11 (22 questions) and Atlantis; zzz, and, case-sensitively, NOUN1 (no such spelling).
    assert [s["skipped"] for s in ours["sections"]] == [23, 1 if lowercase else 2, 1]
    assert [s["scored"] for s in ours["sections"]] == [110, 133 if lowercase else 132, 0]
    assert ours["invalid_lines"] == 1 and ours["questions"] == 133 + 134 + 1
    assert ours["restrict_vocab"] == RESTRICT


def test_restriction_and_case_change_the_figures(tmp_path):
    words, vectors, questions = planted_analogies(tmp_path)
    restricted = evaluate_analogies(words, vectors, questions, restrict_vocab=RESTRICT)
    everything = evaluate_analogies(words, vectors, questions, restrict_vocab=0)
    assert everything["restrict_vocab"] == 200
    assert everything["total"]["scored"] == restricted["total"]["scored"] + 22  # pair 11
    exact = evaluate_analogies(words, vectors, questions, restrict_vocab=RESTRICT, lowercase=False)
    assert exact["total"]["correct"] != restricted["total"]["correct"]


def test_empty_analogy_file_section_and_errors(tmp_path):
    words, vectors = ["a", "b"], np.eye(2, dtype=np.float32)
    path = tmp_path / "q.txt"
    path.write_text(": only\nx y z w\n", encoding="utf-8")
    result = evaluate_analogies(words, vectors, path)
    assert result["total"] == {"section": "Total accuracy", "correct": 0, "scored": 0, "skipped": 1,
                               "accuracy": 0.0}
    path.write_text("a b a b\n", encoding="utf-8")
    with pytest.raises(StageError, match="line 1: a question before any ': section' line"):
        evaluate_analogies(words, vectors, path)


def similarity_data(tmp_path: Path, delimiter: str) -> tuple[list[str], np.ndarray, Path]:
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(150)] + ["Москва", "ёж", "Word", "word", "WORD"]
    vectors = rng.standard_normal((len(words), 16)).astype(np.float32)
    lines = ["# a comment line", delimiter.join(["word1", "word2", "score"])]  # the header is not a pair
    for _ in range(80):
        first, second = rng.choice(len(words) + 10, 2, replace=False)  # ids beyond the vocabulary: unknown
        name = [words[i] if i < len(words) else f"unknown{i}" for i in (first, second)]
        if rng.random() < 0.2:
            name[0] = name[0].upper()  # found only case-insensitively
        lines.append(delimiter.join([name[0], name[1], str(int(rng.integers(0, 6)))]))  # many tied scores
    lines.append(delimiter.join(["москва", "ЁЖ", "3.5"]))
    path = tmp_path / ("pairs.csv" if delimiter == "," else "pairs.tsv")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return words, vectors, path


@pytest.mark.parametrize("delimiter", ["\t", ","])
@pytest.mark.parametrize("lowercase", [True, False])
@pytest.mark.parametrize("restrict", [0, 100])
def test_similarity_equals_gensim(tmp_path, delimiter, lowercase, restrict):
    words, vectors, path = similarity_data(tmp_path, delimiter)
    model = gensim_vectors(tmp_path, words, vectors)
    pearson, rho, oov_percent = model.evaluate_word_pairs(str(path), delimiter=delimiter,
                                                          restrict_vocab=restrict or 300000,
                                                          case_insensitive=lowercase)
    ours = evaluate_similarity(words, vectors, path, lowercase=lowercase, restrict_vocab=restrict)
    assert abs(ours["spearman"] - rho.statistic) < 1e-9
    assert abs(ours["pearson"] - pearson.statistic) < 1e-6  # our cosines are float64, gensim's float32
    assert ours["total"] == 81 and ours["invalid_lines"] == 1
    assert ours["skipped"] == round(oov_percent / 100 * ours["total"])
    assert ours["support"] == f"{ours['scored']}/81" and 20 < ours["scored"] < 81


@pytest.mark.parametrize("name, delimiter", [("eval_en/wordsim353.tsv", "\t"), ("eval_en/simlex999.txt", "\t"),
                                             ("eval/ru_simlex965.tsv", "\t"), ("eval/hj.csv", ",")])
def test_similarity_on_the_real_files_equals_gensim(tmp_path, name, delimiter):
    path = SAMPLE / name
    pairs = [line.split(delimiter) for line in path.read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    # hj.csv has one padded word (", оракул"): we strip it, gensim does not; leave that pair unknown to both.
    vocab = sorted({word.strip().lower() for pair in pairs for word in pair[:2]} - {"монах"})
    rng = np.random.default_rng(5)
    words = [vocab[i] for i in rng.permutation(len(vocab))[:-15]]  # 15 words unknown
    vectors = rng.standard_normal((len(words), 12)).astype(np.float32)
    model = gensim_vectors(tmp_path, words, vectors)
    _, rho, oov_percent = model.evaluate_word_pairs(str(path), delimiter=delimiter)
    ours = evaluate_similarity(words, vectors, path)
    assert abs(ours["spearman"] - rho.statistic) < 1e-9
    assert abs(100 * ours["skipped"] / ours["total"] - oov_percent) < 1e-9
    assert ours["total"] == {"eval_en/wordsim353.tsv": 353, "eval_en/simlex999.txt": 999,
                             "eval/ru_simlex965.tsv": 965, "eval/hj.csv": 398}[name]


def test_padded_fields_and_space_separated_pairs(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("a, b ,1\nb   c 2\na\tc\t3\nnot a pair\n", encoding="utf-8")
    vectors = np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32)
    result = evaluate_similarity(["a", "b", "c"], vectors, path)
    assert result["scored"] == 3 and result["invalid_lines"] == 1
    assert result["spearman"] == pytest.approx(-0.75 ** 0.5)  # cosines 0.707, 0.707, 0 against 1, 2, 3


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for size in (2, 3, 10, 57, 500):
        x = rng.integers(0, 5, size).astype(float)
        y = rng.integers(0, 4, size) + rng.random(size) * (rng.random() < 0.5)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    np.testing.assert_array_equal(rank_average(np.array([3.0, 1.0, 3.0, 2.0, 3.0])), [4, 1, 4, 2, 4])
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


TINY_WORDS = ["a", "b", "c", "d", "B"]
TINY = np.array([[1, 0], [1, 1], [0, 1], [-1, 0], [3, 3.3]], dtype=np.float32)


def test_nearest_neighbours_exact():
    def nearest(query: str, k: int, lowercase: bool = True) -> list[tuple[str, float]]:
        return nearest_neighbours(TINY_WORDS, TINY, [query], k, lowercase=lowercase)[query]

    found = nearest("a", 3)
    assert [word for word, _ in found] == ["b", "B", "c"]
    assert [cosine for _, cosine in found] == pytest.approx([0.5 ** 0.5, 3 / (3 ** 2 + 3.3 ** 2) ** 0.5, 0.0],
                                                            abs=1e-6)
    assert [word for word, _ in nearest("a", 10)] == ["b", "B", "c", "d"]
    assert nearest("B", 1)[0][0] == "b"  # the exact spelling wins
    assert nearest("D", 1) == [("c", pytest.approx(0.0, abs=1e-6))]  # D -> d, whose nearest is c
    with pytest.raises(KeyError):
        nearest("D", 1, lowercase=False)


@pytest.fixture
def tiny_vectors(tmp_path) -> Path:
    path = tmp_path / "vectors.txt"
    save_word2vec_text(path, TINY_WORDS, TINY)
    return path


def test_cli_neighbours_and_unknown_word(tiny_vectors, capsys):
    figures = main(["--vectors", str(tiny_vectors), "--neighbors", "a", "zzz", "c", "--k", "2"])
    out = capsys.readouterr().out
    assert "unknown word: zzz" in out
    assert "a: b 0.707, B 0.673" in out and "c: B 0.740, b 0.707" in out
    assert figures["neighbors"]["zzz"] is None
    assert [word for word, _ in figures["neighbors"]["c"]] == ["B", "b"]
    assert figures["words"] == 5 and figures["dim"] == 2


def test_cli_analogies_similarity_and_json(tmp_path, capsys):
    words, vectors, questions = planted_analogies(tmp_path)
    save_word2vec_text(tmp_path / "vectors.txt", words, vectors)
    other = tmp_path / "more.txt"
    other.write_text(questions.read_text(encoding="utf-8"), encoding="utf-8")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("word1,word2,sim\nCountry1,Capital1,1\nnoun1,noun2,2\nnoun1,noun1s,0.5\n", encoding="utf-8")
    out_json = tmp_path / "out" / "eval.json"
    common = ["--vectors", str(tmp_path / "vectors.txt"), "--restrict-vocab", str(RESTRICT)]
    repeated = main(common + ["--analogies", str(questions), "--similarity", str(pairs),
                              "--analogies", str(other), "--json", str(out_json)])
    together = main(common + ["--analogies", str(questions), str(other), "--similarity", str(pairs)])
    assert list(repeated["analogies"]) == ["questions.txt", "more.txt"] == list(together["analogies"])
    expected = evaluate_analogies(words, vectors, questions, restrict_vocab=RESTRICT)
    expected_total = {key: expected["total"][key] for key in ("correct", "scored", "skipped")}
    assert {key: together["analogies"]["more.txt"]["total"][key] for key in expected_total} == expected_total
    assert repeated["similarity"]["pairs.csv"]["support"] == "3/3"
    saved = json.loads(out_json.read_text(encoding="utf-8"))
    assert saved["analogies"]["questions.txt"]["sections"] == repeated["analogies"]["questions.txt"]["sections"]
    assert saved["similarity"] == repeated["similarity"]
    out = capsys.readouterr().out
    assert "Total accuracy" in out and "3CosAdd over the 160 most frequent words" in out
    assert f"{expected['total']['correct']:>7,}/{expected['total']['scored']:<8,}" in out


def test_cli_reads_npy_with_vocab(tmp_path):
    (tmp_path / "model").mkdir()
    np.save(tmp_path / "model" / "embeddings.npy", TINY)
    (tmp_path / "vocab.json").write_text(json.dumps({"words": TINY_WORDS, "counts": [5, 4, 3, 2, 1]}))
    figures = main(["--data-dir", str(tmp_path), "--vectors", str(tmp_path / "model" / "embeddings.npy"),
                    "--neighbors", "d", "--k", "1"])
    assert figures["neighbors"]["d"] == [("c", pytest.approx(0.0, abs=1e-7))]


def test_merge_repeated_flags():
    assert merge_repeated_flags(["--analogies", "a", "--k", "3", "--analogies=b", "c", "--neighbors", "x"],
                                ("--analogies", "--neighbors")) == \
        ["--analogies", "a", "b", "c", "--k", "3", "--neighbors", "x"]
    assert merge_repeated_flags(["--neighbors", "-1.5", "x"], ("--neighbors",)) == ["--neighbors", "-1.5", "x"]


def test_errors_are_stage_errors(tmp_path, tiny_vectors):
    with pytest.raises(StageError, match="missing.txt not found: run train.py first"):
        main(["--vectors", str(tmp_path / "missing.txt"), "--neighbors", "a"])
    with pytest.raises(StageError, match="model/vectors.txt not found"):
        main(["--data-dir", str(tmp_path), "--neighbors", "a"])
    with pytest.raises(StageError, match="nothing to evaluate"):
        main(["--vectors", str(tiny_vectors), "--similarity"])
    with pytest.raises(StageError, match="nope.txt not found"):
        main(["--vectors", str(tiny_vectors), "--analogies", str(tmp_path / "nope.txt")])


@pytest.mark.slow
def test_shell_shows_one_error_line(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--vectors", str(tmp_path / "none.bin"),
                           "--neighbors", "a"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'none.bin'} not found: run train.py first"]
    assert "Traceback" not in done.stderr


def test_module_constants_are_flags():
    assert evaluate.RESTRICT_VOCAB == 30000 and evaluate.ANALOGIES == [] and evaluate.LOWERCASE is True


def test_default_similarity_files_are_the_shipped_russian_sets(tiny_vectors, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # found beside evaluate.py, not in the working directory
    figures = main(["--vectors", str(tiny_vectors)])
    assert [Path(path) for path in evaluate.SIMILARITY] == [SAMPLE / "eval" / "ru_simlex965.tsv",
                                                            SAMPLE / "eval" / "hj.csv"]
    assert {name: result["total"] for name, result in figures["similarity"].items()} == \
        {"ru_simlex965.tsv": 965, "hj.csv": 398}
