# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv and installs the project.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := demo_data

.PHONY: demo test lint install

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m data_prep.demo --out $(DEMO)/audio
	$(PY) -m data_prep $(DEMO)/audio/manifest.csv --out $(DEMO)/shards
	$(PY) -m sharding verify $(DEMO)/shards
	$(PY) -m sharding inspect $(DEMO)/shards
	$(PY) -m sharding stream $(DEMO)/shards --batches 3 --batch-size 8

test: $(VENV)/.installed
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
