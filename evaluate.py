"""Evaluate word vectors: analogies (3CosAdd), word-pair similarity (Spearman), nearest neighbours.

    python evaluate.py                                  # data/model/vectors.txt on the Russian sets in sample/eval/
    python evaluate.py --vectors data/model/vectors.txt --analogies sample/eval_en/questions-words.txt \\
        --similarity sample/eval_en/wordsim353.tsv sample/eval_en/simlex999.txt
    python evaluate.py --vectors data/model/embeddings.npy --vocab data/vocab.json \\
        --neighbors москва король --json data/stats/eval.json
    python evaluate.py --similarity --neighbors москвы король --k 8 --map map.png --projector 10000 --card

Conventions (the same numbers as gensim 4.4's KeyedVectors methods on the same vectors file):
- Rows are in frequency order (the order of vocab.json and of the word2vec files train.py writes).
- Case: with --lowercase (the default) words match case-insensitively, as gensim's case_insensitive=True: both
  the file's words and the vocabulary are folded with str.upper() and a folded word takes the row of its most
  frequent spelling. With --no-lowercase words must match exactly.
- Analogies (gensim's evaluate_word_analogies): a question "a b c d" is scored only when all four words are
  among the RESTRICT_VOCAB most frequent words, otherwise it is skipped (and counted as skipped); the answer is
  the 3CosAdd argmax of cos(x, b - a + c) over those words, the rows of a, b, c (and their other spellings)
  excluded, picked exactly as gensim picks it (see _solve). Lines that are not four words are ignored (counted
  as invalid). A section with nothing scored has
  accuracy 0.0, as in gensim. "Total accuracy" pools all sections.
- Similarity (gensim's evaluate_word_pairs with restrict_vocab >= the vocabulary size, i.e. its default
  300,000 for our vocabularies): pairs with a word missing from the whole vocabulary are skipped; the support
  is scored/total. Spearman rho uses average ranks for ties (scipy's spearmanr); Pearson r is reported too.
  A line splits on tabs if it has one, else on commas, else on whitespace (gensim takes one delimiter);
  fields are stripped, where gensim keeps the space of "монах, оракул" in hj.csv and misses that pair.
- Neighbours: cosine over the whole vocabulary; the query word's own row is left out. On a lemmatized vocabulary
  a plain word that is no key (москвы) stands for its keys (москва_PROPN, and москва_NOUN where it exists:
  morphology.resolve_queries), each answered and named.
- --map PATH draws the --neighbors words and their K neighbours on a 2-D map (PCA, views.draw_map), a colour
  per query; --projector N writes vectors.tsv and metadata.tsv of the N most frequent words for TensorBoard's
  embedding projector (views.write_projector); --card adds the scores to the model card beside the vectors
  (model_card.add_scores: card.json and README.md, written by train.py).
- A file without one usable question or pair is an error (one line), not a table of zeros.
- Lemmatized vectors (convert_to_int.py --lemmatize lemma|upos; vocab.json says which): every plain word of an
  evaluation file is mapped through the corpus's analysis (w2v/morphology.py: "москвы" -> "москва", or
  "москва_PROPN" for upos) before it is looked up, so the plain SimLex965 and HJ score a lemma model; words
  that already carry a tag (ru_simlex965_tagged.tsv: "авария_NOUN") are read as they are.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from w2v import common
from w2v.common import at_least, check_flags, fail, load_vocab, parse_config, run, write_json
from w2v.model_card import add_scores
from w2v.morphology import MODES, key_of_evaluation_word, resolve_queries
from w2v.vectors_io import load_vectors
from w2v.views import draw_map, write_projector
import word2vec
from word2vec import nearest_neighbours

# The Russian evaluation sets shipped with the project (sample/README.md), the default --similarity files, found
# wherever evaluate.py is run from.
SAMPLE_EVAL = Path(__file__).resolve().parent / "sample" / "eval"

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
VECTORS = ""  # word vectors: word2vec text, word2vec binary (.bin) or embeddings.npy; empty: DATA_DIR/model/vectors.txt
VOCAB = ""  # vocab.json naming the rows of an embeddings.npy; empty: the one next to it, else in its parent folder
ANALOGIES = []  # analogy files, Google questions-words.txt format (": section" lines, then "a b c d")
SIMILARITY = [str(SAMPLE_EVAL / "ru_simlex965.tsv"), str(SAMPLE_EVAL / "hj.csv")]  # word-pair files with a gold score: tab, comma or space separated; "#" lines and a header skipped; --similarity alone: none
NEIGHBORS = []  # words whose nearest neighbours are printed
K = word2vec.K  # neighbours per word (word2vec.py's K)
RESTRICT_VOCAB = 30000  # analogies: questions and answers only among this many most frequent words (0: all)
LOWERCASE = True  # match words case-insensitively (gensim's case_insensitive=True; see the module docstring)
LEMMATIZE = "auto"  # how the vectors' words were made: none, lemma, upos, or auto: the "lemmatize" of their vocab.json (none without one)
JSON = ""  # also write every figure to this JSON file (empty: none)
ANALOGY_BATCH = 1024  # analogy questions scored by one matrix product
MAP = ""  # draw the --neighbors words and their --k neighbours on a 2-D map (PCA) to this PNG (empty: none)
PROJECTOR = 0  # write vectors.tsv and metadata.tsv (word, count) of this many most frequent words, for TensorBoard's embedding projector (0: none)
PROJECTOR_DIR = ""  # where --projector writes; empty: the folder of the vectors (DATA_DIR/model)
CARD = False  # add the similarity and analogy scores to the model card beside the vectors (card.json, README.md: train.py writes it)

_LIST_FLAGS = ("--analogies", "--similarity", "--neighbors")
_CANDIDATES = 5  # gensim looks at the top 5 answers (after dropping the question rows) for a valid one
# convert_to_int.py writes the mode before the words, near the start of vocab.json's one line.
_MODE_IN_VOCAB = re.compile(r'"lemmatize": "(\w+)"')


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    cfg = parse_config(__file__, globals(), merge_repeated_flags(sys.argv[1:] if argv is None else list(argv),
                                                                   _LIST_FLAGS))
    check_flags(cfg, k=at_least(1), restrict_vocab=at_least(0), analogy_batch=at_least(1))
    check_flags(cfg, projector=at_least(0))
    if cfg.map and not cfg.neighbors:
        fail("--map draws the --neighbors words: give some")
    if not (cfg.analogies or cfg.similarity or cfg.neighbors or cfg.projector):
        fail("nothing to evaluate: give --analogies FILE, --similarity FILE, --neighbors WORD or --projector N")
    for path in cfg.analogies + cfg.similarity:
        if not Path(path).is_file():
            fail(f"{path} not found")
    if cfg.lemmatize not in MODES + ("auto",):
        fail(f"--lemmatize must be one of {', '.join(MODES + ('auto',))}, got {cfg.lemmatize!r}")
    vectors_path = Path(cfg.vectors) if cfg.vectors else Path(cfg.data_dir) / "model" / "vectors.txt"
    words, vectors = load_vectors([vectors_path, Path(cfg.vocab)] if cfg.vocab else vectors_path)
    mode = cfg.lemmatize if cfg.lemmatize != "auto" else vocabulary_mode(vectors_path, cfg.vocab)
    figures: dict = {"vectors": str(vectors_path), "words": len(words), "dim": int(vectors.shape[1]),
                     "lowercase": cfg.lowercase, "lemmatize": mode}
    print(f"{vectors_path}: {len(words):,} words x {vectors.shape[1]} dims, "
          f"{'case-insensitive' if cfg.lowercase else 'exact-case'} matching"
          + (f", plain evaluation words mapped to their {mode}" if mode != "none" else ""))
    normed = unit_rows(vectors)
    raw = vectors if cfg.projector else None  # the projector shows the vectors as trained, not scaled
    del vectors  # only the unit rows are needed from here on
    if cfg.analogies:
        figures["analogies"] = {}
        for path in cfg.analogies:
            result = _analogies(words, normed, path, cfg.restrict_vocab, cfg.lowercase, cfg.analogy_batch, mode)
            figures["analogies"][_name(path, cfg.analogies)] = result
            print_analogies(path, result)
    if cfg.similarity:
        figures["similarity"] = {_name(path, cfg.similarity): _similarity(words, normed, path, cfg.lowercase,
                                                                          lemmatize=mode)
                                 for path in cfg.similarity}
        print_similarity(figures["similarity"])
    if cfg.neighbors:
        figures["neighbors"], figures["keys"] = {}, resolve_queries(cfg.neighbors, words, mode, cfg.lowercase)
        for query, keys in figures["keys"].items():
            if not keys:
                figures["neighbors"][query] = None
                print_neighbours(query, None)
            for key in keys:
                found = nearest_neighbours(words, normed, [key], cfg.k, lowercase=cfg.lowercase)[key]
                figures["neighbors"][key] = found
                print_neighbours(key if key == query else f"{key} (for {query})", found)
        if cfg.map:
            groups = {key if key == query else f"{key} ({query})": [key] + [w for w, _ in figures["neighbors"][key]]
                      for query, keys in figures["keys"].items() for key in keys}
            if not groups:
                fail(f"--map: none of {', '.join(cfg.neighbors)} is in the vocabulary")
            draw_map(cfg.map, words, normed, _spelled(words, groups, cfg.lowercase),
                     f"{cfg.k} nearest neighbours of each word, PCA of the unit vectors")
            print(f"map written to {cfg.map}")
    if cfg.projector:
        out_dir = Path(cfg.projector_dir) if cfg.projector_dir else vectors_path.parent
        paths = write_projector(out_dir, words, _counts(words, vectors_path, cfg.vocab, cfg.projector), raw,
                                cfg.projector)
        figures["projector"] = [str(path) for path in paths]
        print(f"projector files: {paths[0]}, {paths[1]} ({min(cfg.projector, len(words)):,} words)")
    if cfg.card:
        card = add_scores(vectors_path.parent, {kind: figures[kind] for kind in ("similarity", "analogies")
                                                if kind in figures})
        print(f"scores added to the model card {vectors_path.parent / 'card.json'} and README.md "
              f"({', '.join(card['scores'])})")
    figures["wall_s"] = round(time.perf_counter() - started, 2)
    if cfg.json:
        write_json(Path(cfg.json), figures)  # atomic
        print(f"figures written to {cfg.json}")
    return figures


# ---------------------------------------------------------------- public functions


def evaluate_analogies(words: Sequence[str], vectors: np.ndarray, path: str | Path, restrict_vocab: int = 30000,
                       lowercase: bool = True, lemmatize: str = "none") -> dict:
    """3CosAdd accuracy per section and in total (gensim's evaluate_word_analogies convention).

    Returns {"restrict_vocab", "sections": [{"section", "correct", "scored", "skipped", "accuracy"}, ...],
    "total": {... "section": "Total accuracy"}, "semantic"/"syntactic" (when sections are named gram*...),
    "questions", "invalid_lines"}.
    """
    return _analogies(list(words), unit_rows(vectors, restrict_vocab), path, restrict_vocab, lowercase,
                      ANALOGY_BATCH, lemmatize)


def evaluate_similarity(words: Sequence[str], vectors: np.ndarray, path: str | Path, lowercase: bool = True,
                        restrict_vocab: int = 0, lemmatize: str = "none") -> dict:
    """Spearman rho (and Pearson r) between cosine and gold score; pairs with an unknown word are skipped.

    restrict_vocab=0 uses the whole vocabulary (evaluate.py's convention); N > 0 looks words up among the N
    most frequent only, as gensim's restrict_vocab does. lemmatize (none, lemma, upos): the vocabulary's mode,
    plain words of the file mapped to it (the module docstring). Returns {"spearman", "pearson", "scored",
    "total", "support": "scored/total", "skipped", "invalid_lines"}.
    """
    return _similarity(list(words), unit_rows(vectors), path, lowercase, restrict_vocab, lemmatize)


def vocabulary_path(vectors_path: str | Path, vocab_path: str | Path = "") -> Path | None:
    """The vocab.json of these vectors: given, or next to them, or in their parent folder (where train.py's
    data/model/vectors.txt finds data/vocab.json); None when there is none."""
    vectors_path = Path(vectors_path)
    candidates = [Path(vocab_path)] if vocab_path else [vectors_path.parent / "vocab.json",
                                                        vectors_path.parent.parent / "vocab.json"]
    return next((path for path in candidates if path.is_file()), None)


def vocabulary_mode(vectors_path: str | Path, vocab_path: str | Path = "") -> str:
    """The lemmatize mode of the vocab.json of these vectors (vocabulary_path); "none" when there is none or it
    says none."""
    path = vocabulary_path(vectors_path, vocab_path)
    if path is None:
        return "none"
    with open(path, encoding="utf-8", errors="replace") as handle:
        match = _MODE_IN_VOCAB.search(handle.read(4096))
    return match.group(1) if match and match.group(1) in MODES else "none"


def _counts(words: Sequence[str], vectors_path: Path, vocab_path: str, top: int) -> np.ndarray | None:
    """The counts of the `top` first words from their vocab.json, None without one or when its words differ."""
    path = vocabulary_path(vectors_path, vocab_path)
    if path is None or path.name != "vocab.json":
        return None
    vocab_words, counts = load_vocab(path.parent)
    top = min(top, len(words))
    return counts[:top] if list(vocab_words[:top]) == list(words[:top]) else None


def _spelled(words: Sequence[str], groups: dict[str, list[str]], lowercase: bool) -> dict[str, list[str]]:
    """Groups of words as `words` spells them: a query matched case-insensitively takes its most frequent row's
    spelling (the row nearest_neighbours answered for)."""
    exact = set(words)
    folded: dict[str, str] = {}
    if lowercase:
        for word in words:
            folded.setdefault(word.upper(), word)
    return {name: [word if word in exact else folded.get(word.upper(), word) for word in members]
            for name, members in groups.items()}


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho with average ranks for ties (as scipy.stats.spearmanr); nan when a side is constant."""
    return pearson(rank_average(np.asarray(x, dtype=np.float64)), rank_average(np.asarray(y, dtype=np.float64)))


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    y = np.asarray(y, dtype=np.float64) - np.mean(y)
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator > 0 else float("nan")


def rank_average(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of their ranks."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new_group = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    group = np.cumsum(new_group) - 1
    first = np.flatnonzero(new_group)
    last = np.append(first[1:], len(values)) - 1
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = (first + last)[group] / 2.0 + 1.0
    return ranks


def unit_rows(vectors: np.ndarray, limit: int = 0) -> np.ndarray:
    """float32 rows scaled to length 1 (the first `limit` rows when limit > 0); zero rows stay zero."""
    block = np.asarray(vectors[:limit] if limit else vectors, dtype=np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.where(norms > 0, norms, 1.0).astype(np.float32)


def merge_repeated_flags(argv: list[str], flags: Sequence[str]) -> list[str]:
    """`--analogies A --analogies B` -> `--analogies A B`: list flags accumulate instead of the last one winning."""
    values: dict[str, list[str]] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        flag, _, inline = token.partition("=")
        if flag in flags:
            collected = values.setdefault(flag, [])
            if inline or token.endswith("="):
                collected.append(inline)
            i += 1
            while i < len(argv) and not _is_option(argv[i]):
                collected.append(argv[i])
                i += 1
            if flag not in rest:
                rest.append(flag)
            continue
        rest.append(token)
        i += 1
    merged: list[str] = []
    for token in rest:
        merged.append(token)
        if token in values:
            merged.extend(values[token])
    return merged


def _is_option(token: str) -> bool:
    if not token.startswith("-") or token == "-":
        return False
    try:
        float(token)  # a negative number is a value, as argparse sees it
        return False
    except ValueError:
        return True


# ---------------------------------------------------------------- the work


class _Lookup:
    """Word -> row, case-folded (str.upper, the first = most frequent row wins) when lowercase is on; a file's
    words mapped to the vocabulary's lemmatize mode first (each distinct word analysed once)."""

    def __init__(self, words: Sequence[str], lowercase: bool, limit: int = 0, lemmatize: str = "none"):
        if lemmatize not in MODES:
            fail(f"lemmatize must be one of {', '.join(MODES)}, got {lemmatize!r}")
        self.words = words[:limit] if limit else words
        self.lowercase = lowercase
        self.lemmatize = lemmatize
        self.analysed: dict[str, str] = {}
        self.exact: dict[str, int] = {}
        for row, word in enumerate(self.words):
            self.exact.setdefault(word, row)
        self.folded = self.exact
        if lowercase:
            self.folded = {}
            for row, word in enumerate(self.words):
                self.folded.setdefault(word.upper(), row)

    def key(self, word: str) -> str:
        """A file's word as the vocabulary spells it: its lemma (or lemma_UPOS) in a lemmatized vocabulary, folded."""
        if self.lemmatize != "none":
            if word not in self.analysed:
                self.analysed[word] = key_of_evaluation_word(word, self.lemmatize)
            word = self.analysed[word]
        return self.fold(word)

    def fold(self, word: str) -> str:
        return word.upper() if self.lowercase else word

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of already-folded keys; -1 for unknown ones."""
        return np.array([self.folded.get(key, -1) for key in keys], dtype=np.int64)

    def row(self, word: str) -> int:
        return self.exact.get(word, self.folded.get(self.key(word), -1))

    def classes(self) -> np.ndarray:
        """For each row, the row its folded spelling stands for (itself unless a more frequent spelling exists)."""
        return self.rows([self.fold(word) for word in self.words])


def _analogies(words: list[str], normed: np.ndarray, path: str | Path, restrict_vocab: int, lowercase: bool,
               batch_size: int, lemmatize: str = "none") -> dict:
    restrict = min(restrict_vocab, len(words)) if restrict_vocab > 0 else len(words)
    lookup = _Lookup(words, lowercase, restrict, lemmatize)
    names, section_of, quads, invalid = _read_analogies(Path(path), lookup)
    rows = lookup.rows([word for quad in quads for word in quad]).reshape(-1, 4)
    known = (rows >= 0).all(axis=1)
    scored_rows, scored_section = rows[known], section_of[known]
    correct = _solve(torch.from_numpy(np.ascontiguousarray(normed[:restrict])), lookup.classes(), scored_rows,
                     batch_size)

    sections_n = len(names)
    right = np.bincount(scored_section[correct], minlength=sections_n)
    scored = np.bincount(scored_section, minlength=sections_n)
    skipped = np.bincount(section_of[~known], minlength=sections_n)
    sections = [_accuracy(names[i], int(right[i]), int(scored[i]), int(skipped[i])) for i in range(sections_n)]
    result = {"file": str(path), "restrict_vocab": restrict, "questions": len(quads), "invalid_lines": invalid,
              "sections": sections,
              "total": _accuracy("Total accuracy", int(right.sum()), int(scored.sum()), int(skipped.sum()))}
    syntactic = np.array([name.startswith("gram") for name in names], dtype=bool)
    if syntactic.any() and not syntactic.all():  # the Google set's split: gram* sections are syntactic
        for label, chosen in (("semantic", ~syntactic), ("syntactic", syntactic)):
            result[label] = _accuracy(label, int(right[chosen].sum()), int(scored[chosen].sum()),
                                      int(skipped[chosen].sum()))
    return result


def _read_analogies(path: Path, lookup: _Lookup) -> tuple[list[str], np.ndarray, list[list[str]], int]:
    names: list[str] = []
    section_of: list[int] = []
    quads: list[list[str]] = []
    invalid = 0
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # gensim's lines: no other line breaks
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    for number, line in enumerate(lines, 1):
        if line.startswith(": "):
            names.append(line.lstrip(": ").strip())
            continue
        fields = line.split()
        if not fields:
            continue
        if not names:
            fail(f"{path} line {number}: a question before any ': section' line")
        if len(fields) != 4:
            invalid += 1
            continue
        quads.append([lookup.key(word) for word in fields])
        section_of.append(len(names) - 1)
    if not quads:  # scoring nothing would print a table of zeros that reads like a result
        fail(f"{path} holds no usable question (four words on a line after a ': section' line; "
             f"{invalid} lines of another shape)")
    return names, np.array(section_of, dtype=np.int64), quads, invalid


def _solve(normed: torch.Tensor, classes: np.ndarray, rows: np.ndarray, batch_size: int) -> np.ndarray:
    """Which questions (rows a, b, c, d) 3CosAdd answers right, following gensim's choice exactly.

    gensim takes the 8 best rows for b - a + c, drops the rows of a, b and c, keeps the first 5 and answers with
    the first whose folded word is none of a, b, c (else with the last of the 5); right when its folded word
    is d's.
    """
    if not len(rows):
        return np.zeros(0, dtype=bool)
    top_n = min(_CANDIDATES + 3, normed.shape[0])
    batch_size = max(1, min(batch_size, (1 << 25) // normed.shape[0]))  # the score block stays near 128 MB
    correct = np.zeros(len(rows), dtype=bool)
    classes_t = torch.from_numpy(classes)
    rows_t = torch.from_numpy(rows)
    with torch.inference_mode():
        progress = tqdm(total=len(rows), desc="analogies", unit="q", leave=False, disable=len(rows) <= batch_size)
        for start in range(0, len(rows), batch_size):
            batch = rows_t[start:start + batch_size]
            a, b, c, d = batch.T
            queries = normed[b] - normed[a] + normed[c]
            top = torch.topk(queries @ normed.T, top_n, dim=1).indices
            question_row = (top == a[:, None]) | (top == b[:, None]) | (top == c[:, None])
            kept = ~question_row & (torch.cumsum((~question_row).int(), dim=1) <= _CANDIDATES)
            top_class = classes_t[top]
            valid = kept & (top_class != a[:, None]) & (top_class != b[:, None]) & (top_class != c[:, None])
            first_valid = valid.int().argmax(dim=1)
            last_kept = top_n - 1 - kept.flip(1).int().argmax(dim=1)
            choice = torch.where(valid.any(dim=1), first_valid, last_kept)
            answer = top_class.gather(1, choice[:, None])[:, 0]
            correct[start:start + len(batch)] = ((answer == d) & kept.any(dim=1)).numpy()
            progress.update(len(batch))
        progress.close()
    return correct


def _accuracy(name: str, correct: int, scored: int, skipped: int) -> dict:
    return {"section": name, "correct": correct, "scored": scored, "skipped": skipped,
            "accuracy": correct / scored if scored else 0.0}


def _similarity(words: list[str], normed: np.ndarray, path: str | Path, lowercase: bool,
                restrict_vocab: int = 0, lemmatize: str = "none") -> dict:
    lookup = _Lookup(words, lowercase, restrict_vocab, lemmatize)
    firsts, seconds, gold, invalid = _read_pairs(Path(path), lookup)
    rows_1, rows_2 = lookup.rows(firsts), lookup.rows(seconds)
    known = (rows_1 >= 0) & (rows_2 >= 0)
    cosine = np.einsum("ij,ij->i", normed[rows_1[known]].astype(np.float64), normed[rows_2[known]].astype(np.float64))
    scored = int(known.sum())
    enough = scored >= 2
    return {"file": str(path), "spearman": _finite(spearman(gold[known], cosine)) if enough else None,
            "pearson": _finite(pearson(gold[known], cosine)) if enough else None,
            "scored": scored, "total": len(gold), "support": f"{scored}/{len(gold)}",
            "skipped": len(gold) - scored, "invalid_lines": invalid}


def _read_pairs(path: Path, lookup: _Lookup) -> tuple[list[str], list[str], np.ndarray, int]:
    """word1, word2, score lines split on tab, else comma, else whitespace; '#' lines are comments and other
    lines that are not two words and a number (a header) are counted as invalid."""
    firsts: list[str] = []
    seconds: list[str] = []
    gold: list[float] = []
    invalid = 0
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split("\t") if "\t" in line else line.split(",") if "," in line else line.split()
        try:
            first, second, score = (field.strip() for field in fields)
            value = float(score)
        except ValueError:
            invalid += 1
            continue
        firsts.append(lookup.key(first))
        seconds.append(lookup.key(second))
        gold.append(value)
    if not gold:
        fail(f"{path} holds no usable row (two words and a number, tab, comma or space separated; "
             f"{invalid} lines of another shape)")
    return firsts, seconds, np.array(gold, dtype=np.float64), invalid


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _name(path: str, paths: list[str]) -> str:
    """The file name as the key of its figures, the path when two files share a name."""
    name = Path(path).name
    return name if sum(Path(p).name == name for p in paths) == 1 else str(path)


# ---------------------------------------------------------------- printing


def print_analogies(path: str, result: dict) -> None:
    print(f"\nanalogies {path}: 3CosAdd over the {result['restrict_vocab']:,} most frequent words"
          + (f", {result['invalid_lines']} invalid lines ignored" if result["invalid_lines"] else ""))
    print(f"  {'section':<32} {'accuracy':>8} {'correct/scored':>16} {'skipped':>8}")
    extra = [result[key] for key in ("semantic", "syntactic") if key in result]
    for i, section in enumerate(result["sections"] + extra + [result["total"]]):
        if i == len(result["sections"]):
            print("  " + "-" * 67)
        print(f"  {section['section'][:32]:<32} {100 * section['accuracy']:7.1f}% "
              f"{section['correct']:>7,}/{section['scored']:<8,} {section['skipped']:>8,}")


def print_similarity(results: dict) -> None:
    print(f"\n  {'similarity':<32} {'spearman':>8} {'pearson':>8} {'support':>12}")
    for name, result in results.items():
        shown = [f"{result[key]:8.3f}" if result[key] is not None else f"{'n/a':>8}" for key in ("spearman", "pearson")]
        print(f"  {name[:32]:<32} {shown[0]} {shown[1]} {result['support']:>12}")


def print_neighbours(query: str, found: list[tuple[str, float]] | None) -> None:
    if found is None:
        print(f"\nunknown word: {query}")
        return
    print(f"\n{query}: " + ", ".join(f"{word} {cosine:.3f}" for word, cosine in found))


if __name__ == "__main__":
    run(main)
