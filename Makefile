# Descent: `make run` opens the app, `make test` runs the whole test suite.
# Both create .venv and install what is needed on a fresh machine; `make run`
# installs only the runtime (requirements.txt), `make test` adds the test tools
# and the cluster engine the tests exercise (requirements-dev/-cluster.txt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
TESTING := $(VENV)/.testing-installed

.PHONY: run test bench results system-deps clean

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
	$(BIN)/python main.py

test: $(TESTING) system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(TESTING)
	$(BIN)/python bench/engine.py

# rerun every preset headless and render the figures into the presets' texts and README (~20 min, 2 cores)
results: $(RUNTIME)
	$(BIN)/python tools/results.py

clean:
	rm -rf $(VENV) .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
