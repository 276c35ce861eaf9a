# The commands of the README:
#   make demo   -> every stage on the shipped Taiga sample (sample/taiga_ud.txt) into data-demo/, offline, then the
#     neighbours of a few words (drawn on data-demo/model/map.png) and the scores on the shipped Russian sets
#     (sample/eval/), added to the model card data-demo/model/README.md
#   make run [DATASET=corpus.parquet] [EPOCHS=5]   -> the whole pipeline on the Taiga corpus (a Hugging Face
#     dataset; DATASET also takes local .txt/.jsonl/.parquet files), set-up included
#     (EPOCHS also sets pairs_dataset.py --draws: every epoch trains on its own draw of the pairs)
#     (LEMMATIZE=upos by default: convert_to_int.py --lemmatize; none for words as they are)
#   make run ROLLING=1   -> the same with two draws on disk at once: pairs_dataset.py writes draw 0 only (its disk
#     plan counting two draws), train.py --rolling-draws writes each next draw while an epoch trains
#   make test                                                              -> the test suite, set-up included
#   make gpu-check [GPU_CHECK_ARGS=--epochs 5]   -> text8 through the pipeline on a CUDA GPU: pairs/s, share of the
#     bandwidth bound, peak GPU memory, scores (gpu_check.py; the python of .venv if there is one, else python3)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET ?= 0x7o/taiga
DATA_DIR ?= data
EPOCHS ?= 5
# Taiga is Russian: lemma_UPOS keys (москва_PROPN) scored best on the Russian sets (bench/RESULTS.md, issue 21);
# LEMMATIZE=none keeps the words as they are (any other language, or to compare)
LEMMATIZE ?= upos
ROLLING ?=
TRAIN_ARGS ?=
GPU_CHECK_ARGS ?=
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
DEMO_DIR ?= data-demo
DEMO_WORDS ?= день время человек россии

.PHONY: setup setup-dev run demo test clean gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(BIN)/python prep.py --dataset "$(DATASET)" --data-dir $(DATA_DIR)
	$(BIN)/python convert_to_int.py --data-dir $(DATA_DIR) --lemmatize $(LEMMATIZE)
ifeq ($(ROLLING),1)
	rm -rf $(DATA_DIR)/pairs
	$(BIN)/python pairs_dataset.py --data-dir $(DATA_DIR) --draws $(EPOCHS) --only-draws 0 --plan-draws 2
	$(BIN)/python unigram_table.py --data-dir $(DATA_DIR)
	$(BIN)/python train.py --data-dir $(DATA_DIR) --epochs $(EPOCHS) --rolling-draws $(TRAIN_ARGS)
else
	$(BIN)/python pairs_dataset.py --data-dir $(DATA_DIR) --draws $(EPOCHS)
	$(BIN)/python unigram_table.py --data-dir $(DATA_DIR)
	$(BIN)/python train.py --data-dir $(DATA_DIR) --epochs $(EPOCHS) $(TRAIN_ARGS)
endif

# Settings for ~60K tokens: words seen 3 times, sub-sampling for a small corpus (1e-3), the small-corpus window (2, docs/training.md), a small
# model, more epochs over 5 draws. The scores of so small a corpus only show that every stage ran.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/python prep.py --dataset sample/taiga_ud.txt --data-dir $(DEMO_DIR)
	$(BIN)/python convert_to_int.py --data-dir $(DEMO_DIR) --min-count 3
	$(BIN)/python pairs_dataset.py --data-dir $(DEMO_DIR) --draws 5 --sample 1e-3 --window 2
	$(BIN)/python unigram_table.py --data-dir $(DEMO_DIR)
	$(BIN)/python train.py --data-dir $(DEMO_DIR) --epochs 30 --dim 50 --neighbour-words
	$(BIN)/python evaluate.py --data-dir $(DEMO_DIR) --neighbors $(DEMO_WORDS) --k 8 \
		--map $(DEMO_DIR)/model/map.png

test: setup-dev
	$(BIN)/python -m pytest -q -rs tests bench

# No set-up: a GPU machine may have no network; gpu_check.py needs torch, numpy, pyarrow, numba, tqdm.
gpu-check:
	$(GPU_PYTHON) gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(DATA_DIR) $(DEMO_DIR)
