# The README's two commands live here. `make test` builds everything it needs from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck layers pytest demo clean venv system-deps

test: system-deps $(STAMP) lint typecheck layers pytest

system-deps:
	@bash hack/ensure-system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy operator/rollwise

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -n 2

demo:
	@echo "The demo needs the Rollout runtime (kopf handlers, routers, analysis), which arrives"
	@echo "with the 'Rollout end to end' work. Today: 'python -m hack.lab up' starts the lab."
	@exit 1

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
