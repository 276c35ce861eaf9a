"""w2v/vectors_io.py: the word2vec text/binary files gensim reads, and load_vectors for them and embeddings.npy."""
import json

import numpy as np
import pytest

from w2v.common import StageError
from w2v.vectors_io import load_vectors, save_word2vec_binary, save_word2vec_text

WORDS = ["the", "и", "Москва", "ёлка", "naïve", "x", "слово", "Word", "word", "—"]


@pytest.fixture
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    values = (rng.standard_normal((len(WORDS), 24)) * 0.4).astype(np.float32)
    values[0, :4] = [0.0, -0.0, 12.5, -123.456789]  # zeros, several integer digits, negative with digits
    values[1, :3] = [1e-9, -1e-9, -0.9999999]  # round to (minus) zero and to -1
    return values


def test_text_numbers_have_nine_significant_digits(tmp_path):
    path = tmp_path / "v.txt"
    values = np.array([[0.5, -1.25, 0.0, -0.0], [1 / 3, 123.4567891, -10.0, -0.000123456789]], dtype=np.float32)
    save_word2vec_text(path, ["a", "б"], values)
    assert path.read_bytes() == ("2 4\na 0.5 -1.25 0.0 -0.0\n"
                                 "б 0.333333343 123.456787 -10.0 -0.00012345679\n").encode("utf-8")  # as "%.9g"


def test_huge_and_non_finite_values_survive_text(tmp_path):
    path = tmp_path / "v.txt"
    values = np.array([[np.nan, 1e13, -2.5], [1.0, 2.0, 3.0]], dtype=np.float32)
    save_word2vec_text(path, ["a", "b"], values)
    assert path.read_text().splitlines()[1:] == ["a nan 1e+13 -2.5", "b 1.0 2.0 3.0"]  # str(np.float32) for a
    _, loaded = load_vectors(path)
    np.testing.assert_array_equal(loaded, values)  # nan == nan here


def test_gensim_reads_both_formats_and_so_do_we(tmp_path, vectors):
    pytest.importorskip("gensim")
    text, binary = tmp_path / "v.txt", tmp_path / "v.bin"
    save_word2vec_text(text, WORDS, vectors)
    save_word2vec_binary(binary, WORDS, vectors)
    from gensim.models import KeyedVectors
    from_text = KeyedVectors.load_word2vec_format(str(text), binary=False)
    from_binary = KeyedVectors.load_word2vec_format(str(binary), binary=True)
    assert from_text.index_to_key == WORDS and from_binary.index_to_key == WORDS
    np.testing.assert_array_equal(from_binary.vectors, vectors)  # float32 exact
    np.testing.assert_array_equal(from_text.vectors, vectors)  # 9 significant digits: exact too

    words, ours = load_vectors(text)
    assert words == WORDS and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, vectors)
    words, ours = load_vectors(binary)
    assert words == WORDS
    np.testing.assert_array_equal(ours, vectors)


def test_text_is_exact_over_the_float32_range(tmp_path):
    rng = np.random.default_rng(3)
    values = (rng.standard_normal((300, 40)) * np.exp(rng.uniform(-20, 10, (300, 40)))).astype(np.float32)
    values[0, :5] = [np.float32(1e-45), -np.float32(3.4e38), 999.99994, 0.099999994, 1e-7]
    save_word2vec_text(tmp_path / "v.txt", [f"w{i}" for i in range(300)], values)
    _, loaded = load_vectors(tmp_path / "v.txt")
    np.testing.assert_array_equal(loaded, values)


def test_gensim_written_files_load(tmp_path, vectors):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors
    model = KeyedVectors(vectors.shape[1])
    model.add_vectors(WORDS, vectors)
    model.save_word2vec_format(str(tmp_path / "g.txt"), binary=False)
    model.save_word2vec_format(str(tmp_path / "g.w2v"), binary=True)  # gensim's binary: no newline after vectors
    words, loaded = load_vectors(tmp_path / "g.w2v")  # binary found by sniffing, not by extension
    assert words == WORDS
    np.testing.assert_array_equal(loaded, vectors)
    words, loaded = load_vectors(tmp_path / "g.txt")  # repr() numbers: full float32 precision
    assert words == WORDS
    np.testing.assert_array_equal(loaded, vectors)


def test_binary_sniffed_without_bin_extension(tmp_path, vectors):
    save_word2vec_binary(tmp_path / "vectors.dat", WORDS, vectors)
    words, loaded = load_vectors(tmp_path / "vectors.dat")
    assert words == WORDS
    np.testing.assert_array_equal(loaded, vectors)


def test_word2vec_c_text_with_trailing_spaces_and_duplicates(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"3 2\nx 1.5 -2 \ny 0.25 4e-1 \nx 9 9 \n")
    words, loaded = load_vectors(path)
    assert words == ["x", "y"]  # a repeated word keeps its first row, as gensim's loader
    np.testing.assert_array_equal(loaded, np.array([[1.5, -2.0], [0.25, 0.4]], dtype=np.float32))


def test_npy_with_vocab_json(tmp_path, vectors):
    data = tmp_path / "data"
    (data / "model").mkdir(parents=True)
    np.save(data / "model" / "embeddings.npy", vectors)
    (data / "vocab.json").write_text(json.dumps({"words": WORDS, "counts": list(range(10, 0, -1))}),
                                     encoding="utf-8")
    for source in (data / "model" / "embeddings.npy", [data / "model" / "embeddings.npy", data / "vocab.json"]):
        words, loaded = load_vectors(source)
        assert words == WORDS
        np.testing.assert_array_equal(loaded, vectors)
    (data / "vocab.json").write_text(json.dumps({"words": WORDS[:-1], "counts": []}), encoding="utf-8")
    with pytest.raises(StageError, match=r"shape \(10, 24\) but .* lists 9 words"):
        load_vectors(data / "model" / "embeddings.npy")


def test_writes_are_atomic_and_replace(tmp_path, vectors):
    path = tmp_path / "v.txt"
    save_word2vec_text(path, WORDS, vectors)
    save_word2vec_text(path, WORDS[:2], vectors[:2])
    assert path.read_text(encoding="utf-8").startswith("2 24\n")
    with pytest.raises(StageError, match="whitespace"):
        save_word2vec_binary(tmp_path / "bad.bin", ["ok", "two words"], vectors[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.txt"]  # nothing half-written left behind


@pytest.mark.parametrize("content, message", [
    (b"", "not a word2vec file"),
    (b"hello world\n", "not a word2vec file"),
    (b"3 2\na 1 2\nb 3 4\n", "truncated"),
    (b"2 2\na 1 2\nb 3\n", "garbled"),
    (b"2 2\na 1 2\nb 3 x\n", "garbled"),
])
def test_garbled_text_is_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(StageError, match=message) as error:
        load_vectors(path)
    assert "\n" not in str(error.value)


def test_truncated_binary_and_missing_file(tmp_path, vectors):
    path = tmp_path / "v.bin"
    save_word2vec_binary(path, WORDS, vectors)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(StageError, match="truncated or garbled at vector 10 of 10"):
        load_vectors(path)
    with pytest.raises(StageError, match="not found"):
        load_vectors(tmp_path / "missing.txt")


def test_header_disagreeing_with_the_rows(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"2 3\na 1 2\nb 3 4\n")
    with pytest.raises(StageError, match="first vector has 2 numbers, the header says 3"):
        load_vectors(path)
