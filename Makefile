# Descent: `make run` opens the app, `make test` runs the whole test suite.
# Both create .venv and install what is needed on a fresh machine; `make run`
# installs only the runtime (requirements.txt), `make test` adds the test tools
# and the cluster engine the tests exercise (requirements-dev/-cluster.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTING := $(VENV)/.testing-installed

# Numba's cache lives in .numba_cache/<hash of the compiled sources> (tools/numba_cache.py):
# after a kernel edit the cache starts empty instead of running stale machine code. Tests set it
# in tests/conftest.py; `make run` sets it here too (a recompile after an edit beats a stale kernel).
NUMBA_DIR = NUMBA_CACHE_DIR=$$($(BIN)/python tools/numba_cache.py)

.PHONY: run test bench mutation results system-deps clean

$(RUNTIME): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $(RUNTIME)

$(TESTING): $(RUNTIME) requirements-dev.txt requirements-cluster.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt -r requirements-cluster.txt
	touch $(TESTING)

system-deps:
	@bash scripts/system-deps.sh

run: $(RUNTIME) system-deps
	$(NUMBA_DIR) $(BIN)/python main.py

test: $(TESTING) system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(TESTING)
	$(BIN)/python bench/engine.py

# Plants curated single bugs in a scratch copy and runs the tests mapped to each (slow: ~1 h on
# 2 cores); every one must be caught. MUTATION_ARGS="--only dropout --workers 1" narrows it.
mutation: $(TESTING)
	$(BIN)/python tools/mutation.py $(MUTATION_ARGS)

# rerun every preset headless and render the figures into the presets' texts and README (slow: hours on 2 cores; --stale continues)
results: $(RUNTIME)
	$(BIN)/python tools/results.py

clean:
	rm -rf $(VENV) .pytest_cache .numba_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
