# The two commands of the README:
#   make run [DATASET=../shared/data/corpus/ru_corpus.parquet] [EPOCHS=5]   -> the whole pipeline, set-up included
#     (EPOCHS also sets pairs_dataset.py --draws: every epoch trains on its own draw of the pairs)
#   make run ROLLING=1   -> the same with two draws on disk at once: pairs_dataset.py writes draw 0 only (its disk
#     plan counting two draws), train.py --rolling-draws writes each next draw while an epoch trains
#   make test                                                              -> the test suite, set-up included
#   make gpu-check [GPU_CHECK_ARGS=--epochs 5]   -> text8 through the pipeline on a CUDA GPU: pairs/s, share of the
#     bandwidth bound, peak GPU memory, scores (bench/gpu_check.py; the python of .venv if there is one, else python3)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET ?= 0x7o/taiga
DATA_DIR ?= data
EPOCHS ?= 5
ROLLING ?=
TRAIN_ARGS ?=
GPU_CHECK_ARGS ?=
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

.PHONY: setup setup-dev run test bench clean gpu-check

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
	$(BIN)/python convert_to_int.py --data-dir $(DATA_DIR)
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

test: setup-dev
	$(BIN)/python -m pytest -q -rs tests

# No set-up: a GPU machine may have no network; bench/gpu_check.py needs torch, numpy, pyarrow, numba, tqdm.
gpu-check:
	$(GPU_PYTHON) bench/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(DATA_DIR)
