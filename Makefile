# tmf: every set-up step lives here (CI runs `make test` on a clean clone).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench fuzz clean paper paper-quick train-experiments

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tmf solve experiments/resource-demo.yaml --force
	$(BIN)/tmf simulate experiments/resource-demo.yaml --force   # reuses the solve above

# The paper's claims on our games (experiments/paper/, docs/report.md): results/paper/REPORT.md.
# Claim 3 needs `tmf train`; without it the report marks claim 3 not measurable.
paper: install
	TMF=$(BIN)/tmf sh experiments/paper/run.sh full results/paper

paper-quick: install
	TMF=$(BIN)/tmf sh experiments/paper/run.sh quick results/paper-quick

lint: install
	$(BIN)/ruff check tmfcli tests benchmarks
	$(BIN)/mypy tmfcli

test: lint
	$(BIN)/pytest -q -n 2

# property-based fuzzing of specs and policy tables for a few minutes (a short run is part of
# `make test`): every outcome must be a result or a one-line error, never a traceback
fuzz: install
	TMF_FUZZ_PROFILE=fuzz $(BIN)/pytest -q -n 2 tests/test_hardening.py -k fuzz

bench: install
	$(BIN)/python benchmarks/run.py $(ONLY)

# tmf train on resource selection and queueing (N = 1000, 2 rounds): B in {1, sqrt, all} x 5 seeds
# x 4 algorithms, two runs at a time (tmf-pg without its built-in yardstick: tmf-pg-exact runs on
# its own); then one table (docs/train.md). TRAIN_SEEDS=0 for a quick look.
TRAIN_SEEDS ?= 0 1 2 3 4
train-experiments: install
	@for g in resource queue; do for b in 1 sqrt all; do for s in $(TRAIN_SEEDS); do \
	  for a in tmf-pg tmf-pg-exact mf-q independent-pg; do \
	    echo "experiments/train-$$g.yaml --algorithm $$a --set population.batch=$$b --set seed=$$s --set train.yardstick=false --out results/train-$$g/$$a-B$$b-s$$s"; \
	done; done; done; done | xargs -P 2 -L 1 sh -c '$(BIN)/tmf train "$$@" > /dev/null' tmf
	$(BIN)/python -m tmfcli.learning.report results/train-resource results/train-queue

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
