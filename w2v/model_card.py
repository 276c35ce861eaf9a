"""The model card: DATA_DIR/model/card.json and its rendering, DATA_DIR/model/README.md.

    card = write_card(data_dir, settings=vars(cfg), figures=run_figures)    # train.py, at the end of training
    add_scores(model_dir, {"similarity": {...}, "analogies": {...}})        # evaluate.py --card

What the card holds, and where each figure comes from (nothing is measured again):
- corpus: the source (stats/prep.json's "dataset"), its documents and tokens (prep.json), the tokens kept in
  the vocabulary (vocab.json's "vocab_tokens");
- preprocessing: vocab.json's own fields, written by convert_to_int.py before the words: "lemmatize" (none when
  absent), "drop_upos" (the parts of speech removed), the phrase settings ("phrases", 0 when absent),
  "min_count" and "max_vocab"; the vocabulary's size is the number of its words;
- the pairs: window, sub-sampling (sample), dynamic window and draws from pairs/meta.json;
- training: model, loss, dim, negatives, epochs, learning rate and seed from the settings train.py ran with;
  the training time, pairs trained and final loss from its figures; the machine: the GPU's name on CUDA, else
  the CPU model of /proc/cpuinfo (the platform's processor where there is none);
- scores: empty until evaluate.py --card adds its similarity (and analogy) figures, each by file name.

A figure a stage did not write (an old data folder) is null in card.json and "n/a" in README.md.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Mapping

from w2v.common import atomic_output, fail, write_json

CARD_JSON = "card.json"
CARD_README = "README.md"
# vocab.json's fields are written before its words: the figures sit in its first few kilobytes.
VOCAB_HEAD_BYTES = 1 << 16
_WORDS_FIELD = ', "words": ['


def vocab_figures(path: str | Path) -> dict:
    """The fields of a vocab.json other than its words and counts (min_count, lemmatize, drop_upos, phrases...),
    read from its head without parsing the words; {} when there is no such file."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = handle.read(VOCAB_HEAD_BYTES)
    cut = head.find(_WORDS_FIELD)
    if cut >= 0:
        try:
            return json.loads(head[:cut] + "}")
        except json.JSONDecodeError:
            pass
    try:  # hand-written or pretty-printed: the whole file
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        fail(f"{path} is not valid JSON ({error}): run convert_to_int.py again")
    return {key: value for key, value in data.items() if key not in ("words", "counts")}


def machine_name(device: str = "cpu") -> str:
    """The GPU's name on a CUDA device, else the CPU model (/proc/cpuinfo's "model name"), else the platform's."""
    if device.startswith("cuda"):
        try:
            import torch
            return torch.cuda.get_device_name(device)
        except (ImportError, RuntimeError, AssertionError):
            pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def build_card(data_dir: Path, settings: Mapping[str, Any], figures: Mapping[str, Any]) -> dict:
    """The card of the model trained in data_dir (see the module docstring): settings are train.py's flags as
    run (vars(cfg)), figures its run figures (run_figures: vocab_size, pairs, train_s, device, final_loss...)."""
    data_dir = Path(data_dir)
    vocab = vocab_figures(data_dir / "vocab.json")
    prep = _read(data_dir / "stats" / "prep.json")
    pairs = _read(data_dir / "pairs" / "meta.json")
    return {
        "corpus": {"dataset": prep.get("dataset"), "documents": prep.get("documents"),
                   "tokens": prep.get("tokens", vocab.get("corpus_tokens")),
                   "vocab_tokens": vocab.get("vocab_tokens")},
        "preprocessing": {"lemmatize": vocab.get("lemmatize", "none"), "drop_upos": vocab.get("drop_upos", []),
                          "phrases": vocab.get("phrases", 0),
                          **{key: vocab[key] for key in ("phrase_scoring", "phrase_threshold", "phrase_min_count",
                                                         "phrase_upos") if key in vocab}},
        "vocabulary": {"size": figures.get("vocab_size"), "min_count": vocab.get("min_count"),
                       "max_vocab": vocab.get("max_vocab")},
        "pairs": {"window": pairs.get("window"), "dynamic_window": pairs.get("dynamic_window"),
                  "sample": pairs.get("sample"), "draws": pairs.get("draws")},
        "training": {"model": settings.get("model"), "loss": settings.get("loss"), "dim": settings.get("dim"),
                     "negatives": settings.get("negatives") if settings.get("loss") == "ns" else None,
                     "epochs": settings.get("epochs"), "lr": settings.get("lr"), "seed": settings.get("seed"),
                     "kernel": figures.get("kernel"), "pairs": figures.get("pairs"),
                     "train_s": figures.get("train_s"), "final_loss": figures.get("final_loss"),
                     "device": figures.get("device"), "machine": machine_name(str(figures.get("device", "cpu"))),
                     "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
        "scores": {},
    }


def write_card(data_dir: Path, settings: Mapping[str, Any], figures: Mapping[str, Any]) -> dict:
    """build_card, written to DATA_DIR/model/card.json and rendered to DATA_DIR/model/README.md (atomically)."""
    card = build_card(data_dir, settings, figures)
    save_card(Path(data_dir) / "model", card)
    return card


def save_card(model_dir: Path, card: dict) -> None:
    write_json(Path(model_dir) / CARD_JSON, card)
    text = render_card(card)
    with atomic_output(Path(model_dir) / CARD_README) as temp:
        temp.write_text(text, encoding="utf-8")


def add_scores(model_dir: Path, scores: Mapping[str, Mapping[str, Any]]) -> dict:
    """Merge evaluate.py's figures into the card of model_dir: scores {"similarity"|"analogies": {file name:
    figures}}, each file's entry replaced; README.md rendered again. Stops with one line without a card."""
    path = Path(model_dir) / CARD_JSON
    if not path.is_file():
        fail(f"{path} not found: train.py writes it at the end of training")
    card = _read(path)
    if not card:
        fail(f"{path} is not a model card: train the model again")
    for kind, files in scores.items():
        card.setdefault("scores", {}).setdefault(kind, {}).update(files)
    save_card(Path(model_dir), card)
    return card


def _shown(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def render_card(card: Mapping[str, Any]) -> str:
    """README.md of a card: its sections as tables of figures, then the scores."""
    corpus, prep, vocab = card.get("corpus", {}), card.get("preprocessing", {}), card.get("vocabulary", {})
    pairs, training = card.get("pairs", {}), card.get("training", {})
    model = {"sg": "skip-gram", "cbow": "CBOW"}.get(training.get("model"), training.get("model"))
    loss = {"ns": "negative sampling", "hs": "hierarchical softmax"}.get(training.get("loss"), training.get("loss"))
    lines = [f"# Model card: {model}, {loss}, {_shown(training.get('dim'))} dimensions", "",
             "Written by train.py at the end of training (scores: the shipped sets by train.py through evaluate.py, "
             "others by `evaluate.py --card`); the same figures are in card.json.", "", "| | |", "|---|---|"]
    rows = [
        ("corpus", corpus.get("dataset")), ("documents", corpus.get("documents")),
        ("tokens", corpus.get("tokens")), ("tokens of vocabulary words", corpus.get("vocab_tokens")),
        ("lemmatize", prep.get("lemmatize")), ("parts of speech dropped", prep.get("drop_upos")),
        ("phrase passes", prep.get("phrases")),
        ("vocabulary", vocab.get("size")), ("min count", vocab.get("min_count")),
        ("max vocabulary", vocab.get("max_vocab") or "no limit"),
        ("window", pairs.get("window")), ("dynamic window", pairs.get("dynamic_window")),
        ("sub-sampling (sample)", pairs.get("sample")), ("draws of pairs", pairs.get("draws")),
        ("model", model), ("loss", loss), ("dim", training.get("dim")),
        ("negatives", training.get("negatives")), ("epochs", training.get("epochs")),
        ("learning rate", training.get("lr")), ("seed", training.get("seed")), ("kernel", training.get("kernel")),
        ("pairs trained", training.get("pairs")), ("final loss", training.get("final_loss")),
        ("training time (s)", training.get("train_s")), ("device", training.get("device")),
        ("machine", training.get("machine")), ("finished", training.get("finished")),
    ]
    if prep.get("phrases"):
        rows.insert(7, ("phrase scoring", prep.get("phrase_scoring")))
    lines += [f"| {name} | {_shown(value)} |" for name, value in rows]
    scores = card.get("scores", {})
    lines += ["", "## Scores", ""]
    if not any(scores.values()):
        lines.append("None yet: `python evaluate.py --data-dir DATA_DIR --card` adds them.")
    for name, result in scores.get("similarity", {}).items():
        rho = result.get("spearman")
        lines.append(f"- similarity {name}: Spearman {_shown(None if rho is None else round(rho, 3))}, "
                     f"support {_shown(result.get('support'))}")
    for name, result in scores.get("analogies", {}).items():
        total = result.get("total", {})
        accuracy = total.get("accuracy")
        lines.append(f"- analogies {name}: {_shown(None if accuracy is None else round(100 * accuracy, 2))}% of "
                     f"{_shown(total.get('scored'))} questions scored")
    return "\n".join(lines) + "\n"
