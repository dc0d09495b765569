# evoforge: the index of everything a person can run.
#
#   make evolve TASK=data_curation      run an evolution (Docker sandboxes, offline researcher unless an LLM is configured)
#   make test                           lint + the whole test suite against a real Docker engine
#
# Every target sets up what it needs; a second run on a ready machine takes seconds.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EVOLVE := $(VENV)/bin/evolve
STAMP := .evoforge/stamps

TASK ?= data_curation
ITER ?=
LLM ?= offline
SANDBOX ?= docker
RUN ?=
CAND ?=
PYTEST_ARGS ?=

.PHONY: help setup venv docker-engine host-deps images evolve test lint bench bench-gpu reproduce report doctor clean clean-store

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

setup: venv docker-engine images ## virtualenv + package, Docker engine, sandbox images

venv: $(STAMP)/venv ## the .venv with evoforge and its dev extra

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); bash scripts/host-deps.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	set -o pipefail; $(PY) -m pip install --quiet -e '.[dev]' 2>&1 | { grep -v '^WARNING: Location' || true; }
	@touch $@

docker-engine: ## start (or install and start) the Docker engine when none answers
	@bash scripts/docker-engine.sh

host-deps:
	@bash scripts/host-deps.sh

images: venv docker-engine host-deps ## build the sandbox images (content-hashed; only what changed)
	$(PY) -m orchestrator.sandbox.images build

evolve: setup ## run an evolution: TASK=... [ITER=N] [LLM=offline|MODEL] [SANDBOX=docker|process]
	$(EVOLVE) run $(TASK) --sandbox $(SANDBOX) --llm $(LLM) $(if $(ITER),--iterations $(ITER),)

lint: venv ## ruff
	$(VENV)/bin/ruff check .

test: setup lint ## lint + every test, Docker-backed ones included (they fail, not skip, without an engine)
	$(VENV)/bin/pytest -q -ra $(PYTEST_ARGS)

BENCHES := store sandbox loop soak

bench: setup ## benchmarks on this machine (store, sandbox, loop, soak): each prints JSON figures
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

bench-gpu: venv ## the torch tasks at their GPU scale (on a CUDA machine; process sandbox)
	$(PY) bench/gpu_tasks.py --scale gpu

reproduce: setup ## re-run a candidate from its own image: CAND=<candidate id>
	@test -n "$(CAND)" || { echo "usage: make reproduce CAND=<candidate id>"; exit 2; }
	$(EVOLVE) reproduce $(CAND)

report: venv ## HTML report of a run: RUN=<run id>
	@test -n "$(RUN)" || { echo "usage: make report RUN=<run id>"; exit 2; }
	$(EVOLVE) report $(RUN)

doctor: venv ## what is missing and how to fix it
	$(EVOLVE) doctor

clean: ## remove the venv, caches and run outputs (the cognition store is kept: `make clean-store` removes it)
	rm -rf $(VENV) .pytest_cache .ruff_cache $(STAMP) .evoforge/runs .evoforge/wheelhouse .evoforge/build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-store: ## remove the cognition store (everything learned is lost)
	rm -rf .evoforge/cognition.lmdb
