"""convert_to_int.py --lemmatize / --drop-pos (w2v/morphology.py) and evaluate.py on lemmatized vectors."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import convert_to_int
import evaluate
import prep
from w2v.common import StageError
from w2v.morphology import analyse_types, is_tagged, key_of_evaluation_word
from helpers import read_ids, run_convert, write_prep

REPO = Path(__file__).resolve().parent.parent

# москва in four cases (1 + 2 + 1 + 1 = 5), кот in two (2 + 1 = 3), function words and есть.
PARTS = [
    [["москва", "москвы", "кот", "и", "я"], ["москве", "кот", "есть", "в"]],
    [["москву", "коты", "москвы", "был"], ["быть", "и", "я"]],
]


def vocab_of(data_dir: Path) -> dict:
    return json.loads((data_dir / "vocab.json").read_text(encoding="utf-8"))


def words_of_ids(data_dir: Path) -> list[list[list[str]]]:
    words = vocab_of(data_dir)["words"]
    return [[[words[i] for i in doc] for doc in part] for part in read_ids(data_dir)]


@pytest.mark.slow
def test_forms_merge_into_their_lemma_and_min_count_applies_after_merging(tmp_path):
    write_prep(tmp_path, PARTS)
    figures = run_convert(tmp_path, "--min-count", "3", "--lemmatize", "lemma")
    vocab = vocab_of(tmp_path)
    # No form of москва or кот reaches 3 alone; their lemmas do. есть, был, быть: быть 3 (есть is быть, as stated).
    assert vocab["words"] == ["москва", "быть", "кот"] and vocab["counts"] == [5, 3, 3]
    assert vocab["lemmatize"] == "lemma" and vocab["drop_upos"] == [] and vocab["vocab_tokens"] == 11
    assert words_of_ids(tmp_path) == [[["москва", "москва", "кот"], ["москва", "кот", "быть"]],
                                      [["москва", "кот", "москва", "быть"], ["быть"]]]
    assert figures["distinct_words"] == 12 and figures["lemmatize"] == "lemma"


@pytest.mark.slow
def test_upos_keys_and_drop_pos_removes_function_words(tmp_path):
    write_prep(tmp_path, PARTS)
    run_convert(tmp_path, "--min-count", "1", "--lemmatize", "upos")
    vocab = vocab_of(tmp_path)
    assert vocab["words"][:3] == ["москва_PROPN", "быть_VERB", "кот_NOUN"] and vocab["counts"][:3] == [5, 3, 3]
    assert {"и_CCONJ", "я_PRON", "в_ADP"} <= set(vocab["words"])

    run_convert(tmp_path, "--min-count", "1", "--lemmatize", "upos", "--drop-pos")
    vocab = vocab_of(tmp_path)
    assert vocab["words"] == ["москва_PROPN", "быть_VERB", "кот_NOUN"]
    assert vocab["drop_upos"] == ["ADP", "AUX", "CCONJ", "DET", "PART", "PRON", "SCONJ"]
    assert words_of_ids(tmp_path) == [[["москва_PROPN", "москва_PROPN", "кот_NOUN"],
                                       ["москва_PROPN", "кот_NOUN", "быть_VERB"]],
                                      [["москва_PROPN", "кот_NOUN", "москва_PROPN", "быть_VERB"], ["быть_VERB"]]]

    # --drop-pos alone: the words stay as they are, only function words leave.
    run_convert(tmp_path, "--min-count", "1", "--drop-pos", "--drop-upos", "PRON")
    vocab = vocab_of(tmp_path)
    assert "я" not in vocab["words"] and {"и", "в", "москвы"} <= set(vocab["words"])
    assert vocab["lemmatize"] == "none" and vocab["drop_upos"] == ["PRON"]


@pytest.mark.slow
def test_two_workers_write_what_one_writes(tmp_path):
    for workers in ("1", "2"):
        write_prep(tmp_path / workers, PARTS)
        convert_to_int.main(["--data-dir", str(tmp_path / workers), "--num-proc", workers, "--min-count", "2",
                             "--lemmatize", "upos", "--buckets", "3"])
    assert vocab_of(tmp_path / "1") == vocab_of(tmp_path / "2")
    assert read_ids(tmp_path / "1") == read_ids(tmp_path / "2")
    assert not list(tmp_path.glob("*/.*convert_to_int*"))  # forms and keys files removed


def test_analysis_of_types():
    # ё folded after lemmatizing; pronominal adjectives are DET; proper nouns from their grammemes.
    assert analyse_types(["ёлки", "елка", "этот", "иванова", "москвы", "чтобы"], "upos") == \
        ["елка_NOUN", "елка_NOUN", "этот_DET", "иванов_PROPN", "москва_PROPN", "чтобы_SCONJ"]
    assert analyse_types(["есть", "и", "коты"], "lemma", ["CCONJ"]) == ["быть", None, "кот"]
    assert analyse_types(["есть"], "none") == ["есть"]
    with pytest.raises(ValueError, match="--lemmatize must be one of none, lemma, upos, got 'lemmas'"):
        analyse_types(["кот"], "lemmas")


def test_bad_flags_are_one_line(tmp_path):
    write_prep(tmp_path, PARTS)
    with pytest.raises(StageError, match=r"^--lemmatize must be one of none, lemma, upos, got 'Lemma'$"):
        run_convert(tmp_path, "--lemmatize", "Lemma")
    with pytest.raises(StageError, match=r"^--drop-upos takes UPOS tags .*, got NOUNS$"):
        run_convert(tmp_path, "--drop-pos", "--drop-upos", "NOUNS")


# sha256 of vocab.json's bytes and of the ids (offsets then values, little-endian int32) that main's
# convert_to_int.py (9b9a587, before --lemmatize) wrote for sample/taiga_ud.txt with --min-count 2.
GOLDEN_VOCAB = "b6c1b3a9467b67e9b9310ed6ac5422e402f5f2b87a80a75a81d9ec084db7d21c"
GOLDEN_IDS = "716e0650b924bf0a3df29522f8ebd743ef83a751bf57e3444d9b78d63c0e9cd3"


@pytest.mark.parametrize("flags", [[], ["--phrases", "0", "--phrase-scoring", "npmi", "--phrase-min-count", "1"]])
def test_default_outputs_are_byte_identical_to_before(tmp_path, flags):
    prep.main(["--dataset", str(REPO / "sample" / "taiga_ud.txt"), "--data-dir", str(tmp_path), "--num-proc", "1"])
    run_convert(tmp_path, "--min-count", "2", *flags)
    assert hashlib.sha256((tmp_path / "vocab.json").read_bytes()).hexdigest() == GOLDEN_VOCAB
    digest = hashlib.sha256()
    for part in sorted((tmp_path / "ids").glob("part-*.parquet")):
        column = pq.read_table(part).column("ids").combine_chunks()
        digest.update(column.offsets.to_numpy().astype("<i4").tobytes())
        digest.update(column.values.to_numpy().astype("<i4").tobytes())
    assert digest.hexdigest() == GOLDEN_IDS


def pairs_file(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    path.write_text("# word1\tword2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows), encoding="utf-8")
    return path


# Three lemma rows: москва and город close, кот far from both.
LEMMA_WORDS = ["москва", "город", "кот"]
VECTORS = np.array([[1.0, 0.1], [0.9, 0.3], [-0.2, 1.0]], dtype=np.float32)


def test_plain_pairs_are_mapped_to_the_lemma_vocabulary(tmp_path):
    path = pairs_file(tmp_path / "pairs.tsv", [("москвы", "городе", 9.0), ("Москва", "коту", 1.0),
                                               ("городом", "котов", 2.0), ("москва", "собака", 5.0)])
    plain = evaluate.evaluate_similarity(LEMMA_WORDS, VECTORS, path)
    assert plain["support"] == "0/4"
    mapped = evaluate.evaluate_similarity(LEMMA_WORDS, VECTORS, path, lemmatize="lemma")
    assert mapped["support"] == "3/4" and mapped["spearman"] == pytest.approx(1.0)


def test_tagged_sets_read_as_they_are_and_mode_from_vocab_json(tmp_path):
    words = ["москва_PROPN", "город_NOUN", "кот_NOUN"]
    (tmp_path / "model").mkdir()
    vectors = tmp_path / "model" / "vectors.txt"
    vectors.write_text(f"3 2\n" + "".join(f"{w} {x:.3f} {y:.3f}\n" for w, (x, y) in zip(words, VECTORS)),
                       encoding="utf-8")
    (tmp_path / "vocab.json").write_text(json.dumps({"min_count": 1, "lemmatize": "upos", "words": words,
                                                     "counts": [3, 2, 1]}, ensure_ascii=False), encoding="utf-8")
    tagged = pairs_file(tmp_path / "tagged.tsv", [("москва_PROPN", "город_NOUN", 9.0), ("москва_PROPN", "кот_NOUN", 1.0),
                                                  ("город_NOUN", "кот_NOUN", 2.0)])
    plain = pairs_file(tmp_path / "plain.tsv", [("москве", "городах", 9.0), ("москвой", "котом", 1.0),
                                                ("города", "кота", 2.0)])
    figures = evaluate.main(["--vectors", str(vectors), "--similarity", str(tagged), str(plain)])
    assert figures["lemmatize"] == "upos"
    assert figures["similarity"]["tagged.tsv"]["support"] == "3/3"
    assert figures["similarity"]["plain.tsv"]["support"] == "3/3"
    assert figures["similarity"]["plain.tsv"]["spearman"] == pytest.approx(1.0)
    figures = evaluate.main(["--vectors", str(vectors), "--similarity", str(plain), "--lemmatize", "none"])
    assert figures["similarity"]["plain.tsv"]["support"] == "0/3"
    with pytest.raises(StageError, match="^--lemmatize must be one of none, lemma, upos, auto, got 'x'$"):
        evaluate.main(["--vectors", str(vectors), "--similarity", str(plain), "--lemmatize", "x"])


def test_evaluation_words():
    assert is_tagged("авария_NOUN") and not is_tagged("авария") and not is_tagged("_NOUN")
    assert key_of_evaluation_word("авария_NOUN", "lemma") == "авария_NOUN"
    assert key_of_evaluation_word("Аварии", "upos") == "авария_NOUN"
    assert key_of_evaluation_word("аварии", "none") == "аварии"
