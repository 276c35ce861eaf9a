"""The settings at the top of the stage scripts: every one the README's stage table names is a flag of its script;
no setting is given a value in two scripts; a shared default edited in its one place reaches every stage that uses
it; and the settings whose home moved (training's batch size, negatives, readers and seed) change the run."""
import ast
import importlib
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import train
from helpers import ROOT, TRAIN_ARGS
from w2v.common import parse_config

STAGES = ["prep.py", "convert_to_int.py", "pairs_dataset.py", "unigram_table.py", "dataset.py", "word2vec.py",
          "train.py", "evaluate.py"]
# The same name with a value in two scripts, on purpose: evaluate.py's LEMMATIZE says how the vectors it is given
# were made ("auto": read their vocab.json), not how to make them.
SAME_NAME_OTHER_SETTING = {"LEMMATIZE"}


def readme_settings() -> dict[str, list[str]]:
    """The README stage table's "main settings" column: script -> constant names."""
    table = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`\w+\.py`", cells[1]):
            table[cells[1].strip("`")] = re.findall(r"`([A-Z][A-Z0-9_]*)(?:=[^`]*)?`", cells[4])
    return table


def test_every_setting_the_readme_names_is_a_flag_of_its_script():
    table = readme_settings()
    assert set(table) == set(STAGES)
    assert sum(len(names) for names in table.values()) >= 25
    for script, names in table.items():
        module = importlib.import_module(script.removesuffix(".py"))
        cfg = vars(parse_config(str(ROOT / script), vars(module), []))
        missing = [name for name in names if name.lower() not in cfg]
        assert missing == [], f"{script}: {missing} are in the README but not flags of the script"


def literal_settings(script: str) -> dict[str, object]:
    """The top-level UPPER_CASE constants of a script that are given a literal value there."""
    found = {}
    for node in ast.parse((ROOT / script).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
                try:
                    found[name] = ast.literal_eval(node.value)
                except ValueError:
                    pass  # imported or computed: defined elsewhere
    return found


def test_no_setting_is_given_a_value_in_two_scripts():
    where: dict[str, list[str]] = {}
    for script in STAGES:
        for name in literal_settings(script):
            where.setdefault(name, []).append(script)
    twice = {name: scripts for name, scripts in where.items()
             if len(scripts) > 1 and name not in SAME_NAME_OTHER_SETTING}
    assert twice == {}
    for shared in ("DATA_DIR", "SEED", "BATCH_SIZE", "NEGATIVES", "NUM_WORKERS"):
        assert len(where.get(shared, [])) <= 1, shared


@pytest.mark.slow
def test_a_shared_default_edited_in_its_one_place_reaches_every_stage(tmp_path):
    # A copy of the scripts and the package with the shared defaults edited where they live.
    for script in STAGES:
        shutil.copy(ROOT / script, tmp_path / script)
    shutil.copytree(ROOT / "w2v", tmp_path / "w2v", ignore=shutil.ignore_patterns("__pycache__"))
    edits = {"dataset.py": [("BATCH_SIZE = 300_000", "BATCH_SIZE = 4321"), ("NUM_WORKERS = 1", "NUM_WORKERS = 0")],
             "w2v/common.py": [('DATA_DIR = "data"', 'DATA_DIR = "elsewhere"'), ("SEED = 1 ", "SEED = 77 ")]}
    for path, changes in edits.items():
        text = (tmp_path / path).read_text(encoding="utf-8")
        for old, new in changes:
            assert text.count(old) == 1, (path, old)
            text = text.replace(old, new)
        (tmp_path / path).write_text(text, encoding="utf-8")
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); import importlib; from w2v.common import "
             "parse_config; print(json.dumps({s: vars(parse_config(s, vars(importlib.import_module(s[:-3])), [])) "
             "for s in sys.argv[2:]}))")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path), *STAGES], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    defaults = json.loads(done.stdout)
    assert {script: cfg["data_dir"] for script, cfg in defaults.items()} == {script: "elsewhere" for script in STAGES}
    for script in ("pairs_dataset.py", "dataset.py", "train.py"):
        assert defaults[script]["seed"] == 77, script
    for script in ("dataset.py", "train.py"):
        assert (defaults[script]["batch_size"], defaults[script]["num_workers"]) == (4321, 0), script


@pytest.mark.slow
def test_trainings_batch_size_negatives_readers_and_seed_change_the_run(corpus_data, tmp_path):
    source, pairs_per_draw, _ = corpus_data

    def run(*flags: str) -> tuple[np.ndarray, list[str]]:
        data_dir = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        shutil.copytree(source, data_dir, ignore=shutil.ignore_patterns("model"))
        train.main(["--data-dir", str(data_dir), "--epochs", "1", *TRAIN_ARGS, *flags])
        rows = (data_dir / "model" / "loss.csv").read_text().splitlines()[1:]
        return np.load(data_dir / "model" / "embeddings.npy"), rows

    base, base_rows = run()
    assert len(base_rows) == -(-pairs_per_draw[0] // 5000)  # TRAIN_ARGS: --batch-size 5000
    assert np.array_equal(base, run()[0])  # one thread: the same run twice
    bigger, bigger_rows = run("--batch-size", "12000")
    assert len(bigger_rows) == -(-pairs_per_draw[0] // 12000)
    assert not np.array_equal(run("--negatives", "2")[0], base)
    assert not np.array_equal(run("--seed", "2")[0], base)
    # readers change where the batches come from, not what they hold: one reader process gives the same run
    assert np.array_equal(run("--num-workers", "1")[0], base)


def test_a_small_corpus_on_the_taiga_defaults_is_told_the_settings_measured_for_its_size():
    line = train.small_corpus_advice(13_200_000, train.EPOCHS, 5)
    assert line.startswith("a small corpus (13.2M tokens): ") and "--epochs 10" in line and "--window 2" in line
    assert train.small_corpus_advice(13_200_000, 10, 5) is None  # the user chose the epochs
    assert train.small_corpus_advice(13_200_000, train.EPOCHS, 2) is None  # ... or the window
    assert train.small_corpus_advice(train.SMALL_CORPUS_TOKENS, train.EPOCHS, 5) is None  # Taiga-sized: the defaults
    assert train.small_corpus_advice(None, train.EPOCHS, 5) is None  # a pairs/ that does not say
