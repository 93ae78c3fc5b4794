# The README's two commands live here. `make test` builds everything it needs from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# MLflow (the lab's model registry) gets a virtualenv of its own: it is a separate server, and
# its dependency pins must not leak into the operator's environment.
MLFLOW_VERSION := 3.17.2
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed

.PHONY: test lint typecheck layers pytest demo clean venv system-deps demo-deps mutate

test: system-deps $(STAMP) $(MLFLOW_STAMP) cluster lint typecheck layers pytest

# What each README command needs from the system, installed only when missing
# (hack/ensure-system-deps.sh says which packages each needs).
system-deps:
	@bash hack/ensure-system-deps.sh test

demo-deps:
	@bash hack/ensure-system-deps.sh demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(MLFLOW_STAMP):
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/pip install --quiet 'mlflow==$(MLFLOW_VERSION)'
	touch $(MLFLOW_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy operator/rollwise
	$(BIN)/mypy hack

layers: $(STAMP)
	$(BIN)/lint-imports

# Tests that assert a measured time bound (a rollback's reaction time, a standby's takeover)
# run alone after the parallel suite, so the bound is measured without the suite's own load.
# Both runs are shuffled by pytest-randomly; each prints "Using --randomly-seed=N" in its header,
# and `pytest -p randomly --randomly-seed=N` replays that order (docs/testing.md).
pytest: $(STAMP)
	$(BIN)/pytest -p randomly -n 2 -m "not timing"
	$(BIN)/pytest -p randomly -m timing

# Mutation testing of the core and the runtime's pass skeleton (docs/testing.md). Not part of
# `make test`: a full run takes hours on two shared cores. MUTATE_ARGS passes options on:
#   make mutate MUTATE_ARGS="'rollwise.core.analysis.*'"   one module (mutmut name globs)
#   make mutate MUTATE_ARGS=--survivors                   only the survivors, after new tests
#   make mutate MUTATE_ARGS=--report                      the score table of the last runs
MUTATION_STAMP := $(VENV)/.mutation-installed
MUTATE_ARGS ?=

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,mutation]'
	touch $(MUTATION_STAMP)

mutate: $(MUTATION_STAMP)
	nice -n 19 $(BIN)/python -m hack.mutate $(MUTATE_ARGS)

demo: demo-deps $(STAMP) cluster
	$(BIN)/python -m hack.demo

clean:
	rm -rf $(VENV) $(MLFLOW_VENV) .mypy_cache .pytest_cache .ruff_cache .mutation

# The lab cluster's binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok), built from the pinned Go modules in hack/cluster/ once per machine into
# ~/.cache/rollwise/cluster (ROLLWISE_CLUSTER_CACHE overrides the place); a no-op when built.
# A cold build takes about 12-13 minutes on 2 cores and prints its progress; test and demo
# depend on it, so the README's two commands set everything up on a fresh machine.
.PHONY: cluster
cluster: $(STAMP)
	$(BIN)/python -m hack.cluster build
