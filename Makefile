# Two commands matter: `make book` and `make test`. Both start from a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CHAPTERS := $(sort $(wildcard chapters/[0-9][0-9]_*.ipynb))

# Tests and nbval run on one BLAS thread per worker (two workers on a 2-core machine),
# with progress bars off so that no stored output depends on timing.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BOOK_PROGRESS=0 TQDM_DISABLE=1 PYTHONHASHSEED=0

.PHONY: all book test lint unit nbval lab sync lock clean venv assignments html browser bench

all: book

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## book: set up .venv and execute every chapter top to bottom in a fresh kernel, saving outputs,
## then build the HTML book from those outputs
book: $(STAMP)
	$(BIN)/python tools/execute_chapters.py $(CHAPTERS)
	$(MAKE) html

## html: the static HTML book (Jupyter Book 1) in _build/html, from the committed outputs
html: $(STAMP)
	$(BIN)/python tools/build_html.py --out _build/html

## assignments: assignments/ with each chapter's solutions replaced by stubs (solutions/ kept apart)
assignments: $(STAMP)
	$(BIN)/python tools/make_assignments.py --out assignments

## test: set up .venv and run ruff, the helpers' tests, the pairing test and nbval on every chapter
test: lint unit nbval

lint: $(STAMP)
	$(BIN)/ruff check helpers tests tools benchmarks chapters/*.py

unit: $(STAMP) browser
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --durations=10 tests

nbval: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadscope \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg $(CHAPTERS)

# The HTML book's browser test (tests/test_html.py) needs Chromium from the system packages.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	    else echo "chromium is missing (apt-get install chromium): the browser test is skipped"; fi; \
	fi

## bench: NumPy layers vs torch on one CPU thread, fit's overhead, each chapter's nbval time
bench: $(STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/run.py

## lab: JupyterLab on chapters/ with the .venv kernel
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=chapters $(if $(filter 0,$(shell id -u)),--allow-root)

## sync: after editing a chapter's .py, refresh its .ipynb (outputs kept; run `make book` next)
sync: $(STAMP)
	$(BIN)/jupytext --update --to ipynb chapters/[0-9][0-9]_*.py

## lock: re-resolve requirements.lock from pyproject.toml (needs the registries)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[dev]"
	.lock-venv/bin/python tools/write_lock.py .lock-venv > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis _build assignments
