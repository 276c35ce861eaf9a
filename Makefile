# The two commands of the README:
#   make run [DATASET=../shared/data/corpus/ru_corpus.parquet] [EPOCHS=5]   -> the whole pipeline, set-up included
#     (EPOCHS also sets pairs_dataset.py --draws: every epoch trains on its own draw of the pairs)
#   make test                                                              -> the test suite, set-up included
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET ?= 0x7o/taiga
DATA_DIR ?= data
EPOCHS ?= 5
TRAIN_ARGS ?=

.PHONY: setup setup-dev run test bench clean

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
	$(BIN)/python pairs_dataset.py --data-dir $(DATA_DIR) --draws $(EPOCHS)
	$(BIN)/python unigram_table.py --data-dir $(DATA_DIR)
	$(BIN)/python train.py --data-dir $(DATA_DIR) --epochs $(EPOCHS) $(TRAIN_ARGS)

test: setup-dev
	$(BIN)/python -m pytest -q -rs tests

clean:
	rm -rf $(DATA_DIR)
