"""Context-free Russian lemmas and UPOS tags of word types: pymorphy3's first parse, one analysis per distinct form.

    keys = analyse_types(["москвы", "есть", "и"], mode="upos")   # ["москва_PROPN", "быть_VERB", "и_CCONJ"]

A form's context-free lemma is a function of the form alone, so a corpus costs one analysis per distinct word
type, never one per token: convert_to_int.py analyses each vocabulary candidate once and merges the counts by
key; evaluate.py maps plain evaluation pairs through the same function.

The key of a form:
- mode "lemma": the lemma of pymorphy3's first (most probable) parse, ё folded to е afterwards (pymorphy3
  restores ё in lemmas inconsistently: "елка" and "ёлка" would otherwise be two lemmas);
- mode "upos": that lemma, "_", and the Universal Dependencies part of speech of the parse (OPENCORPORA_TO_UPOS),
  the form RusVectores' models and ru_simlex965_tagged.tsv use ("москва_PROPN").

Known wrong first parses of frequent forms are corrected by FIRST_PARSE_FIXES, a table (form -> lemma, UPOS),
applied before anything else: "есть" comes out of pymorphy3 as the infinitive "to eat", where in running text it
is almost always the present of быть ("there is"). Other traps are left as pymorphy3 answers them and are known:
"стали" -> стать (also the genitive of сталь), ties such as "мыла" (мыло / мыть), "стоит" (стоить / стоять),
unknown slang given a guessed lemma, and так / как / например tagged as conjunctions (OpenCorpora's choice)
where UD has adverbs. A context-free tagger cannot tell быть the auxiliary from быть the verb: it is VERB here.

pymorphy3 is imported on first use only, so the stages that never lemmatize never load it.
"""
from __future__ import annotations

import functools
from typing import Iterable, Mapping, Sequence

MODES = ("none", "lemma", "upos")

# OpenCorpora part-of-speech grammemes (pymorphy3's tag.POS) -> UPOS. Written here from OpenCorpora's grammeme
# table (opencorpora.org/dict.php?act=gram) and the UD v2 guidelines for Russian (universaldependencies.org/ru/pos/):
# full and short adjectives and comparatives are ADJ; infinitives, gerunds and participles are forms of the VERB;
# pronominal adjectives (grammeme Apro: этот, свой, весь, который) are DET (in _upos); predicatives (можно,
# нельзя) are ADV; OpenCorpora has one conjunction class, split by SUBORDINATING below.
OPENCORPORA_TO_UPOS = {
    "NOUN": "NOUN", "ADJF": "ADJ", "ADJS": "ADJ", "COMP": "ADJ",
    "VERB": "VERB", "INFN": "VERB", "PRTF": "VERB", "PRTS": "VERB", "GRND": "VERB",
    "NUMR": "NUM", "ADVB": "ADV", "PRED": "ADV", "NPRO": "PRON",
    "PREP": "ADP", "CONJ": "CCONJ", "PRCL": "PART", "INTJ": "INTJ",
}
# Nouns carrying one of these grammemes are proper nouns: first name, surname, patronymic, place, organisation,
# and trademark.
PROPER_NOUN_GRAMMEMES = frozenset({"Name", "Surn", "Patr", "Geox", "Orgn", "Trad"})
# Conjunctions that introduce a subordinate clause (UD SCONJ); every other conjunction is CCONJ.
SUBORDINATING = frozenset({"что", "чтобы", "если", "когда", "потому", "поскольку", "хотя", "пока", "будто",
                           "словно", "ежели", "коли", "раз", "чем", "дабы", "едва", "ибо", "покуда", "нежели",
                           "как"})
# Forms whose first parse is known wrong in running text: form -> (lemma, UPOS), used instead of the analysis.
FIRST_PARSE_FIXES = {"есть": ("быть", "VERB")}
# What a form no analysis recognises as a part of speech gets (latin words, punctuation, unknown classes).
UNKNOWN_UPOS = "X"
# RusVectores' function words: the UPOS tags --drop-pos removes by default.
FUNCTION_UPOS = ("ADP", "AUX", "CCONJ", "DET", "PART", "PRON", "SCONJ")
UPOS_TAGS = frozenset({"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
                       "PUNCT", "SCONJ", "SYM", "VERB", "X"})


def check_mode(mode: str) -> str:
    """The mode itself, or ValueError with one line naming the accepted ones."""
    if mode not in MODES:
        raise ValueError(f"--lemmatize must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


@functools.lru_cache(maxsize=1)
def analyzer():
    """pymorphy3's Russian analyzer, loaded once per process (its dictionaries are a package: no network)."""
    try:
        import pymorphy3
    except ImportError as error:
        raise ImportError("lemmatizing needs pymorphy3 and pymorphy3-dicts-ru "
                          "(pip install -r requirements.txt)") from error
    return pymorphy3.MorphAnalyzer(lang="ru")


def _upos(parse) -> str:
    tag = parse.tag
    pos = tag.POS
    if pos is None:
        return UNKNOWN_UPOS
    if pos == "NOUN":
        return "PROPN" if PROPER_NOUN_GRAMMEMES & tag.grammemes else "NOUN"
    if pos in ("ADJF", "ADJS") and "Apro" in tag.grammemes:
        return "DET"
    if pos == "CONJ":
        return "SCONJ" if parse.normal_form in SUBORDINATING else "CCONJ"
    return OPENCORPORA_TO_UPOS.get(pos, UNKNOWN_UPOS)


def analyse_form(form: str) -> tuple[str, str]:
    """(lemma with ё folded to е, UPOS) of one word form: FIRST_PARSE_FIXES, else pymorphy3's first parse."""
    fixed = FIRST_PARSE_FIXES.get(form)
    if fixed is not None:
        return fixed
    parse = analyzer().parse(form)[0]
    return parse.normal_form.replace("ё", "е"), _upos(parse)


def analyse_types(forms: Iterable[str], mode: str, drop_pos: Sequence[str] = ()) -> list[str | None]:
    """The key of each form (see the module docstring); None for a form whose UPOS is in drop_pos.

    Each form is analysed once: call it with distinct forms (a vocabulary, a bucket of word types).
    """
    check_mode(mode)
    dropped = frozenset(drop_pos)
    keys: list[str | None] = []
    for form in forms:
        if mode == "none" and not dropped:
            keys.append(form)
            continue
        lemma, upos = analyse_form(form)
        if upos in dropped:
            keys.append(None)
        elif mode == "upos":
            keys.append(f"{lemma}_{upos}")
        elif mode == "lemma":
            keys.append(lemma)
        else:
            keys.append(form)
    return keys


def is_tagged(word: str) -> bool:
    """Whether a word already carries a UPOS tag (авария_NOUN), as the tagged evaluation sets do."""
    head, _, tag = word.rpartition("_")
    return bool(head) and tag in UPOS_TAGS


def key_of_evaluation_word(word: str, mode: str) -> str:
    """An evaluation set's word in a vocabulary of `mode`: tagged words as they are, plain ones analysed
    (lowercased first, as prep.py lowercases the corpus)."""
    if mode == "none" or is_tagged(word):
        return word
    key = analyse_types([word.lower()], mode)[0]
    return key if key is not None else word


def keys_of_query(word: str, vocabulary: Mapping[str, int], mode: str) -> list[str]:
    """The keys of a vocabulary of `mode` that a word typed by a user stands for, most likely first.

    vocabulary: key -> row (rows in frequency order). A word that is a key itself (москва_PROPN, or any word of
    a plain vocabulary) answers for itself alone. Else, in a lemma or upos vocabulary, the word (lowercased) is
    analysed: the key of its first parse comes first (key_of_evaluation_word's, so the evaluation sets' mapping),
    then the keys of its other parses and, for upos, its first lemma under the other UPOS tags (москва_NOUN
    beside москва_PROPN), those in the vocabulary only, by frequency. [] when none is in the vocabulary.
    """
    if word in vocabulary:
        return [word]
    if mode == "none" or is_tagged(word):
        return []
    check_mode(mode)
    form = word.lower()
    first = key_of_evaluation_word(form, mode)
    candidates = {first}
    lemmas = {analyse_form(form)[0]}
    for parse in analyzer().parse(form):
        lemma = parse.normal_form.replace("ё", "е")
        lemmas.add(lemma)
        candidates.add(f"{lemma}_{_upos(parse)}" if mode == "upos" else lemma)
    if mode == "upos":
        candidates.update(f"{lemma}_{tag}" for lemma in lemmas for tag in UPOS_TAGS)
    others = sorted((key for key in candidates if key != first and key in vocabulary), key=vocabulary.__getitem__)
    return ([first] if first in vocabulary else []) + others


def resolve_queries(queries: Sequence[str], words: Sequence[str], mode: str, lowercase: bool = False
                    ) -> dict[str, list[str]]:
    """Each query -> the keys of `words` it stands for (keys_of_query; with lowercase, a query that matches a
    word case-insensitively stands for itself, as nearest-neighbour lookups fold case). [] for an unknown one."""
    vocabulary: dict[str, int] = {}
    for row, word in enumerate(words):
        vocabulary.setdefault(word, row)
    folded = {word.upper() for word in vocabulary} if lowercase else set()
    return {query: [query] if query.upper() in folded else keys_of_query(query, vocabulary, mode)
            for query in queries}
