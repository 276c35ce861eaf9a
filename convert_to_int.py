"""Stage 2: token lists -> vocabulary and word ids. DATA_DIR/prep/ -> DATA_DIR/ids/ and DATA_DIR/vocab.json.

    python convert_to_int.py --min-count 5 --max-vocab 0

Pass 1 counts the words of every prep part, one part per worker process, and merges the counts exactly with
bounded memory, by an external hash partition: each worker writes its part's word counts to a temporary Arrow
file as BUCKETS record batches, batch b holding the words whose hash falls in bucket b; then every bucket is
summed across the parts with a group-by (one bucket per worker at a time) and cut at MIN_COUNT. No process ever
holds every distinct raw word (tens of millions on web text, most seen once or twice): a merge holds about
1/BUCKETS of them, and the main process holds the words kept, the vocabulary. Words seen at least MIN_COUNT times
are kept, the most frequent first, ties in code point order (alphabetical for Latin and for Cyrillic but for ё,
which comes after я); MAX_VOCAB cuts the list. Pass 2 maps every part to ids: words left out of the
vocabulary are dropped, and so are the documents left empty. The vocabulary reaches the workers once: it is
written to a temporary Arrow file that each worker process maps and keeps for every part it maps.

Both passes read the tokens as parquet stores them, dictionary-encoded (prep.py writes one dictionary page per
part), so each distinct word of a part is hashed once: counting is a bincount of the dictionary indices and
mapping a lookup of the dictionary then a gather. On ru_corpus that is ~3x faster than value_counts / index_in
over every token.

Outputs (see the conventions): vocab.json {"words", "counts", "min_count", "max_vocab", "corpus_tokens",
"vocab_tokens"} and ids/part-NNNNN.parquet with column `ids: list<int32>`, one row per document.

With --lemmatize lemma|upos or --drop-pos (docs/lemmas.md) the words are keys: each bucket's distinct forms are
analysed once (w2v/morphology.py) by the worker that sums the bucket, their counts are summed by key through a
second set of bucketed counts files, and MIN_COUNT / MAX_VOCAB apply to the keys. Pass 2 looks the forms up in
the table of forms whose key was kept (form -> key id). vocab.json then also holds "lemmatize", "drop_upos"
and "forms"; without those flags nothing of this runs and the outputs are the plain ones above.

With --phrases N (w2v/phrases.py, docs/lemmas.md) pass 2 writes each part as a temporary stream of the candidate
words' ids (the words or keys counted MIN_COUNT times, -1 for the others, kept as a break), N passes join the
pairs that score above the threshold into new units, and MIN_COUNT / MAX_VOCAB then apply to words and joined
units together: a joined unit counts as one token in "vocab_tokens". vocab.json also holds the phrase settings.
With --phrases 0 (the default) nothing of this runs.

The ids and their vocabulary are one output: the vocabulary is written inside ids/ (ids/vocab.json) and
DATA_DIR/vocab.json is a relative symbolic link to it, so the one step that replaces ids/ replaces both, and a
kill at any moment leaves the previous pair or the new one, never ids of one run beside the words of another
(where the system cannot swap two directories in one step, a kill between atomic_output's two renames leaves
neither: both read as missing). Readers keep opening DATA_DIR/vocab.json and DATA_DIR/ids/.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from w2v import phrases
from w2v.counting import (COUNT_SCHEMA, bucket_totals, count_words, group_ids, merge_counts, read_vocabulary_file,
                          sum_bucket, token_groups, write_buckets, write_ids_part)
from w2v import common
from w2v.common import (StageReport, above, at_least, atomic_output, check_flags, fail, parse_config, parts, run, scratch_path,
                    write_vocab)
from w2v.morphology import FUNCTION_UPOS, MODES, UPOS_TAGS
from w2v.workers import WorkerPool, default_num_proc

DATA_DIR = common.DATA_DIR  # where stage outputs live (every stage's, set in w2v/common.py)
MIN_COUNT = 5  # keep words seen at least this many times in the corpus
MAX_VOCAB = 0  # keep at most this many of the most frequent words (0 = no limit)
NUM_PROC = default_num_proc()  # worker processes, one prep part each (1 = all in this process)
LEMMATIZE = "none"  # none: words as they are; lemma: each form replaced by its lemma; upos: by lemma_UPOS (москва_PROPN); see w2v/morphology.py
DROP_POS = False  # remove the words whose part of speech is in --drop-upos (function words) before the pairs are made
DROP_UPOS = list(FUNCTION_UPOS)  # the UPOS tags --drop-pos removes (RusVectores' function words)
PHRASES = 0  # passes joining frequent adjacent pairs into one token (нью_йорк); each pass can extend earlier joins; 0 = off (w2v/phrases.py)
PHRASE_SCORING = "word2phrase"  # word2phrase: word2vec.c's (n_ab - min_count) / (n_a n_b) * N; npmi: gensim's normalised PMI
PHRASE_THRESHOLD = 0.0  # join pairs scoring above this; 0 = the scoring's default (word2phrase 100, npmi 0.5)
PHRASE_MIN_COUNT = 5  # pairs seen fewer times are never joined
PHRASE_UPOS = []  # join only pairs whose two units carry one of these tags (needs --lemmatize upos; RusVectores: PROPN)

BUCKETS = 64  # hash partitions of the word counts, summed one at a time: counting holds ~1/BUCKETS of the words

# Where DATA_DIR/vocab.json points: inside ids/, so that ids and vocabulary are replaced in one step.
VOCAB_IN_IDS = Path("ids") / "vocab.json"



FORMS_SCHEMA = pa.schema([("word", pa.string()), ("key", pa.string())])


def analyse_bucket(task: tuple[int, list[Path], Path, Path, int, str, list[str]]) -> int:
    """Lemmatizing merge worker: bucket `bucket` of the raw word counts summed (every form, no MIN_COUNT yet),
    each distinct form analysed once (morphology.analyse_types), and two files written: `forms_path` the
    (form, key) pairs of the forms kept, `keys_path` the counts summed by key in the counts-file layout
    (`buckets` batches by the key's hash), so the keys of every bucket are summed exactly the way words are.

    Returns how many distinct forms the bucket held.
    """
    from w2v.morphology import analyse_types

    bucket, count_files, forms_path, keys_path, buckets, mode, drop_upos = task
    totals = bucket_totals(bucket, count_files)
    keys = pa.array(analyse_types(totals.column("word").to_pylist(), mode, drop_upos), pa.string())
    kept = pc.is_valid(keys)
    forms = pa.table({"word": totals.column("word").filter(kept), "key": keys.filter(kept)}, schema=FORMS_SCHEMA)
    with pa.OSFile(str(forms_path), "wb") as sink, pa.ipc.new_file(sink, FORMS_SCHEMA) as writer:
        writer.write_table(forms)
    by_key = merge_counts([pa.table({"word": keys.filter(kept), "count": totals.column("count").filter(kept)},
                              schema=COUNT_SCHEMA)]).cast(COUNT_SCHEMA).combine_chunks()
    write_buckets(keys_path, by_key, buckets)
    return totals.num_rows



def build_vocab(counts: pa.Table, min_count: int, max_vocab: int) -> pa.Table:
    """Words kept: count >= min_count, most frequent first, ties by code point order, at most max_vocab."""
    counts = counts.filter(pc.greater_equal(counts["count"], min_count))
    order = pc.sort_indices(counts, sort_keys=[("count", "descending"), ("word", "ascending")])
    counts = counts.take(order)
    return counts.slice(0, max_vocab) if max_vocab > 0 else counts



def map_part(task: tuple[int, Path, Path, str]) -> dict:
    """Pass-2 worker: write the ids of one prep part as `batch-<index>.parquet` (nothing if all docs empty).

    task: (index, prep part, output folder, the vocabulary's Arrow file, read once per worker process).
    """
    index, path, out_dir, vocabulary_file = task
    words, form_ids = read_vocabulary_file(str(vocabulary_file))
    groups = ((group_ids(flat, words, form_ids), pc.list_parent_indices(lists).to_numpy(), len(lists))
              for lists, flat in token_groups(path))
    return write_ids_part(index, Path(out_dir), groups)



def count_corpus(prep_parts: list[Path], pool: WorkerPool, spill_dir: Path, min_count: int,
                 buckets: int, spill_figures: dict, analysis: tuple[str, list[str]] | None = None
                 ) -> tuple[int, int, pa.Table]:
    """Pass 1: (documents, tokens, table of the words seen at least min_count times and their counts).

    spill_dir receives one counts file per part, deleted once summed; spill_figures gets their size
    (count_files_bytes), how many (word, count) rows they held (counted_entries) and the distinct raw words of
    the corpus (distinct_words).

    analysis: (mode, UPOS tags dropped) to count keys instead of words (see merge_by_key); the table then holds
    keys, and spill_dir keeps one forms file per bucket (forms-NNNNN.arrow) for vocabulary_of_forms.
    """
    documents = tokens = counted_entries = distinct_words = 0
    count_files = [spill_dir / f"counts-{index:05d}.arrow" for index in range(len(prep_parts))]
    with tqdm(unit="tokens", unit_scale=True, desc="count", file=sys.stderr) as bar:
        tasks = ((path, out_path, buckets) for path, out_path in zip(prep_parts, count_files))
        for part_documents, part_tokens, part_words in pool.map(count_words, tasks):
            documents, tokens = documents + part_documents, tokens + part_tokens
            counted_entries += part_words
            bar.update(part_tokens)
    spill_figures["count_files_bytes"] = sum(path.stat().st_size for path in count_files)
    spill_figures["counted_entries"] = counted_entries
    if analysis is not None:
        count_files = merge_by_key(count_files, pool, spill_dir, buckets, analysis, spill_figures)
    kept = []
    with tqdm(total=buckets, unit="buckets", desc="sum counts", file=sys.stderr) as bar:
        for table, bucket_words in pool.map(sum_bucket, ((bucket, count_files, min_count)
                                                         for bucket in range(buckets))):
            kept.append(table)
            distinct_words += bucket_words
            bar.update(1)
    if analysis is not None:
        spill_figures["distinct_keys"] = distinct_words
    else:
        spill_figures["distinct_words"] = distinct_words
    for path in count_files:
        path.unlink()
    return documents, tokens, pa.concat_tables(kept) if kept else COUNT_SCHEMA.empty_table()


def merge_by_key(count_files: list[Path], pool: WorkerPool, spill_dir: Path, buckets: int,
                 analysis: tuple[str, list[str]], spill_figures: dict) -> list[Path]:
    """The raw counts files (deleted) -> counts files of keys (lemmas or lemma_UPOS), one per bucket of words.

    Every distinct form of the corpus is analysed once, in the bucket that holds it (analyse_bucket); no
    process holds more than a bucket of forms. MIN_COUNT is applied afterwards, to the summed keys.
    """
    mode, drop_upos = analysis
    key_files = [spill_dir / f"keys-{bucket:05d}.arrow" for bucket in range(buckets)]
    started = time.perf_counter()
    distinct_words = 0
    with tqdm(unit="types", unit_scale=True, desc=f"analyse ({mode})", file=sys.stderr) as bar:
        tasks = ((bucket, count_files, forms_file(spill_dir, bucket), key_files[bucket], buckets, mode, drop_upos)
                 for bucket in range(buckets))
        for bucket_words in pool.map(analyse_bucket, tasks):
            distinct_words += bucket_words
            bar.update(bucket_words)
    spill_figures["distinct_words"] = distinct_words
    spill_figures["analysis_s"] = round(time.perf_counter() - started, 2)
    for path in count_files:
        path.unlink()
    return key_files


def forms_file(spill_dir: Path, bucket: int) -> Path:
    return spill_dir / f"forms-{bucket:05d}.arrow"


def vocabulary_of_forms(spill_dir: Path, buckets: int, keys: pa.Array) -> pa.Table:
    """(word, id): every form whose key is in the vocabulary `keys`, and that key's position, from the forms
    files (deleted): what pass 2 looks the corpus's forms up in."""
    kept = []
    for bucket in range(buckets):
        path = forms_file(spill_dir, bucket)
        with pa.OSFile(str(path)) as source:
            forms = pa.ipc.open_file(source).read_all()
        ids = pc.index_in(forms.column("key"), value_set=keys)
        known = pc.is_valid(ids)
        kept.append(pa.table({"word": forms.column("word").filter(known),
                              "id": ids.filter(known).cast(pa.int32())}))
        path.unlink()
    return pa.concat_tables(kept).combine_chunks()


def write_ids(prep_parts: list[Path], vocabulary_file: Path, out_dir: Path, corpus_tokens: int,
              pool: WorkerPool) -> tuple[int, int]:
    """Pass 2: ids parts in out_dir; returns (documents, ids) written. vocabulary_file: the words, Arrow IPC."""
    tasks = ((index, path, out_dir, vocabulary_file) for index, path in enumerate(prep_parts))
    return collect_ids_parts(pool.map(map_part, tasks), out_dir, corpus_tokens)


def collect_ids_parts(results: Iterator[dict], out_dir: Path, corpus_tokens: int) -> tuple[int, int]:
    """The figures of write_ids_part's workers, in part order -> (documents, ids); the parts renamed."""
    documents = ids = written = 0
    with tqdm(total=corpus_tokens, unit="tokens", unit_scale=True, desc="map", file=sys.stderr) as bar:
        for figures in results:
            documents, ids = documents + figures["documents"], ids + figures["ids"]
            if figures["documents"]:
                # Parts whose documents all went empty write nothing: renumber to stay contiguous.
                os.replace(out_dir / f"batch-{figures['index']:05d}.parquet", out_dir / f"part-{written:05d}.parquet")
                written += 1
            bar.update(figures["tokens"])
    return documents, ids


def link_vocab_into_ids(data_dir: Path) -> None:
    """Make DATA_DIR/vocab.json the link VOCAB_IN_IDS, each step leaving a whole pair (ids/ and its words).

    Called before the new ids/ replaces the old.
    """
    link = Path(data_dir) / "vocab.json"
    if link.is_symlink() and Path(os.readlink(link)) == VOCAB_IN_IDS:
        return
    with atomic_output(link) as temp:
        os.symlink(VOCAB_IN_IDS, temp)


PHRASE_SETTINGS = ("phrases", "phrase_scoring", "phrase_threshold", "phrase_min_count", "phrase_upos")


def join_phrases(cfg, threshold: float, prep_parts: list[Path], pool: WorkerPool, spill_dir: Path,
                 vocabulary_file: Path, words: pa.Array) -> tuple[pa.Array, np.ndarray, list[Path], Path, dict]:
    """--phrases: the corpus as streams of the candidate words' ids, joined in passes (w2v/phrases.py), then the
    vocabulary of words and joined units cut by MIN_COUNT and MAX_VOCAB.

    Returns (the vocabulary's keys, their counts, the stream files, the .npy mapping each unit to its id or -1,
    figures). Candidates are the keys counted MIN_COUNT times: a pair's parts are each at least as frequent as
    the pair, so no pair that could reach MIN_COUNT is lost.
    """
    started = time.perf_counter()
    streams, unit_counts = phrases.make_streams(prep_parts, pool, spill_dir, vocabulary_file, len(words))
    streams, unit_counts, keys, passes = phrases.run_passes(
        streams, unit_counts, words, pool, spill_dir, cfg.phrases, cfg.phrase_scoring, threshold,
        cfg.phrase_min_count, cfg.phrase_upos, cfg.buckets, tagged=cfg.lemmatize == "upos")
    units = pa.table({"word": keys, "count": unit_counts, "unit": np.arange(len(keys))})
    vocab = build_vocab(units, cfg.min_count, cfg.max_vocab)
    final_ids = np.full(len(keys), -1, dtype=np.int64)
    final_ids[vocab["unit"].to_numpy()] = np.arange(len(vocab))
    final_ids_path = spill_dir / "final-ids.npy"
    np.save(final_ids_path, final_ids)
    vocab_words = vocab["word"].combine_chunks()
    if len(pc.unique(vocab_words)) != len(vocab_words):
        raise AssertionError("a key twice in the vocabulary of phrases")
    joiner = phrases.TAGGED_JOINER if cfg.lemmatize == "upos" else phrases.PLAIN_JOINER
    figures = {"phrases": cfg.phrases, "phrase_scoring": cfg.phrase_scoring, "phrase_threshold": threshold,
               "phrase_min_count": cfg.phrase_min_count, "phrase_upos": sorted(cfg.phrase_upos),
               "phrase_passes": passes,
               "phrases_in_vocab": int(pc.sum(pc.match_substring(vocab_words, joiner)).as_py() or 0),
               "phrase_s": round(time.perf_counter() - started, 2)}
    return vocab_words, vocab["count"].to_numpy(), streams, final_ids_path, figures


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(__file__, globals(), argv)
    check_flags(cfg, min_count=at_least(1), max_vocab=at_least(0), num_proc=at_least(1), buckets=at_least(1),
                phrases=at_least(0), phrase_threshold=above(-1), phrase_min_count=at_least(1))
    if cfg.lemmatize not in MODES:
        fail(f"--lemmatize must be one of {', '.join(MODES)}, got {cfg.lemmatize!r}")
    unknown_tags = sorted(set(cfg.drop_upos) - UPOS_TAGS)
    if unknown_tags:
        fail(f"--drop-upos takes UPOS tags ({', '.join(sorted(UPOS_TAGS))}), got {', '.join(unknown_tags)}")
    try:
        threshold = phrases.check_settings(cfg.phrase_scoring, cfg.phrase_threshold, cfg.phrase_upos, cfg.lemmatize,
                                           UPOS_TAGS)
    except ValueError as error:
        fail(str(error))
    # (mode, tags dropped) when words are analysed; None keeps the words as they are (and the outputs as before)
    analysis = (cfg.lemmatize, sorted(set(cfg.drop_upos)) if cfg.drop_pos else []) \
        if cfg.lemmatize != "none" or cfg.drop_pos else None
    data_dir = Path(cfg.data_dir)
    report = StageReport("convert_to_int", data_dir)
    prep_parts = parts(data_dir / "prep", "prep.py")
    # Counts files and the vocabulary for the workers, beside the outputs (a dead run's are removed on entry).
    with scratch_path(data_dir, "convert_to_int") as spill_dir:
        spill_dir.mkdir()
        try:
            # One pool for both passes: starting workers costs more than a pass over a small corpus.
            with WorkerPool(min(cfg.num_proc, len(prep_parts))) as pool:
                spill_figures: dict = {}
                input_documents, corpus_tokens, word_counts = count_corpus(
                    prep_parts, pool, spill_dir, cfg.min_count, cfg.buckets, spill_figures, analysis)
                # With phrases the vocabulary is cut (MAX_VOCAB) only once the joined units are counted.
                vocab = build_vocab(word_counts, cfg.min_count, 0 if cfg.phrases else cfg.max_vocab)
                del word_counts
                if not len(vocab):
                    fail(f"no word occurs {cfg.min_count} times or more in the {corpus_tokens:,} tokens of "
                         f"{data_dir / 'prep'}: the vocabulary would be empty (lower --min-count)")
                words = vocab["word"].combine_chunks()
                counts = vocab["count"].to_numpy()
                # A fresh name per run: workers (and this process, with one) cache the words by file name.
                vocabulary_file = spill_dir / f"vocabulary-{uuid.uuid4().hex}.arrow"
                lookup = pa.table({"word": words}) if analysis is None else \
                    vocabulary_of_forms(spill_dir, cfg.buckets, words)
                with pa.OSFile(str(vocabulary_file), "wb") as sink, pa.ipc.new_file(sink, lookup.schema) as writer:
                    writer.write_table(lookup)
                # Only a run that analyses says so: the vocabulary of a plain run stays what it always was.
                analysis_figures = {} if analysis is None else {"lemmatize": analysis[0], "drop_upos": analysis[1],
                                                                 "forms": len(lookup)}
                phrase_figures: dict = {}
                if cfg.phrases:
                    words, counts, streams, final_ids, phrase_figures = join_phrases(
                        cfg, threshold, prep_parts, pool, spill_dir, vocabulary_file, words)
                vocab_tokens = int(counts.sum())
                with atomic_output(data_dir / "ids") as out_dir:
                    out_dir.mkdir(parents=True)
                    if cfg.phrases:
                        tasks = ((index, stream, out_dir, final_ids) for index, stream in enumerate(streams))
                        documents, ids = collect_ids_parts(pool.map(phrases.write_part, tasks), out_dir,
                                                           corpus_tokens)
                    else:
                        documents, ids = write_ids(prep_parts, vocabulary_file, out_dir, corpus_tokens, pool)
                    if ids != vocab_tokens:
                        raise AssertionError(f"{ids} ids written for {vocab_tokens} tokens of vocabulary words")
                    vocab_settings = {key: phrase_figures[key] for key in PHRASE_SETTINGS if key in phrase_figures}
                    write_vocab(out_dir / VOCAB_IN_IDS.name, words, counts, min_count=cfg.min_count,
                                max_vocab=cfg.max_vocab, corpus_tokens=corpus_tokens, vocab_tokens=vocab_tokens,
                                **analysis_figures, **vocab_settings)
                    link_vocab_into_ids(data_dir)
        finally:
            read_vocabulary_file.cache_clear()
    elapsed = max(1e-9, time.perf_counter() - report.started)
    return report.finish(documents=documents, empty_documents_dropped=input_documents - documents,
                         corpus_tokens=corpus_tokens, vocab_size=len(words), vocab_tokens=vocab_tokens,
                         tokens_per_s=round(corpus_tokens / elapsed), **spill_figures, **analysis_figures,
                         **phrase_figures)


if __name__ == "__main__":
    run(main)
