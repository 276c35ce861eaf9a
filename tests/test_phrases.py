"""convert_to_int.py --phrases (w2v/phrases.py): exact joins on tiny corpora, both scorings against a plain-Python
reference, passes, the PROPN-only setting, flag errors."""
import collections
import json
import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from w2v import phrases
from w2v.common import StageError
from helpers import read_ids, run_convert, write_prep


def vocab_of(data_dir: Path) -> dict:
    return json.loads((data_dir / "vocab.json").read_text(encoding="utf-8"))


def words_of_ids(data_dir: Path) -> list[list[list[str]]]:
    words = vocab_of(data_dir)["words"]
    return [[[words[i] for i in doc] for doc in part] for part in read_ids(data_dir)]


def test_a_pair_always_together_is_joined_and_a_frequent_chance_pair_is_not(tmp_path):
    # N = 200 tokens: нью and йорк 6 times, always together; кот and дом 40 times each, side by side 8 times,
    # what chance gives 40 * 40 / 200; the words between them are seen once each.
    between = [a + b for a in "абвгдл" for b in "ежзик"]
    docs = [["нью", "йорк", "кот", "дом"]] * 6 + [["кот", "дом", "кот", "я", "дом"]] * 2 + \
        [["кот", word, "дом"] for word in between] + [["я"]] * 76
    assert sum(map(len, docs)) == 200
    write_prep(tmp_path, [docs[:20], docs[20:]])
    # word2phrase, pair min_count 5: нью йорк (6 - 5) / (6 * 6) * 200 = 5.6; кот дом (8 - 5) / (40 * 40) * 200 = 0.375;
    # йорк кот (6 - 5) / (6 * 40) * 200 = 0.83
    figures = run_convert(tmp_path, "--min-count", "1", "--phrases", "1", "--phrase-threshold", "1")
    vocab = vocab_of(tmp_path)
    assert "нью_йорк" in vocab["words"] and not {"нью", "йорк", "кот_дом", "йорк_кот"} & set(vocab["words"])
    assert vocab["counts"][vocab["words"].index("нью_йорк")] == 6
    assert words_of_ids(tmp_path)[0][0] == ["нью_йорк", "кот", "дом"]
    assert vocab["vocab_tokens"] == 194 and vocab["corpus_tokens"] == 200
    assert vocab["phrases"] == 1 and vocab["phrase_scoring"] == "word2phrase" and vocab["phrase_threshold"] == 1.0
    assert figures["phrase_passes"][0]["pairs_joined"] == 1 and figures["phrase_passes"][0]["joins"] == 6
    # pairs seen 5 times or more: нью йорк, йорк кот, кот дом
    assert figures["phrase_passes"][0]["pairs_seen_min_count"] == 3 and figures["phrases_in_vocab"] == 1
    # Between 0.375 and 0.83 the threshold joins йорк кот after нью йорк took йорк: no change; at 0.3 кот дом too.
    run_convert(tmp_path, "--min-count", "1", "--phrases", "1", "--phrase-threshold", "0.5")
    assert words_of_ids(tmp_path)[0][0] == ["нью_йорк", "кот", "дом"]
    run_convert(tmp_path, "--min-count", "1", "--phrases", "1", "--phrase-threshold", "0.3")
    assert words_of_ids(tmp_path)[0][0] == ["нью_йорк", "кот_дом"]


def test_joins_go_left_to_right_a_unit_once_per_pass_and_passes_extend_them(tmp_path):
    # а б в every time: both pairs pass; one pass gives а_б в, the second а_б_в.
    write_prep(tmp_path, [[["а", "б", "в", "г"]] * 4, [["г", "д"]] * 4])
    run_convert(tmp_path, "--min-count", "1", "--phrases", "1", "--phrase-min-count", "1",
                "--phrase-threshold", "1.5")
    assert words_of_ids(tmp_path)[0][0] == ["а_б", "в_г"]
    run_convert(tmp_path, "--min-count", "1", "--phrases", "2", "--phrase-min-count", "1",
                "--phrase-threshold", "1.5")
    assert words_of_ids(tmp_path)[0][0] == ["а_б_в_г"] and words_of_ids(tmp_path)[1][0] == ["г_д"]


def test_no_join_across_a_dropped_word_or_a_document(tmp_path):
    # x is below --min-count: "а x б" is not the pair а б, and "а" ending a document is not followed by "б".
    write_prep(tmp_path, [[["а", "б"], ["а", "б"], ["а", "x", "б"], ["а"], ["б", "а", "б"]]])
    run_convert(tmp_path, "--min-count", "2", "--phrases", "1", "--phrase-min-count", "1",
                "--phrase-threshold", "0.1")
    assert words_of_ids(tmp_path) == [[["а_б"], ["а_б"], ["а", "б"], ["а"], ["б", "а_б"]]]


def test_greedy():
    joinable = np.array([True, True, True, False, True, True, False, True])
    assert phrases.greedy(joinable).tolist() == [True, False, True, False, True, False, False, True]
    assert phrases.greedy(np.zeros(0, dtype=bool)).tolist() == []


def test_joins_that_make_one_key_are_one_unit():
    keys = pa.array(["а", "б", "в", "а_б"])
    assert phrases.canonical_units(keys, pa.array(["а_б", "б_в", "б_в", "в_в"])).tolist() == [3, 5, 5, 7]


def reference(docs: list[list[str]], min_count: int, passes: int, scoring: str, threshold: float,
              pair_min_count: int) -> tuple[list[str], list[int], list[list[str]]]:
    """The phrases of a plain corpus, one token at a time: (vocabulary words, their counts, documents)."""
    counts = collections.Counter(word for doc in docs for word in doc)
    stream = [[word if counts[word] >= min_count else None for word in doc] for doc in docs]
    for _ in range(passes):
        units = collections.Counter(unit for doc in stream for unit in doc if unit is not None)
        total = sum(units.values())
        pairs = collections.Counter((a, b) for doc in stream for a, b in zip(doc, doc[1:])
                                    if a is not None and b is not None)

        def passes_threshold(pair: tuple[str, str]) -> bool:
            n_ab, n_a, n_b = pairs[pair], units[pair[0]], units[pair[1]]
            if n_ab < pair_min_count:
                return False
            if scoring == "word2phrase":
                return (n_ab - pair_min_count) / (n_a * n_b) * total > threshold
            npmi = 1.0 if n_ab == total else math.log(n_ab * total / (n_a * n_b)) / -math.log(n_ab / total)
            return npmi > threshold

        joined = {pair for pair in pairs if passes_threshold(pair)}
        new_stream = []
        for doc in stream:
            out, i = [], 0
            while i < len(doc):
                if i + 1 < len(doc) and (doc[i], doc[i + 1]) in joined:
                    out.append(doc[i] + "_" + doc[i + 1])
                    i += 2
                else:
                    out.append(doc[i])
                    i += 1
            new_stream.append(out)
        stream = new_stream
    final = collections.Counter(unit for doc in stream for unit in doc if unit is not None)
    vocab = sorted((word for word, count in final.items() if count >= min_count), key=lambda w: (-final[w], w))
    kept = set(vocab)
    docs_out = [[unit for unit in doc if unit in kept] for doc in stream]
    return vocab, [final[word] for word in vocab], [doc for doc in docs_out if doc]


def random_corpus(seed: int) -> list[list[str]]:
    """Zipf-like words with planted pairs and a planted run of four, in documents of 1-12 tokens."""
    rng = random.Random(seed)
    words = ["и", "в", "кот", "дом", "сад", "лес", "мост", "река", "поле", "гора", "снег", "ёж"]
    weights = [1 / (rank + 1) for rank in range(len(words))]
    docs = []
    for _ in range(300):
        doc = []
        while len(doc) < rng.randint(1, 12):
            roll = rng.random()
            if roll < 0.05:
                doc += ["нью", "йорк"]
            elif roll < 0.08:
                doc += ["санкт", "петербург", "невский", "проспект"]
            else:
                doc.append(rng.choices(words, weights)[0])
        docs.append(doc)
    return docs


@pytest.mark.parametrize("scoring, threshold, passes, min_count, pair_min_count", [
    ("word2phrase", 20.0, 1, 1, 5),
    ("word2phrase", 10.0, 2, 3, 5),
    ("npmi", 0.3, 1, 1, 5),
    ("npmi", 0.2, 2, 30, 3),
])
def test_both_scorings_match_a_token_by_token_reference(tmp_path, scoring, threshold, passes, min_count,
                                                        pair_min_count):
    docs = random_corpus(7)
    write_prep(tmp_path, [docs[:120], docs[120:]])
    figures = run_convert(tmp_path, "--min-count", str(min_count), "--phrases", str(passes), "--phrase-scoring",
                          scoring, "--phrase-threshold", str(threshold), "--phrase-min-count", str(pair_min_count),
                          "--buckets", "3")
    words, counts, expected = reference(docs, min_count, passes, scoring, threshold, pair_min_count)
    vocab = vocab_of(tmp_path)
    assert vocab["words"] == words and vocab["counts"] == counts
    assert [doc for part in words_of_ids(tmp_path) for doc in part] == expected
    joined = [word for word in words if "_" in word]
    assert 0 < len(joined) < 20 and figures["phrases_in_vocab"] == len(joined)  # some pairs join, not all


@pytest.mark.slow
def test_two_workers_and_max_vocab(tmp_path):
    docs = random_corpus(3)
    for workers in ("1", "2"):
        write_prep(tmp_path / workers, [docs[:100], docs[100:200], docs[200:]])
        run_convert(tmp_path / workers, "--num-proc", workers, "--min-count", "2", "--phrases", "2",
                    "--phrase-threshold", "5", "--max-vocab", "6")
    assert vocab_of(tmp_path / "1") == vocab_of(tmp_path / "2")
    assert read_ids(tmp_path / "1") == read_ids(tmp_path / "2")
    words, counts, _ = reference(docs, 2, 2, "word2phrase", 5.0, 5)
    assert vocab_of(tmp_path / "1")["words"] == words[:6] and vocab_of(tmp_path / "1")["max_vocab"] == 6
    assert not list(tmp_path.glob("*/.*convert_to_int*"))  # streams and pair files removed


@pytest.mark.slow
def test_propn_only_joins_proper_name_sequences_with_tagged_keys(tmp_path):
    doc = ["владимир", "путин", "посетил", "нижний", "новгород"]
    write_prep(tmp_path, [[doc] * 6, [["кот", "дом"]] * 4])
    run_convert(tmp_path, "--min-count", "1", "--lemmatize", "upos", "--phrases", "1", "--phrase-scoring", "npmi",
                "--phrase-min-count", "2")
    words = set(vocab_of(tmp_path)["words"])
    # Every pair of the first document is always together: left to right, the tag of the last part.
    assert {"владимир::путин_PROPN", "посетить::нижний_ADJ", "кот::дом_NOUN"} <= words
    run_convert(tmp_path, "--min-count", "1", "--lemmatize", "upos", "--phrases", "1", "--phrase-scoring", "npmi",
                "--phrase-min-count", "2", "--phrase-upos", "PROPN")
    vocab = vocab_of(tmp_path)
    assert vocab["words"] == ["владимир::путин_PROPN", "нижний_ADJ", "новгород_PROPN", "посетить_VERB", "дом_NOUN",
                              "кот_NOUN"]
    assert vocab["phrase_upos"] == ["PROPN"] and vocab["phrase_threshold"] == 0.5  # npmi's default
    assert words_of_ids(tmp_path)[0][0] == ["владимир::путин_PROPN", "посетить_VERB", "нижний_ADJ", "новгород_PROPN"]


def test_scores_by_formula():
    # n_ab = 10, n_a = 20, n_b = 40, N = 1000: word2phrase (10 - 5) / 800 * 1000; npmi ln(12.5) / ln(100)
    got = phrases.scores(np.array([10, 4, 1000]), np.array([20, 20, 1000]), np.array([40, 40, 1000]), 1000,
                         "word2phrase", 5)
    assert got[0] == pytest.approx(6.25) and got[1] < 0
    got = phrases.scores(np.array([10, 4, 1000]), np.array([20, 20, 1000]), np.array([40, 40, 1000]), 1000, "npmi", 5)
    assert got[0] == pytest.approx(math.log(12.5) / math.log(100)) and got[1] == -math.inf and got[2] == 1.0


@pytest.mark.parametrize("flags, message", [
    (["--phrase-scoring", "pmi"], "--phrase-scoring must be one of word2phrase, npmi, got 'pmi'"),
    (["--phrase-scoring", "npmi", "--phrase-threshold", "2"],
     "--phrase-threshold must be above -1 and at most 1 with npmi scoring, got 2.0"),
    (["--phrase-threshold", "-0.5"], "--phrase-threshold must be above 0 with word2phrase scoring, got -0.5"),
    (["--phrase-threshold", "-3"], "--phrase-threshold must be above -1, got -3.0"),
    (["--phrases", "-1"], "--phrases must be at least 0, got -1"),
    (["--phrase-min-count", "0"], "--phrase-min-count must be at least 1, got 0"),
    (["--phrase-upos", "PROPN"], "--phrase-upos needs --lemmatize upos (tagged keys), got --lemmatize none"),
    (["--lemmatize", "upos", "--phrase-upos", "NAME"], "--phrase-upos takes UPOS tags (ADJ, .*), got NAME"),
])
def test_bad_phrase_flags_are_one_line(tmp_path, flags, message):
    write_prep(tmp_path, [[["а", "б"]]])
    with pytest.raises(StageError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}$"):
        run_convert(tmp_path, "--phrases", "1", *flags)
    assert not (tmp_path / "ids").exists()
