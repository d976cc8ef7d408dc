# Every target sets up its own virtual environment from nothing (see the README).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean test-matrix

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required (set PYTHON=python3.11)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[web,services,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

# The whole suite, as CI runs it, on two worker processes (pytest-xdist); a plain `pytest`
# in the environment is the fast local run.
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --run-slow -n 2

# The peer measured beside the explorer (benchmarks/peer.py), in its own directory: never
# in the project's environment, where its pytest plugin would load in the test runs.
PEER := .bench-peer

$(PEER)/.installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(PEER) \
	    "$$($(BIN)/python -c 'from benchmarks.peer import PEER; print(PEER)')"
	@touch $@

bench: $(STAMP) $(PEER)/.installed
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf .venv .venv-python3.* $(PEER) build *.egg-info .mypy_cache .ruff_cache

# The suite on every supported interpreter found on PATH (one virtual environment each).
test-matrix:
	@for py in python3.11 python3.12 python3.13; do \
	  if $$py -c '' >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory test PYTHON=$$py VENV=.venv-$$py || exit 1; \
	  else echo "skipping $$py (not on PATH)"; fi; \
	done
