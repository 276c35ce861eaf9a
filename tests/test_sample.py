"""sample/: the shipped data is all there, each file named in its README, and the stages read it."""
from pathlib import Path

import pyarrow.parquet as pq

import convert_to_int
import prep
from w2v.common import load_vocab

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample"


def test_every_shipped_file_is_in_the_readme_and_every_named_file_is_shipped():
    shipped = {str(path.relative_to(SAMPLE)) for path in SAMPLE.rglob("*") if path.is_file()} - {"README.md"}
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    named = {cell.strip("` ") for line in readme.splitlines() if line.startswith("| `")
             for cell in [line.split("|")[1]]}
    assert shipped == named == {"taiga_ud.txt", "eval/ru_simlex965.tsv", "eval/ru_simlex965_tagged.tsv", "eval/hj.csv",
                                "eval_en/questions-words.txt", "eval_en/wordsim353.tsv", "eval_en/simlex999.txt"}


def test_prep_reads_the_taiga_sample_one_sentence_per_document(tmp_path):
    figures = prep.main(["--dataset", str(SAMPLE / "taiga_ud.txt"), "--data-dir", str(tmp_path), "--num-proc", "1"])
    lines = (SAMPLE / "taiga_ud.txt").read_text(encoding="utf-8").splitlines()
    tokens = pq.read_table(tmp_path / "prep" / "part-00000.parquet").column("tokens").to_pylist()
    assert len(lines) == 5615 and figures["documents"] == len(tokens) == 5573  # sentences of punctuation only go
    assert tokens[0] == ["снова", "приобрел", "дозу"] and lines[0] == "Снова приобрел дозу,"
    assert figures["tokens"] == 59699


def test_demo_vocabulary_holds_the_demo_words_and_some_pairs_of_each_russian_set(tmp_path):
    prep.main(["--dataset", str(SAMPLE / "taiga_ud.txt"), "--data-dir", str(tmp_path), "--num-proc", "1"])
    convert_to_int.main(["--data-dir", str(tmp_path), "--num-proc", "1", "--min-count", "3"])  # make demo's
    words = set(load_vocab(tmp_path)[0])
    demo_words = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("DEMO_WORDS"))
    assert set(demo_words.split("=", 1)[1].split()) <= words
    for name in ("ru_simlex965.tsv", "hj.csv"):
        rows = [line.replace(",", "\t").split("\t")[:2] for line in
                (SAMPLE / "eval" / name).read_text(encoding="utf-8").splitlines()[1:]]
        assert sum(first in words and second in words for first, second in rows) >= 30
