# The README's commands. Each one installs what it needs into .venv first.
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?= algorithms=simko verifiers=math

.PHONY: install install-dev run test test-unit lint

# Stamps: install again only when the project's requirements (or the installer) changed.
$(VENV)/.installed-cpu: pyproject.toml scripts/bootstrap.sh
	RLVR_VENV=$(VENV) bash scripts/bootstrap.sh cpu
	touch $@

$(VENV)/.installed-cpu-dev: pyproject.toml scripts/bootstrap.sh
	RLVR_VENV=$(VENV) bash scripts/bootstrap.sh cpu,dev
	touch $@ $(VENV)/.installed-cpu

install: $(VENV)/.installed-cpu

install-dev: $(VENV)/.installed-cpu-dev

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
