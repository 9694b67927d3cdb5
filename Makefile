# Two entry points for a fresh machine: `make demo` and `make test`. Each creates .venv from the lock file.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.9
UPGRADE ?=
DEMO := demo_data
PROBE := --data $(DEMO)/shards --task demo-tags --experiment demo-probes --epochs 10 --steps 32

.PHONY: demo test lint install lock gpu-wheels

# The locked set, hash-checked, then the project itself without dependencies, then a smoke check of both.
# DeepSpeed (dev extra) has only a source release: pip builds it in an isolated build environment (setuptools from
# the index, no torch there), so the wheel is pure Python with the locked requirements on any machine (its setup.py
# adds nvidia-ml-py, absent from the lock, when it sees a CUDA torch on a GPU: keep build isolation on). DS_BUILD_OPS=0
# keeps compiled ops out even where the environment asks for them; DeepSpeed JIT-builds those it needs (g++).
$(VENV)/.installed: $(LOCK) pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) check_install.py
	touch $@

install:
	rm -f $(VENV)/.installed
	$(MAKE) $(VENV)/.installed

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

# uv resolves the lock (all platforms, Python >= 3.10); it is only needed to update the lock, not to install.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# Re-resolve after editing pyproject.toml; keeps the pins that still fit. `make lock UPGRADE=--upgrade` takes the
# newest releases the ranges allow (then run `make test` before committing the new lock).
lock: $(UV)
	printf 'setuptools>=69\nwheel\n' | $(UV) pip compile pyproject.toml - --extra dev --universal \
		--python-version 3.10 --generate-hashes --custom-compile-command 'make lock' $(UPGRADE) -o $(LOCK)

# Wheels of what benchmarks/gpu_suite.py needs on the GPU machine beyond its image, into .whl/ (ignored by git; see
# docs/benchmarks.md, "GPU figures"). Needs the package index; DeepSpeed is built from its source release here.
# Then the project's own wheel (musicssl: the code imports its installed names), built from this checkout: rerun
# after changing code. build/ goes first: setuptools would put modules left there by an earlier build in the wheel.
gpu-wheels: $(VENV)/.installed
	$(PY) benchmarks/gpu_wheels.py
	rm -rf build
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation -w .whl .
