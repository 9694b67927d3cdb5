# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv and installs the project.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO := demo_data
PROBE := --data $(DEMO)/shards --task demo-tags --experiment demo-probes --epochs 10 --steps 32

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
	$(PY) train.py --preset demo --pretext contrastive --data $(DEMO)/shards
	$(PY) evaluate.py --backbone runs/demo/contrastive/backbone.safetensors $(PROBE)
	$(PY) evaluate.py --backbone runs/demo/contrastive/backbone.safetensors $(PROBE) --random-init
	$(PY) -m downstream.compare --experiment demo-probes --out $(DEMO)/comparison

test: $(VENV)/.installed
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
