# The two commands a new user needs: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system venv demo test test-fast lint format bench soak lock clean screenshots

setup: system venv

system:
	@bash scripts/setup-system.sh

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	@$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock
	@$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)
	@echo "[setup] virtual environment ready in $(VENV)"

demo: setup
	@$(BIN)/coldchain up

test: setup
	@$(BIN)/python -m pytest

screenshots: setup
	$(BIN)/python -m bench.screenshots

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark but the soak, which takes 13 minutes and has its own target.
bench: setup
	@for b in bench/*.py; do case $$b in */soak.py|*/_*) continue;; esac; \
	  echo "== $$b"; $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

# Issue 11's attack mix for 10 minutes; exit 1 if anything acknowledged was lost or duplicated.
soak: setup
	@$(BIN)/python -m bench.soak

# Re-pin every dependency (run after changing pyproject.toml).
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
