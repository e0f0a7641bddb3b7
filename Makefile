# Quick start:  make demo   (train R2 on moons, write figures to runs/demo/)
#               make test   (the whole test suite, notebooks included)
# Each target sets itself up on a fresh machine: it creates .venv and installs
# requirements.txt and minflow (editable) the first time, and again whenever
# requirements.txt or pyproject.toml change; `make lint` also installs
# requirements-dev.txt. Commands write to runs/ (git-ignored); only
# `make figures` rewrites the committed figures/.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.minflow-installed
DEV_STAMP := $(VENV)/.minflow-dev-installed
DEMO_OUT ?= runs/demo
MINFLOW := $(PY) -m minflow

.PHONY: demo test test-gpu gpu-check fast-test lint figures lessons lesson clean-venv

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minflow)" > /dev/null
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

demo: $(STAMP)
	$(MINFLOW) demo --dataset moons --steps 5000 --out $(DEMO_OUT) --json $(DEMO_OUT)/demo_moons.json
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

lint: $(DEV_STAMP)
	$(PY) -m ruff check minflow tests benchmarks tools lessons
	$(PY) -m ruff format --check minflow tests benchmarks tools

# The README's figures and numbers, rewritten in figures/ (hours on 2 cores:
# figure3, digits and glow-ablation dominate). The lessons' figures come from
# the lessons themselves.
figures: $(STAMP)
	for dataset in gaussians8 checkerboard rings moons; do \
		$(MINFLOW) demo --dataset $$dataset --steps 5000 --out figures --json figures/demo_$$dataset.json || exit 1; \
	done
	$(MINFLOW) warp --dataset moons --out figures/warp_moons.gif
	$(MINFLOW) figure3 --steps 10000 --seeds 0 1 2 --json figures/figure3.json --figure figures/figure3_energy.png
	$(MINFLOW) digits --epochs 100 --json figures/d8_100.json --out figures --checkpoint runs/d8/d8.npz
	$(MINFLOW) tarflow --epochs 100 --batch-size 16 --lr 1.5e-3 --optimizer adamw --weight-decay 0.1 --schedule cosine \
		--warmup 2 --ema 0.9995 --json benchmarks/results/tarflow_recipe_adamw_b16.json --out figures
	$(PY) benchmarks/tarflow_noise.py --json benchmarks/results/tarflow_noise_20ep.json --figure figures/tarflow_noise.png --sigmas 0 0.1 0.3 0.6
	$(MINFLOW) glow-ablation --epochs 20 --json figures/glow_ablation.json --out figures
	$(MINFLOW) glow-ablation --epochs 20 --seed 1 --json figures/glow_ablation_seed1.json --out runs/glow-ablation-seed1
	$(MINFLOW) compare2d --steps 5000 --json figures/compare2d.json --out figures
	$(MINFLOW) compare2d --steps 5000 --seed 1 --json figures/compare2d_seed1.json --out runs/compare2d-seed1
	$(MAKE) lessons

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
