# `make run` and `make test` work on a fresh machine with only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py demo

test: $(STAMP)
	$(PY) -m pytest

# Style, types and layering: ruff (lint + format), mypy (strict for agi/ami/flow/calls), import-linter contracts.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: $(STAMP)
	$(PY) main.py check

bench: $(STAMP)
	$(PY) bench/agi_bench.py
	$(PY) bench/ami_bench.py
	$(PY) bench/sim_bench.py
	$(PY) bench/storage_bench.py
	-$(PY) bench/console_bench.py  # needs chromium and chromium-driver; says so and goes on without them

clean:
	rm -rf $(VENV) build *.egg-info
