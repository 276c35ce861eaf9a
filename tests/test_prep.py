"""prep.py: cleaning rules (exact tokens), loading every local format through datasets, parts, errors."""
import json
import os
import random
import subprocess
import sys
import unicodedata
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import prep
from w2v.common import StageError
from prep import clean_texts

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # The hub is unreachable here: without offline mode a hub name retries for ~25 s before failing.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for module, names in (("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
                          ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))):
        if module in sys.modules:
            for name in names:
                monkeypatch.setattr(sys.modules[module], name, True)


CASES = [
    ("Привет, мир!", ["привет", "мир"]),
    ("Ёлка и ёж 2024г.", ["ёлка", "и", "ёж", "г"]),
    ("кто-то, где-то - там", ["кто-то", "где-то", "там"]),
    ("северо-запад", ["северо-запад"]),
    ("--а-- б-", ["а", "б"]),
    ("Hello_world 123abc", ["hello", "world", "abc"]),
    ("😀 смайл", ["смайл"]),
    ("", []),
    ("   ", []),
    ("замо\u0301к", ["замок"]),                      # stress mark (combining acute) deleted
    ("е\u0308лка и\u0306од", ["ёлка", "йод"]),        # decomposed ё and й composed by NFC, not stripped
    ("Mixed Москва-City", ["mixed", "москва-city"]),
    ("a\tb\nc\r\nd\u00a0e", ["a", "b", "c", "d", "e"]),
    ("а--б", ["а", "б"]),
    ("а- -б", ["а", "б"]),
    ("а -б а- б а - б", ["а", "б", "а", "б", "а", "б"]),
    ("-", []),
    ("-а-б-", ["а-б"]),
    ("x-1-y 5-й", ["x", "y", "й"]),
    ("при\u00adмер", ["пример"]),                    # soft hyphen joins
    ("«Ёж» — 5%…", ["ёж"]),
    ("S.T.A.L.K.E.R.", ["s", "t", "a", "l", "k", "e", "r"]),
    ("ÀÉÎ Straße", ["àéî", "straße"]),
    (None, []),
]


def test_clean_texts_exact():
    texts = [text for text, _ in CASES]
    out = clean_texts(pa.array(texts, pa.string()))
    assert out.type == pa.list_(pa.string())
    assert out.to_pylist() == [tokens for _, tokens in CASES]


def test_clean_texts_chunked_and_sliced_input():
    chunked = pa.chunked_array([pa.array(["Раз, два"]), pa.array(["три-четыре!", None])])
    assert clean_texts(chunked).to_pylist() == [["раз", "два"], ["три-четыре"], []]
    sliced = pa.array(["x", "Один два", "", "Три"]).slice(1, 3)
    assert clean_texts(sliced).to_pylist() == [["один", "два"], [], ["три"]]
    assert clean_texts(pa.array(["Ёж"], pa.large_string())).to_pylist() == [["ёж"]]
    assert clean_texts(pa.array([], pa.string())).to_pylist() == []
    assert clean_texts(pa.chunked_array([], pa.string())).to_pylist() == []


def reference_tokens(text: str) -> list[str]:
    """The rules written out character by character, for comparison on random strings."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c for c in text if unicodedata.category(c)[0] != "M" and unicodedata.category(c) != "Cf").lower()
    chars = [c if unicodedata.category(c)[0] == "L" or c == "-" else " " for c in text]
    letter = [c not in " -" for c in chars]
    out = [c if c != "-" or (0 < i < len(chars) - 1 and letter[i - 1] and letter[i + 1]) else " "
           for i, c in enumerate(chars)]
    return "".join(out).split()


def test_clean_texts_matches_reference_on_random_strings():
    pool = list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБЁЯabcxyzXYZ") + list("---   ,.!?_\t\n0123456789") + \
        ["\u0301", "\u0308", "\u0306", "\u00ad", "\u200b", "😀", "—", "«", "»", "№", "\u00a0", "é", "ß"]
    rng = random.Random(7)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(3000)]
    got = clean_texts(pa.array(texts)).to_pylist()
    for text, tokens in zip(texts, got):
        assert tokens == reference_tokens(text), repr(text)


def test_nfc_fast_path_only_skips_rows_already_clean():
    # Rows made only of characters outside NEEDS_NFC skip normalisation: each such character must be NFC on
    # its own, not combining, not a mark nor a format character, and never the second half of a composition.
    second_halves = set()
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            second_halves.add(int(decomposition[1], 16))
    every = pa.array([chr(code) for code in range(0x3000) if not 0xD800 <= code < 0xE000])
    skipped = every.filter(pa.compute.invert(pa.compute.match_substring_regex(every, prep.NEEDS_NFC))).to_pylist()
    assert len(skipped) == 256 - 1 + 256 - 7 + 24 + 47  # Latin-1, Cyrillic, punctuation, as documented
    for char in skipped:
        assert unicodedata.normalize("NFC", char) == char and unicodedata.combining(char) == 0, hex(ord(char))
        assert unicodedata.category(char) not in ("Mn", "Mc", "Me", "Cf"), hex(ord(char))
        assert ord(char) not in second_halves, hex(ord(char))


def read_prep(data_dir: Path) -> list[list[str]]:
    return [row for part in sorted((data_dir / "prep").glob("part-*.parquet"))
            for row in pq.read_table(part).column("tokens").to_pylist()]


def test_txt_one_text_per_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Привет, мир!\n\n   \nКто-то пришёл.\n123 456\nЁлка 2024г.", encoding="utf-8")
    figures = prep.main(["--dataset", str(corpus), "--data-dir", str(tmp_path / "data"), "--num-proc", "1"])
    assert read_prep(tmp_path / "data") == [["привет", "мир"], ["кто-то", "пришёл"], ["ёлка", "г"]]
    assert figures["documents"] == 3 and figures["tokens"] == 6 and figures["parts"] == 1
    assert figures["raw_mb"] == round(len("Привет, мир!   Кто-то пришёл.123 456Ёлка 2024г.".encode()) / 2**20, 2)
    stats = json.loads((tmp_path / "data" / "stats" / "prep.json").read_text())
    assert stats["documents"] == 3 and "wall_s" in stats and "peak_memory_mb" in stats
    schema = pq.read_schema(tmp_path / "data" / "prep" / "part-00000.parquet")
    assert schema.names == ["tokens"] and schema.field("tokens").type.value_type == pa.string()


def test_jsonl_custom_text_column(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": 1, "body": "Первый текст."}, {"id": 2, "body": None}, {"id": 3, "body": "Второй-то!"}]
    corpus.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), encoding="utf-8")
    prep.main(["--dataset", str(corpus), "--text-column", "body", "--data-dir", str(tmp_path / "data")])
    assert read_prep(tmp_path / "data") == [["первый", "текст"], ["второй-то"]]


def test_json_array_file(tmp_path):
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps([{"text": "Один"}, {"text": "Два три"}], ensure_ascii=False), encoding="utf-8")
    prep.main(["--dataset", str(corpus), "--data-dir", str(tmp_path / "data")])
    assert read_prep(tmp_path / "data") == [["один"], ["два", "три"]]


def test_parquet_several_sources_glob_max_docs_and_parts(tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"source": ["x", "y", "z"], "content": ["Альфа", "Бета гамма", "!!!"]}),
                   tmp_path / "in" / "a.parquet")
    pq.write_table(pa.table({"source": ["w"], "content": ["Дельта"]}), tmp_path / "in" / "b.parquet")
    (tmp_path / "c.txt").write_text("Эпсилон\nДзета\nЭта\n", encoding="utf-8")
    data = tmp_path / "data"
    dataset = f"{tmp_path / 'in' / '*.parquet'},{tmp_path / 'c.txt'}"
    figures = prep.main(["--dataset", dataset, "--text-column", "content", "--data-dir", str(data),
                         "--docs-per-part", "2", "--num-proc", "1"])
    # batches of 2 input texts: [Альфа, Бета гамма] [!!!, Дельта] [Эпсилон, Дзета] [Эта]
    assert read_prep(data) == [["альфа"], ["бета", "гамма"], ["дельта"], ["эпсилон"], ["дзета"], ["эта"]]
    assert [len(pq.read_table(p)) for p in sorted((data / "prep").glob("*"))] == [2, 1, 2, 1]
    assert figures["parts"] == 4 and figures["documents"] == 6
    prep.main(["--dataset", dataset, "--text-column", "content", "--data-dir", str(data), "--max-docs", "4"])
    assert read_prep(data) == [["альфа"], ["бета", "гамма"], ["дельта"]]
    assert sorted(p.name for p in (data / "prep").iterdir()) == ["part-00000.parquet"]  # replaced, not added


def test_batch_without_tokens_keeps_part_numbers_contiguous(tmp_path):
    (tmp_path / "c.txt").write_text("раз\n1\n2\nдва\n", encoding="utf-8")
    figures = prep.main(["--dataset", str(tmp_path / "c.txt"), "--data-dir", str(tmp_path / "data"),
                         "--docs-per-part", "1", "--num-proc", "1"])
    assert sorted(p.name for p in (tmp_path / "data" / "prep").iterdir()) == ["part-00000.parquet",
                                                                             "part-00001.parquet"]
    assert read_prep(tmp_path / "data") == [["раз"], ["два"]] and figures["parts"] == 2


@pytest.mark.slow
def test_two_workers_same_output_as_one(tmp_path):
    rng = random.Random(3)
    words = ["кот", "пёс", "кто-то", "Москва", "и", "в", "дом", "x-y", "123", "—", "замо\u0301к"]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for _ in range(60)]
    (tmp_path / "c.txt").write_text("\n".join(lines), encoding="utf-8")
    outputs = []
    for num_proc in (1, 2):
        data = tmp_path / f"data{num_proc}"
        prep.main(["--dataset", str(tmp_path / "c.txt"), "--data-dir", str(data), "--docs-per-part", "7",
                   "--num-proc", str(num_proc)])
        names = sorted(p.name for p in (data / "prep").iterdir())
        outputs.append((names, [pq.read_table(data / "prep" / name).column("tokens").to_pylist() for name in names]))
    assert outputs[0] == outputs[1]
    assert len(outputs[0][0]) >= 8  # several parts, so the workers really shared the batches
    assert [row for part in outputs[0][1] for row in part] == [r for r in clean_texts(pa.array(lines)).to_pylist() if r]


def test_missing_file_and_glob(tmp_path):
    with pytest.raises(StageError, match=r"missing\.txt: no such file"):
        prep.main(["--dataset", str(tmp_path / "missing.txt"), "--data-dir", str(tmp_path / "data")])
    with pytest.raises(StageError, match="matches no file"):
        prep.main(["--dataset", str(tmp_path / "nothing*.jsonl"), "--data-dir", str(tmp_path / "data")])
    (tmp_path / "corpus.csv").write_text("text\nfoo\n")
    with pytest.raises(StageError, match="unknown file type"):
        prep.main(["--dataset", str(tmp_path / "corpus.csv"), "--data-dir", str(tmp_path / "data")])
    assert not (tmp_path / "data" / "prep").exists()


def test_wrong_text_column_names_the_columns(tmp_path):
    (tmp_path / "c.jsonl").write_text('{"body": "a", "id": 1}\n', encoding="utf-8")
    with pytest.raises(StageError, match=r"has no column 'text': its columns are body, id.*--text-column"):
        prep.main(["--dataset", str(tmp_path / "c.jsonl"), "--data-dir", str(tmp_path / "data")])
    pq.write_table(pa.table({"content": ["a"], "n": [1]}), tmp_path / "c.parquet")
    with pytest.raises(StageError, match=r"has no column 'text': its columns are content, n"):
        prep.main(["--dataset", str(tmp_path / "c.parquet"), "--data-dir", str(tmp_path / "data")])
    with pytest.raises(StageError, match=r"column 'n' of .* holds int64, not text"):
        prep.main(["--dataset", str(tmp_path / "c.parquet"), "--text-column", "n", "--data-dir", str(tmp_path)])


@pytest.mark.slow
def test_parquet_streamed_in_order_across_row_groups_and_parts(tmp_path):
    texts = [f"Слово{chr(ord('а') + i % 32)} x{i}" for i in range(50)]
    pq.write_table(pa.table({"id": list(range(50)), "text": texts}), tmp_path / "c.parquet", row_group_size=7)
    pq.write_table(pa.table({"id": [50], "text": ["Конец"]}), tmp_path / "d.parquet")
    prep.main(["--dataset", f"{tmp_path / 'c.parquet'},{tmp_path / 'd.parquet'}", "--docs-per-part", "4",
               "--data-dir", str(tmp_path / "data")])
    expected = [[f"слово{chr(ord('а') + i % 32)}", "x"] for i in range(50)] + [["конец"]]
    assert read_prep(tmp_path / "data") == expected


def test_corrupt_parquet_is_one_line(tmp_path):
    pq.write_table(pa.table({"text": ["Альфа бета"] * 1000}), tmp_path / "c.parquet")
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "c.parquet").write_bytes(data[:len(data) // 2])  # footer gone: not a parquet file any more
    with pytest.raises(StageError, match=r"^could not read .*c\.parquet \(") as error:
        prep.main(["--dataset", str(tmp_path / "c.parquet"), "--data-dir", str(tmp_path / "data")])
    assert "\n" not in str(error.value)
    assert not (tmp_path / "data" / "prep").exists()


def test_empty_corpus_keeps_previous_output(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "good.txt").write_text("Слово\n", encoding="utf-8")
    prep.main(["--dataset", str(tmp_path / "good.txt"), "--data-dir", str(data)])
    (tmp_path / "empty.txt").write_text("\n  \n123 !!!\n", encoding="utf-8")
    with pytest.raises(StageError, match="empty corpus"):
        prep.main(["--dataset", str(tmp_path / "empty.txt"), "--data-dir", str(data)])
    (tmp_path / "none.txt").write_text("", encoding="utf-8")
    with pytest.raises(StageError, match="empty corpus"):
        prep.main(["--dataset", str(tmp_path / "none.txt"), "--data-dir", str(data)])
    assert read_prep(data) == [["слово"]]
    assert [p.name for p in data.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


def test_unreachable_hub_dataset(tmp_path):
    with pytest.raises(StageError, match=r"could not load dataset 'nobody-here/no-such-corpus'.*local corpus"):
        prep.main(["--dataset", "nobody-here/no-such-corpus", "--data-dir", str(tmp_path / "data")])


def test_hub_host_not_resolving_fails_at_once(tmp_path, monkeypatch):
    import huggingface_hub.constants

    def no_dns(*args, **kwargs):
        raise OSError("no DNS here")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(prep.socket, "getaddrinfo", no_dns)
    with pytest.raises(StageError, match=r"'someone/corpus' from the Hugging Face hub \(huggingface.co does not "
                                         r"resolve: no DNS here\); pass a local corpus"):
        prep.main(["--dataset", "someone/corpus", "--data-dir", str(tmp_path / "data")])


def test_shell_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "prep.py"), "--dataset", "missing.txt",
                             "--data-dir", str(tmp_path / "X")], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "missing.txt" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def write_hub_layout(root: Path, files: int = 3, rows: int = 9) -> list[list[str]]:
    """A folder laid out like the hub's 0x7o/taiga: data/train-000NN-of-00117.parquet, several row groups each."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: cc-by-sa-4.0\n---\n", encoding="utf-8")
    expected = []
    for f in range(files):
        texts = [f"Файл{chr(ord('а') + f)} строка{chr(ord('а') + r)} {r}!" for r in range(rows)]
        pq.write_table(pa.table({"text": texts, "source": ["hub"] * rows}),
                       root / "data" / f"train-{f:05d}-of-00117.parquet", row_group_size=4)
        expected += [[f"файл{chr(ord('а') + f)}", f"строка{chr(ord('а') + r)}"] for r in range(rows)]
    return expected


def test_hub_layout_folder_takes_the_hub_path_streamed_by_pyarrow(tmp_path, monkeypatch):
    import huggingface_hub.constants

    expected = write_hub_layout(tmp_path / "taiga")
    hub_calls, streamed, dataset_streams = [], [], []
    load_from_hub, parquet_batches = prep._load_from_hub, prep._parquet_batches
    monkeypatch.setattr(prep, "_load_from_hub", lambda *args: hub_calls.append(args[1:]) or load_from_hub(*args))
    monkeypatch.setattr(prep, "_parquet_batches", lambda files, *args: streamed.append(files) or
                        parquet_batches(files, *args))
    monkeypatch.setattr(prep, "_dataset_batches", lambda *args: dataset_streams.append(args) or iter(()))
    # no DNS and not offline: a local folder must not reach for the hub's host
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(prep.socket, "getaddrinfo", lambda *args: pytest.fail("looked the hub up"))
    figures = prep.main(["--dataset", str(tmp_path / "taiga"), "--docs-per-part", "5", "--num-proc", "1",
                         "--data-dir", str(tmp_path / "out")])
    assert hub_calls == [(str(tmp_path / "taiga"), "train")]
    assert streamed == [[str(tmp_path / "taiga" / "data" / f"train-{f:05d}-of-00117.parquet") for f in range(3)]]
    assert dataset_streams == []  # not datasets' read-ahead stream
    assert read_prep(tmp_path / "out") == expected and figures["documents"] == 27 and figures["parts"] == 6


def test_hub_layout_folder_errors_are_one_line(tmp_path):
    write_hub_layout(tmp_path / "taiga", files=1)
    with pytest.raises(StageError, match=r"has no column 'body': its columns are text, source"):
        prep.main(["--dataset", str(tmp_path / "taiga"), "--text-column", "body", "--data-dir", str(tmp_path)])
    with pytest.raises(StageError, match=rf"^could not load {tmp_path / 'taiga'} as a Hugging Face dataset folder "
                                         rf"\(ValueError: .*validation"):
        prep.main(["--dataset", str(tmp_path / "taiga"), "--split", "validation", "--data-dir", str(tmp_path)])
    (tmp_path / "empty" / "data").mkdir(parents=True)
    with pytest.raises(StageError, match=rf"^could not load {tmp_path / 'empty'} as a Hugging Face dataset folder"):
        prep.main(["--dataset", str(tmp_path / "empty"), "--data-dir", str(tmp_path)])


def test_parquet_urls_are_read_through_fsspec(tmp_path, monkeypatch):
    # a hub dataset's files come as hf:// URLs: the same reader opens any URL through fsspec
    import fsspec

    opened = []
    fsspec_open = fsspec.open
    monkeypatch.setattr(fsspec, "open", lambda url, *args: opened.append(url) or fsspec_open(url, *args))
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(10)]}), tmp_path / "a.parquet", row_group_size=3)
    batches = list(prep._parquet_batches([f"file://{tmp_path / 'a.parquet'}", str(tmp_path / "a.parquet")],
                                         "text", 4))
    assert opened == [f"file://{tmp_path / 'a.parquet'}"]
    assert [len(batch) for batch in batches] == [4, 4, 2] * 2
    assert sum((batch.column(0).to_pylist() for batch in batches), []) == [f"t{i}" for i in range(10)] * 2


def test_txt_read_without_datasets_gives_its_text_builders_rows(tmp_path, monkeypatch):
    import datasets

    raw = ("первая\r\nвторая\rтретья\n\nчетвёртая\u2028та же\x85и эта\n".encode() + b"\xff\xfe bad \xd0\n"
           + "\r\n\r\nпоследняя без перевода".encode())
    for name, content in (("a.txt", raw), ("b.txt", raw + b"\n"), ("c.txt", b""), ("d.txt", b"\n\n")):
        (tmp_path / name).write_bytes(content)
        files = [str(tmp_path / name)]
        expected = list(datasets.load_dataset("text", data_files=files, split="train", streaming=True,
                                              **prep.DECODING["text"]).with_format("arrow").iter(batch_size=1000))
        expected = [text for table in expected for text in table.column("text").to_pylist()]
        for read_chars in (prep.TEXT_READ_CHARS, 3):  # a chunk may end inside "\r\n" or inside a character
            monkeypatch.setattr(prep, "TEXT_READ_CHARS", read_chars)
            got = [text for table in prep._text_file_batches(files, 1000) for text in table.column("text").to_pylist()]
            assert got == expected, (name, read_chars)
        if name == "a.txt":  # the cases are there: "\r" and "\r\n" split, U+2028 and U+0085 do not, bad bytes
            assert expected[:3] == ["первая", "вторая", "третья"] and "четвёртая\u2028та же\x85и эта" in expected
            assert any("\ufffd" in text for text in expected)


@pytest.mark.slow
def test_long_texts_cleaned_in_pieces_give_the_tokens_of_the_whole(tmp_path, monkeypatch):
    pool = list("абвгдеёжзАБЁabcXYZ") + list("-- -  ,.!?_\t\n09") + \
        ["\u0301", "\u0308", "\u00ad", "\u200b", "😀", "—", "\u00a0", "é", "\ufffd", " -", "- ", " - "]
    rng = random.Random(11)
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 3000))) for _ in range(30)]
    texts += ["кто-то " * 200, "-" * 900, " " * 900, "а" * 900 + " б", "\ufffd " * 300]
    counters = {"replacement_chars": 0, "texts_with_replacements": 0}
    whole = clean_texts(pa.array(texts), counters)
    expected = [row for row in whole.to_pylist() if row]
    monkeypatch.setattr(prep, "SLICE_BYTES", 400)  # pieces of ~400 bytes, a space looked for 16 bytes at a time
    monkeypatch.setattr(prep, "CUT_SEARCH_BYTES", 16)
    pieces, owners = prep._cut_long_texts(pa.array(texts), 400)
    assert len(pieces) > 3 * len(texts) and owners[-1] == len(texts) - 1
    assert "".join(pieces.to_pylist()) == "".join(texts)
    for threads in (1, 2):
        out = tmp_path / f"threads{threads}"
        out.mkdir()
        figures = prep._clean_part((0, pa.array(texts), out, threads))
        assert pq.read_table(out / "batch-00000.parquet").column("tokens").to_pylist() == expected
        assert figures["replacement_chars"] == counters["replacement_chars"] > 0
        assert figures["texts_with_replacements"] == counters["texts_with_replacements"] > 0
        assert figures["texts"] == len(texts) and figures["raw_bytes"] == len("".join(texts).encode())


def test_plain_ascii_rows_take_the_fast_path_with_the_same_tokens(monkeypatch):
    rng = random.Random(5)
    plain = [" ".join("".join(rng.choice("abcXYZ ") for _ in range(rng.randint(0, 40))).split(" ")[:1] +
                      [word for word in "".join(rng.choice("abcXYZ ") for _ in range(40)).split(" ") if word])
             for _ in range(500)]
    plain += ["", " ", " leading", "trailing ", "One Two"]
    calls, replace = [], pa.compute.replace_substring_regex
    monkeypatch.setattr(prep.pc, "replace_substring_regex",
                        lambda *args, **kwargs: calls.append(args) or replace(*args, **kwargs))
    assert clean_texts(pa.array(plain)).to_pylist() == [reference_tokens(text) for text in plain]
    assert calls == []  # no separator pass
    mixed = plain + ["a  b", "a-b", "a\tb", "é"]  # each one breaks the fast path for the whole slice
    for extra in mixed[-4:]:
        assert clean_texts(pa.array(plain + [extra])).to_pylist() == [reference_tokens(t) for t in plain + [extra]]
    assert len(calls) == 4
