# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   set up .venv, sweep the default model, write the report, serve the dashboard
#               (make demo DEMO_ARGS=--no-serve: headless)
#   make test   set up .venv and run the tests
# Both are idempotent: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test test-slow setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first (a local wheel on these machines; the plain release elsewhere), so no CUDA build is pulled.
	$(PY) -m pip install --quiet "torch==2.13.0+cpu" || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	# Headless Chromium from Debian for the dashboard browser tests (Playwright drives it; no browser download).
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null))) || echo "warning: chromium not installed; browser tests will fail (apt-get install chromium)"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m workbench demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# pytest exits 5 when nothing is selected; that is not a failure for the optional slow step.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || test $$? -eq 5

clean:
	rm -rf $(VENV)
