# The README's commands. Each one installs what it needs into .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?= algorithms=simko verifiers=math

.PHONY: install install-dev run test test-unit lint bench

install:
	RLVR_VENV=$(VENV) bash scripts/bootstrap.sh cpu

install-dev:
	RLVR_VENV=$(VENV) bash scripts/bootstrap.sh cpu,dev

run: install
	$(BIN)/rlvr run $(ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPY=$(BIN)/mypy bash scripts/typecheck.sh

test: install-dev
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

test-unit: install-dev
	$(BIN)/python -m pytest tests -q -m unit -p no:cacheprovider
