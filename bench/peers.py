"""Us against gensim (or word2vec.c) on the same corpus and settings, in one run; prints one table with ratios.

    .venv/bin/python bench/peers.py --corpus text8 --epochs 1
    .venv/bin/python bench/peers.py --corpus ru --epochs 5
    .venv/bin/python bench/peers.py --corpus text8 --epochs 1 --peer word2vec.c   # after: .venv/bin/pip install word2vec
    .venv/bin/python bench/peers.py --corpus text8 --epochs 1 --model cbow [--hs]  # CBOW: gensim sg=0, ours --model cbow
    .venv/bin/python bench/peers.py --corpus ru --epochs 5 --lemmatize upos --drop-pos  # lemmas_UPOS, no function words
    .venv/bin/python bench/peers.py --corpus ru --epochs 5 --lemmatize upos --phrases 2   # + word2phrase joins

With --lemmatize lemma|upos, --drop-pos or --phrases N our side runs first (convert_to_int.py with those flags) and gensim
then trains on the same preprocessed text: our id streams written back as words, one document per row. The
Russian scores then include ru_simlex965_tagged, and plain pairs are mapped through the same analysis.

Settings for both: skip-gram (or CBOW with --model cbow), negative 5, window 5, min_count 5, sample 1e-4, 2 threads, alpha 0.025 (--alpha),
dim 100 (text8) or 300 (ru). Each side runs in its own processes so peak memory is measured per stage.
With --repeats N the sides alternate N times (peer, ours, peer, ours, ...) and the table shows medians: the
shared 2-core machine has slow spells that halve a memory-bound loop's speed for tens of seconds (measured: the
same training batches at 3.9M and 1.6M pairs/s minutes apart), so one run of each side can mislead.
Times: "total s" is, for ours, the wall time of every stage's process (start, imports, JIT, writing vectors and
checkpoints included) and, for the peer, its reading + vocabulary + training alone; "whole run s" counts the peer
as ours is counted, its process from launch to exit (interpreter, `import gensim`, saving vectors.txt included):
the like-for-like figure for "the whole pipeline".
Results are appended to bench/work/results.jsonl; bench/RESULTS.md holds the ones we publish.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from benchlib import PYTHON, ROOT, RU_CORPUS, SHARED, WORK, script_command
from benchlib import machine_line as machine

CORPORA = {
    "text8": {"dim": 100, "analogies": ["eval_en/questions-words.txt"],
              "similarity": ["eval_en/wordsim353.tsv", "eval_en/simlex999.txt"]},
    "ru": {"dim": 300, "analogies": [],
           "similarity": ["eval/ru_simlex965.tsv", "eval/hj.csv", "eval/ru_simlex965_tagged.tsv"]},
}
# Our side's choices beyond the shared settings (--kernel, --order text, --init-range); empty: the scripts' defaults.
OURS = {"kernel": "", "order": "", "init_range": "", "micro_batch": ""}
# convert_to_int.py's --lemmatize, --drop-pos and phrase flags, for both sides (gensim reads our preprocessed
# text when set, so our joined tokens are single words there too).
PREPROCESS = {"lemmatize": "none", "drop_pos": False, "phrases": 0, "phrase_scoring": "word2phrase",
              "phrase_threshold": 0.0, "phrase_min_count": 5, "phrase_upos": []}
SETTINGS = {"window": 5, "negative": 5, "min_count": 5, "sample": 1e-4, "workers": 2, "alpha": 0.025, "seed": 1,
            "model": "sg"}

# Word characters that are not digits or underscores, hyphens only between them: what prep.py keeps.
WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def corpus_source(corpus: str) -> Path:
    """The file our prep.py reads (text8 unpacked to one line of text; the Russian parquet as it is)."""
    if corpus == "ru":
        return RU_CORPUS
    target = WORK / "text8.txt"
    if not target.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(SHARED / "text8.zip") as archive:
            target.write_bytes(archive.read("text8"))
    return target


def gensim_side(corpus: str, epochs: int, dim: int, hs: bool, out: Path) -> dict:
    """Runs inside its own process: read + clean, vocabulary, training, save; times and peak memory."""
    import resource

    from gensim.models import Word2Vec
    from gensim.models.word2vec import Text8Corpus

    figures = {}
    started = time.perf_counter()
    if preprocessed():
        sentences = our_preprocessed_text(out.parent / "ours" / "data")
    elif corpus == "text8":
        sentences = list(Text8Corpus(str(corpus_source(corpus))))  # 10,000-word sentences, as gensim's docs do
    else:
        import pyarrow.parquet as pq
        texts = pq.read_table(corpus_source(corpus), columns=["text"]).column("text").to_pylist()
        sentences = [tokens for tokens in (WORD.findall(text.lower()) for text in texts if text) if tokens]
    figures["read_s"] = time.perf_counter() - started
    # cbow: gensim's sg=0 with its default cbow_mean=1 (the mean of the context vectors, as ours and word2vec.c)
    model = Word2Vec(vector_size=dim, sg=int(SETTINGS["model"] == "sg"), hs=int(hs), negative=0 if hs else SETTINGS["negative"],
                     window=SETTINGS["window"], min_count=SETTINGS["min_count"], sample=SETTINGS["sample"],
                     workers=SETTINGS["workers"], alpha=SETTINGS["alpha"], seed=SETTINGS["seed"])
    started = time.perf_counter()
    model.build_vocab(sentences)
    figures["vocab_s"] = time.perf_counter() - started
    started = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
    figures["train_s"] = time.perf_counter() - started
    figures["corpus_words"] = int(model.corpus_total_words)
    figures["vocab_size"] = len(model.wv)
    figures["words_per_s"] = figures["corpus_words"] * epochs / figures["train_s"]
    figures["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    model.wv.save_word2vec_format(str(out / "vectors.txt"))
    figures["save_s"] = time.perf_counter() - started
    figures["total_s"] = figures["read_s"] + figures["vocab_s"] + figures["train_s"]
    return figures


def preprocessed() -> bool:
    return PREPROCESS["lemmatize"] != "none" or PREPROCESS["drop_pos"] or PREPROCESS["phrases"] > 0


def phrase_flags() -> list[str]:
    """convert_to_int.py's phrase flags for PREPROCESS (none when --phrases is 0)."""
    if not PREPROCESS["phrases"]:
        return []
    return ["--phrases", str(PREPROCESS["phrases"]), "--phrase-scoring", PREPROCESS["phrase_scoring"],
            "--phrase-threshold", str(PREPROCESS["phrase_threshold"]),
            "--phrase-min-count", str(PREPROCESS["phrase_min_count"])] + \
        (["--phrase-upos", *PREPROCESS["phrase_upos"]] if PREPROCESS["phrase_upos"] else [])


def our_preprocessed_text(data_dir: Path) -> list[list[str]]:
    """Our side's id streams as words, one list per document: the text our training saw before sub-sampling
    (forms outside the vocabulary and dropped parts of speech already removed, as gensim would remove them)."""
    import numpy as np
    import pyarrow.parquet as pq

    from w2v.common import load_vocab

    words, _ = load_vocab(data_dir)
    vocabulary = np.array(words, dtype=object)
    documents = []
    for part in sorted((data_dir / "ids").glob("part-*.parquet")):
        for ids in pq.read_table(part).column("ids").to_numpy(zero_copy_only=False):
            documents.append(vocabulary[ids].tolist())
    return documents


def word2vec_c_side(corpus: str, epochs: int, dim: int, hs: bool, out: Path) -> dict:
    """Runs inside its own process: Mikolov's word2vec.c (PyPI `word2vec` compiles it with its own flags)."""
    import resource
    import shutil

    binary = shutil.which("word2vec", path=str(Path(PYTHON).parent))
    if binary is None:
        sys.exit(f"word2vec.c is not installed: {Path(PYTHON).parent / 'pip'} install word2vec==0.11.1 "
                 f"(it compiles word2vec.c with -Ofast -march=native; needs gcc)")
    figures = {}
    started = time.perf_counter()
    if corpus == "text8":
        text = corpus_source(corpus)  # one line of clean lowercase words: word2vec.c reads it as it is
        figures["read_s"] = 0.0
        corpus_words = len(text.read_bytes().split())
    else:  # the same tokens as gensim's side, one document per line (word2vec.c ends a sentence at a newline)
        import pyarrow.parquet as pq
        texts = pq.read_table(corpus_source(corpus), columns=["text"]).column("text").to_pylist()
        documents = [tokens for tokens in (WORD.findall(text.lower()) for text in texts if text) if tokens]
        text = out / "corpus.txt"
        text.write_text("\n".join(" ".join(tokens) for tokens in documents) + "\n", encoding="utf-8")
        corpus_words = sum(len(tokens) for tokens in documents)
        figures["read_s"] = time.perf_counter() - started
    common = ["-train", str(text), "-min-count", str(SETTINGS["min_count"]), "-threads", str(SETTINGS["workers"])]
    started = time.perf_counter()
    # Without -output word2vec.c stops after counting: the vocabulary pass alone, timed apart.
    subprocess.run([binary, *common, "-save-vocab", str(out / "vocab.txt")], check=True, capture_output=True)
    figures["vocab_s"] = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([binary, *common, "-output", str(out / "vectors.txt"), "-cbow", str(int(SETTINGS["model"] == "cbow")), "-size", str(dim),
                    "-window", str(SETTINGS["window"]), "-sample", str(SETTINGS["sample"]),
                    "-hs", str(int(hs)), "-negative", "0" if hs else str(SETTINGS["negative"]),
                    "-iter", str(epochs), "-alpha", str(SETTINGS["alpha"]), "-binary", "0"],
                   check=True, capture_output=True)
    whole_run_s = time.perf_counter() - started
    figures["train_s"] = whole_run_s - figures["vocab_s"]  # the training run counts the vocabulary again first
    figures["corpus_words"] = corpus_words
    figures["vocab_size"] = sum(1 for _ in open(out / "vocab.txt", encoding="utf-8", errors="replace"))
    figures["words_per_s"] = corpus_words * epochs / figures["train_s"]
    figures["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures["total_s"] = figures["read_s"] + figures["vocab_s"] + figures["train_s"]
    return figures


PEERS = {"gensim": gensim_side, "word2vec.c": word2vec_c_side}


def our_side(corpus: str, epochs: int, dim: int, hs: bool, out: Path) -> dict:
    """Runs the seven stages as a user would, each in its own process; figures from data/stats/*.json."""
    data_dir = out / "data"
    stages = [
        ["prep.py", "--dataset", str(corpus_source(corpus))],
        ["convert_to_int.py", "--min-count", str(SETTINGS["min_count"])]
        + (["--lemmatize", PREPROCESS["lemmatize"]] if PREPROCESS["lemmatize"] != "none" else [])
        + (["--drop-pos"] if PREPROCESS["drop_pos"] else []) + phrase_flags(),
        ["pairs_dataset.py", "--window", str(SETTINGS["window"]), "--sample", str(SETTINGS["sample"]),
         "--draws", str(epochs), "--seed", str(SETTINGS["seed"])]
        + (["--no-shuffle"] if OURS["order"] == "text" else []),  # a fresh draw of windows and sub-sampling per epoch, as gensim does
        *([] if hs else [["unigram_table.py"]]),  # hierarchical softmax draws no negatives: no table
        ["train.py", "--epochs", str(epochs), "--dim", str(dim), "--negatives", str(SETTINGS["negative"]),
         "--threads", str(SETTINGS["workers"]), "--lr", str(SETTINGS["alpha"]), "--device", "cpu",
         "--seed", str(SETTINGS["seed"]), "--model", SETTINGS["model"]]
        + (["--loss", "hs"] if hs else []) + (["--kernel", OURS["kernel"]] if OURS["kernel"] else [])
        + (["--init-range", OURS["init_range"]] if OURS["init_range"] else [])
        + (["--micro-batch", OURS["micro_batch"]] if OURS["micro_batch"] else []),
    ]
    figures = {}
    for script, *arguments in stages:
        started = time.perf_counter()
        stage = script.removesuffix(".py")
        subprocess.run(script_command(stage, data_dir, *arguments), check=True, cwd=ROOT)
        stats = json.loads((data_dir / "stats" / f"{stage}.json").read_text())
        figures[f"{stage}_s"] = time.perf_counter() - started  # process wall time, imports included
        figures[f"{stage}_peak_memory_mb"] = stats["peak_memory_mb"]
        figures[f"{stage}_stats"] = stats
    # Every stage's process wall time (imports and JIT included) counts in the total, as gensim's does.
    figures["total_s"] = sum(figures[f"{s[0].removesuffix('.py')}_s"] for s in stages)
    train = figures["train_stats"]
    figures["train_process_s"] = figures["train_s"]
    figures["train_s"] = train["train_s"]
    # Raw corpus words (before min_count), gensim's corpus_total_words: the same numerator for both sides.
    figures["corpus_words"] = figures["prep_stats"]["tokens"]
    figures["words_per_s"] = figures["corpus_words"] * epochs / figures["train_s"]
    figures["vocab_size"] = train["vocab_size"]
    figures["peak_memory_mb"] = max(v for k, v in figures.items() if k.endswith("_peak_memory_mb"))
    (out / "vectors.txt").unlink(missing_ok=True)
    (out / "vectors.txt").symlink_to(data_dir / "model" / "vectors.txt")
    return figures


def evaluate(corpus: str, vectors: Path) -> dict:
    from evaluate import evaluate_analogies, evaluate_similarity
    from w2v.vectors_io import load_vectors

    words, matrix = load_vectors(vectors)
    scores = {}
    lemmatize = PREPROCESS["lemmatize"]  # the plain sets' words mapped to the vocabulary's lemmas (or lemma_UPOS)
    for name in CORPORA[corpus]["analogies"]:
        result = evaluate_analogies(words, matrix, SHARED / name, lemmatize=lemmatize)
        total = result["total"]
        scores[Path(name).stem] = {"accuracy": total["accuracy"],
                                   "support": f"{total['scored']}/{total['scored'] + total['skipped']}"}
    for name in CORPORA[corpus]["similarity"]:
        result = evaluate_similarity(words, matrix, SHARED / name, lemmatize=lemmatize)
        scores[Path(name).stem] = {"spearman": result["spearman"], "support": result["support"]}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="text8")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hs", action="store_true", help="hierarchical softmax instead of negative sampling")
    parser.add_argument("--peer", choices=sorted(PEERS), default="gensim", help="the implementation we run against")
    parser.add_argument("--side", choices=["both", "peer", "ours"], default="both")
    parser.add_argument("--seed", type=int, default=1, help="seed of both sides (run-to-run spread: try several)")
    parser.add_argument("--alpha", type=float, default=SETTINGS["alpha"],
                        help="starting learning rate of both sides (gensim alpha, our --lr), decayed linearly")
    parser.add_argument("--model", choices=["sg", "cbow"], default="sg",
                        help="skip-gram or CBOW on both sides (gensim sg=0, word2vec.c -cbow 1, our --model cbow)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each side, alternated; the table shows medians, the spread of times below it")
    parser.add_argument("--dim", type=int, default=0, help="embedding size of both sides (0: the corpus's, 100 or 300)")
    parser.add_argument("--kernel", default="", help="our train.py --kernel (empty: its default)")
    parser.add_argument("--order", choices=["", "text"], default="",
                        help="our pairs' order: empty, pairs_dataset.py's default (windows shuffled); text: "
                             "--no-shuffle (text order)")
    parser.add_argument("--init-range", default="", help="our train.py --init-range (empty: its default)")
    parser.add_argument("--lemmatize", choices=["none", "lemma", "upos"], default="none",
                        help="convert_to_int.py --lemmatize; gensim trains on our preprocessed text when set")
    parser.add_argument("--drop-pos", action="store_true",
                        help="convert_to_int.py --drop-pos (function words removed); as --lemmatize for gensim")
    parser.add_argument("--phrases", type=int, default=0,
                        help="convert_to_int.py --phrases N (joining passes); gensim trains on our joined text")
    parser.add_argument("--phrase-scoring", choices=["word2phrase", "npmi"], default="word2phrase")
    parser.add_argument("--phrase-threshold", type=float, default=0.0, help="0: the scoring's default")
    parser.add_argument("--phrase-min-count", type=int, default=5)
    parser.add_argument("--phrase-upos", nargs="*", default=[], help="e.g. PROPN: proper-name sequences only")
    parser.add_argument("--micro-batch", default="",
                        help="our train.py --micro-batch (torch kernel: windows that read the tables before any "
                             "writes, as a GPU's windows in flight; empty: its default)")
    parser.add_argument("--report", action="store_true",
                        help="print every run kept in bench/work/results.jsonl as Markdown tables, run nothing")
    parser.add_argument("--internal-peer", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        for line in (WORK / "results.jsonl").read_text().splitlines():
            print_table(json.loads(line), markdown=True)
        return
    dim = args.dim or CORPORA[args.corpus]["dim"]
    SETTINGS["seed"] = args.seed
    OURS["kernel"], OURS["order"], OURS["init_range"] = args.kernel, args.order, args.init_range
    OURS["micro_batch"] = args.micro_batch
    SETTINGS["alpha"] = args.alpha
    SETTINGS["model"] = args.model
    PREPROCESS["lemmatize"], PREPROCESS["drop_pos"] = args.lemmatize, args.drop_pos
    PREPROCESS.update(phrases=args.phrases, phrase_scoring=args.phrase_scoring, phrase_threshold=args.phrase_threshold,
                      phrase_min_count=args.phrase_min_count, phrase_upos=args.phrase_upos)
    if preprocessed() and args.peer != "gensim":
        parser.error("--lemmatize, --drop-pos and --phrases are run against gensim only")

    if args.internal_peer:
        out = Path(args.internal_peer)
        print(json.dumps(PEERS[args.peer](args.corpus, args.epochs, dim, args.hs, out)))
        return
    if not SHARED.exists():
        print(f"skipped: {SHARED} is absent (the benchmark needs the shared corpora)")
        return

    tag = (f"{args.corpus}-e{args.epochs}{'-cbow' if args.model == 'cbow' else ''}{'-hs' if args.hs else ''}"
           f"{f'-dim{dim}' if args.dim else ''}"
           f"{f'-{args.kernel}' if args.kernel else ''}{f'-{args.order}' if args.order else ''}"
           f"{f'-init{args.init_range}' if args.init_range else ''}"
           f"{f'-micro{args.micro_batch}' if args.micro_batch else ''}"
           f"{f'-seed{args.seed}' if args.seed != 1 else ''}"
           f"{f'-alpha{args.alpha:g}' if args.alpha != 0.025 else ''}{'' if args.peer == 'gensim' else '-' + args.peer}"
           f"{f'-{args.lemmatize}' if args.lemmatize != 'none' else ''}{'-droppos' if args.drop_pos else ''}"
           f"{f'-phrases{args.phrases}-{args.phrase_scoring}' if args.phrases else ''}"
           f"{f'-t{args.phrase_threshold:g}' if args.phrases and args.phrase_threshold else ''}"
           f"{f'-mc{args.phrase_min_count}' if args.phrases and args.phrase_min_count != 5 else ''}"
           f"{'-' + '-'.join(args.phrase_upos) if args.phrases and args.phrase_upos else ''}")
    results = {"corpus": args.corpus, "epochs": args.epochs, "dim": dim, "hs": args.hs, "machine": machine(),
               "kernel": args.kernel or "default", "order": args.order or "default",
               "init_range": args.init_range or "default", "micro_batch": args.micro_batch or "default",
               "date": time.strftime("%Y-%m-%d"), "settings": SETTINGS, "repeats": args.repeats, "peer": args.peer,
               "lemmatize": args.lemmatize, "drop_pos": args.drop_pos, "preprocess": dict(PREPROCESS)}
    runs: dict[str, list[dict]] = {args.peer: [], "ours": []}
    # The two sides alternate, so a slow spell of the shared machine falls on both rather than on one. With
    # preprocessing our side goes first: the peer trains on the text it wrote.
    sides = ("ours", "peer") if preprocessed() else ("peer", "ours")
    for side in [side for _ in range(args.repeats) for side in sides]:
        if side == "peer" and args.side in ("both", "peer"):
            out = WORK / tag / args.peer
            out.mkdir(parents=True, exist_ok=True)
            # Its own process, so that its peak memory is its own.
            started = time.perf_counter()
            done = subprocess.run([PYTHON, __file__, "--corpus", args.corpus, "--epochs", str(args.epochs),
                                   *(["--hs"] if args.hs else []), "--seed", str(args.seed), "--peer", args.peer,
                                   "--alpha", str(args.alpha), "--model", args.model, "--dim", str(dim),
                                   "--lemmatize", args.lemmatize, *(["--drop-pos"] if args.drop_pos else []),
                                   "--phrases", str(args.phrases),
                                   "--internal-peer", str(out)],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"{args.peer} failed")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            # The peer's process from launch to exit (interpreter, imports, reading, vocabulary, training, saving
            # vectors.txt), as our total counts each stage's process: the like-for-like whole run.
            figures["process_s"] = time.perf_counter() - started
            figures["scores"] = evaluate(args.corpus, out / "vectors.txt")
            runs[args.peer].append(figures)
        if side == "ours" and args.side in ("both", "ours"):
            out = WORK / tag / "ours"
            out.mkdir(parents=True, exist_ok=True)
            figures = our_side(args.corpus, args.epochs, dim, args.hs, out)
            figures["scores"] = evaluate(args.corpus, out / "vectors.txt")
            runs["ours"].append(figures)
    for side, side_runs in runs.items():
        if side_runs:
            results[side] = median_figures(side_runs)
            results[side]["runs"] = side_runs
    with open(WORK / "results.jsonl", "a") as handle:
        handle.write(json.dumps(results, default=str) + "\n")
    print_table(results)


def median_figures(runs: list[dict]) -> dict:
    """Each number the median over the runs (nested dicts too); anything else as the first run has it."""
    merged = {}
    for key, first in runs[0].items():
        values = [run.get(key) for run in runs]
        if isinstance(first, dict):
            merged[key] = median_figures([v for v in values if isinstance(v, dict)])
        elif isinstance(first, (int, float)) and not isinstance(first, bool) and \
                all(isinstance(v, (int, float)) for v in values):
            merged[key] = statistics.median(values)
        else:
            merged[key] = first
    return merged


def print_table(results: dict, markdown: bool = False) -> None:
    """The side-by-side table; markdown=True prints it as a Markdown table (bench/RESULTS.md takes it as it is)."""
    peer = results.get("peer", "gensim")  # runs from before --peer were all against gensim
    peer_figures, ours = results.get(peer, {}), results.get("ours", {})
    print(f"\n{results['corpus']}, {results['settings'].get('model', 'sg')}, {results['epochs']} epoch(s), "
          f"dim {results['dim']}, "
          f"{'hs' if results['hs'] else 'negative 5'}, seed {results['settings'].get('seed', 1)}, "
          f"alpha {results['settings'].get('alpha', 0.025):g}, "
          f"{results.get('repeats', 1)} run(s) of each side (medians); {results['machine']}; {results['date']}\n")
    if markdown:
        print(f"| figure | {peer} | ours | ours/{peer} |\n|---|---:|---:|---:|")
    else:
        print(f"{'figure':<36}{peer:>14}{'ours':>14}{'ours/' + peer:>17}")

    def row(name: str, ours_value, peer_value, fmt: str = "{:.1f}") -> None:
        ratio = (ours_value / peer_value) if (isinstance(ours_value, (int, float)) and
                                                isinstance(peer_value, (int, float)) and peer_value) else None
        show = lambda v: fmt.format(v) if isinstance(v, (int, float)) else ("-" if v is None else str(v))
        shown_ratio = "" if ratio is None else f"{ratio:.2f}"
        if markdown:
            print(f"| {name} | {show(peer_value)} | {show(ours_value)} | {shown_ratio} |")
        else:
            print(f"{name:<36}{show(peer_value):>14}{show(ours_value):>14}{shown_ratio:>17}")

    row("read+clean s (prep)", ours.get("prep_s"), peer_figures.get("read_s"))
    row("vocabulary s (convert)", ours.get("convert_to_int_s"), peer_figures.get("vocab_s"))
    row("pairs s", ours.get("pairs_dataset_s"), None)
    row("unigram table s", ours.get("unigram_table_s"), None)
    row("training s", ours.get("train_s"), peer_figures.get("train_s"))
    row(f"total s ({peer}: read+vocab+train)", ours.get("total_s"), peer_figures.get("total_s"))
    row("whole run s (processes)", ours.get("total_s"), peer_figures.get("process_s"))
    row("training words/s", ours.get("words_per_s"), peer_figures.get("words_per_s"), "{:,.0f}")
    row("peak memory MB", ours.get("peak_memory_mb"), peer_figures.get("peak_memory_mb"), "{:,.0f}")
    row("vocabulary", ours.get("vocab_size"), peer_figures.get("vocab_size"), "{:,.0f}")
    for name in (peer_figures.get("scores") or ours.get("scores") or {}):
        mine, theirs = ours.get("scores", {}).get(name, {}), peer_figures.get("scores", {}).get(name, {})
        key = "accuracy" if "accuracy" in (mine or theirs) else "spearman"
        row(f"{name} {key}", mine.get(key), theirs.get(key), "{:.4f}")
        row(f"{name} support", mine.get("support"), theirs.get("support"), "{}")
    for side, figures in ((peer, peer_figures), ("ours", ours)):
        if len(figures.get("runs", [])) > 1:
            times = ", ".join(f"{run['train_s']:.1f}" for run in figures["runs"])
            totals = ", ".join(f"{run['total_s']:.1f}" for run in figures["runs"])
            whole = ", ".join(f"{run.get('process_s', run['total_s']):.1f}" for run in figures["runs"])
            print(f"{'' if not markdown else chr(10)}{side} runs: training s {times}; total s {totals}; "
                  f"whole run s {whole}")


if __name__ == "__main__":
    main()
