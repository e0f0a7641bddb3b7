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

.PHONY: demo test test-gpu fast-test lint figures lessons lesson clean-venv

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

fast-test: $(STAMP)
	$(PY) -m pytest -q -m "not lessons"

lint: $(STAMP)
	$(PY) -m ruff check minflow tests benchmarks tools lessons

# The lessons (lessons/NN_topic.py, paired with NN_topic.ipynb): run in full mode,
# storing outputs in the committed notebooks and figures in figures/.
# `make lesson N=03` runs one; add FAST=1 for a fast run into runs/ instead.
lessons: $(STAMP)
	$(PY) tools/run_lessons.py $(if $(FAST),--fast)

lesson: $(STAMP)
	@test -n "$(N)" || { echo "usage: make lesson N=03 [FAST=1]"; exit 2; }
	$(PY) tools/run_lessons.py $(N) $(if $(FAST),--fast)

clean-venv:
	rm -rf $(VENV)
