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

# solve, simulate and learn on resource selection (about 15 s after install); the commands'
# own tables go to results/demo.log, experiments/demo.py prints what they found in plain words
demo: install
	@mkdir -p results
	$(BIN)/tmf solve experiments/resource-demo.yaml --force --quiet > results/demo.log
	$(BIN)/tmf simulate experiments/resource-demo.yaml --force --quiet >> results/demo.log
	$(BIN)/tmf train experiments/train-resource.yaml --force --quiet >> results/demo.log
	$(BIN)/python experiments/demo.py

# The paper's claims on our games (experiments/paper/, docs/report.md): results/paper/REPORT.md.
# Claim 3 needs `tmf train`; without it the report marks claim 3 not measurable.
paper: install
	TMF=$(BIN)/tmf sh experiments/paper/run.sh full results/paper

paper-quick: install
	TMF=$(BIN)/tmf sh experiments/paper/run.sh quick results/paper-quick

lint: install
	$(BIN)/ruff check tmfcli tests benchmarks
	$(BIN)/mypy tmfcli tests

test: lint
	$(BIN)/pytest -q -n 2

# property-based fuzzing of specs and policy tables for a few minutes (a short run is part of
# `make test`): every outcome must be a result or a one-line error, never a traceback
fuzz: install
	TMF_FUZZ_PROFILE=fuzz $(BIN)/pytest -q -n 2 tests/test_hardening.py -k fuzz

bench: install
	$(BIN)/python benchmarks/run.py $(ONLY)

# tmf train on resource selection and queueing (N = 1000, 2 rounds): a sweep of the 4 algorithms
# x B in {1, sqrt, all} x 5 seeds, two cells at a time (tmf-pg without its built-in yardstick:
# tmf-pg-exact runs as its own cell); then `tmf report` of both sweeps (docs/train.md).
# TRAIN_SEEDS=0 for a quick look; rerunning resumes, finished cells are kept.
TRAIN_SEEDS ?= 0,1,2,3,4
train-experiments: install
	for g in resource queue; do \
	  $(BIN)/tmf train experiments/train-$$g.yaml --set train.yardstick=false --jobs 2 \
	    --sweep train.algorithm=tmf-pg,tmf-pg-exact,mf-q,independent-pg \
	    --sweep population.batch=1,sqrt,all --sweep seed=$(TRAIN_SEEDS) \
	    --out results/train-$$g || exit 1; \
	done
	$(BIN)/tmf report results/train-resource results/train-queue --out results/train-report

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
