# Quick start:  make demo   (train R2 on moons, write figures)
#               make test   (the whole test suite, notebooks included)
# Each target sets itself up on a fresh machine: it creates .venv and installs
# requirements.txt and minflow (editable) the first time, and again whenever
# requirements.txt or pyproject.toml change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.minflow-installed
DEMO_OUT ?= runs/demo

.PHONY: demo test test-gpu gpu-check fast-test lint figures clean-venv

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minflow)" > /dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m minflow demo --dataset moons --steps 5000 --out $(DEMO_OUT) --json $(DEMO_OUT)/demo_moons.json
	@echo "Figures and results in $(DEMO_OUT)/"

test: $(STAMP)
	$(PY) -m pytest -q

test-gpu: $(STAMP)
	MINFLOW_BACKEND=cupy $(PY) -m pytest -q

# The whole GPU check (docs/gpu.md) with the Python at hand, no .venv: results in $OUT or ./gpu-out
gpu-check:
	PYTHON=$(PYTHON) bash tools/gpu_check.sh

fast-test: $(STAMP)
	$(PY) -m pytest -q -m "not lessons"

lint: $(STAMP)
	$(PY) -m ruff check minflow tests benchmarks

clean-venv:
	rm -rf $(VENV)
