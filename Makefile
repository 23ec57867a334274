# Two commands matter: `make book` and `make test`. Both start from a fresh clone.
# Python 3.11, 3.12 or 3.13: the first found, or PYTHON=/path/to/python.
SUPPORTED_PYTHONS := 3.11 3.12 3.13
PYTHON ?= $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(shell command -v python$(v) 2>/dev/null)))
CHECK_PYTHON = test -n "$(PYTHON)" && $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null \
	|| { echo "no supported Python: the book needs Python 3.11, 3.12 or 3.13 (python3.11, python3.12 or python3.13 on PATH, or make PYTHON=/path/to/python); found '$(PYTHON)'" >&2; exit 1; }
LATEST := .venv-latest
TORCH_LOCKED := $(shell sed -n 's/^torch==//p' requirements.lock)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CHAPTERS := $(sort $(wildcard chapters/[0-9][0-9]_*.ipynb))

# Tests and nbval run on one BLAS thread per worker (two workers on a 2-core machine),
# with progress bars off so that no stored output depends on timing.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 BOOK_PROGRESS=0 TQDM_DISABLE=1 PYTHONHASHSEED=0

.PHONY: all book test test-latest lint unit nbval lab sync lock clean venv assignments html browser bench data claims ledger outputs reference

all: book

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || { $(CHECK_PYTHON) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## data: make sure Fashion-MNIST is present and verified. Found already: nothing to do.
## As root with apt: install Debian's dataset-fashion-mnist. Otherwise (or if apt fails):
## download the four files into the user cache. BOOK_DATA_DIR=<folder> points at a copy.
data: $(STAMP)
	@if $(BIN)/python -m helpers.data_files --no-download >/dev/null 2>&1; then 	    $(BIN)/python -m helpers.data_files --no-download; 	else 	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then 	        echo "installing Debian's dataset-fashion-mnist"; 	        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive 	          apt-get install -y -qq dataset-fashion-mnist >/dev/null; } 	        || echo "apt-get could not install dataset-fashion-mnist; downloading instead"; 	    fi; 	    $(BIN)/python -m helpers.data_files; 	fi

## book: set up .venv and the data, execute every chapter top to bottom in a fresh kernel
## (one per core) into _build/executed, then build the HTML book from those. chapters/ is
## left as it is.
book: $(STAMP) data
	$(BIN)/python tools/execute_chapters.py --out _build/executed $(CHAPTERS)
	$(BIN)/python tools/build_html.py --out _build/html --chapters _build/executed

## outputs (maintainers): execute every chapter and write the outputs back into chapters/,
## the committed outputs that readers, nbval and `make html` see
outputs: $(STAMP) data
	$(BIN)/python tools/execute_chapters.py $(CHAPTERS)

## html: the static HTML book (Jupyter Book 1) in _build/html, from the committed outputs
html: $(STAMP)
	$(BIN)/python tools/build_html.py --out _build/html

## assignments: assignments/ with each chapter's solutions replaced by stubs (solutions/ kept apart)
## and assignments/nbgrader/, a ready nbgrader course directory (source/, nbgrader_config.py)
assignments: $(STAMP)
	$(BIN)/python tools/make_assignments.py --out assignments

## grade: grade returned notebooks without nbgrader, at small sizes, each in a fresh kernel:
## make grade SUBMISSIONS=<folder> OUT=<folder> with <folder>/<student>/NN_topic.ipynb;
## writes OUT/grades.csv and OUT/feedback/ (OUT defaults to grades). SUBMISSIONS is not modified.
.PHONY: grade
grade: $(STAMP) data
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder> OUT=<folder>" >&2; exit 2; }
	$(BIN)/python tools/grade.py "$(SUBMISSIONS)" --out "$(or $(OUT),grades)"

## test: set up .venv and run ruff, the helpers' tests, the pairing test and nbval on every chapter
test: lint unit nbval

## test-latest: the unit tests and chapter 1 under nbval in .venv-latest, built from
## pyproject.toml's ranges without the lock: the newest release of every dependency, except
## torch, kept at the lock's version (a newer one is a several-GB CUDA build here)
test-latest: browser data
	@test -x $(LATEST)/bin/python || { $(CHECK_PYTHON) && $(PYTHON) -m venv $(LATEST); }
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager \
	    "torch==$(TORCH_LOCKED)" -e ".[dev]"
	$(LATEST)/bin/python -m pip list --format=freeze | grep -iE '^(numpy|matplotlib|scikit-learn|scikit-image|jupytext|nbval|nbclient|hypothesis|pytest|torch)=='
	$(TEST_ENV) $(LATEST)/bin/python -m pytest -n 2 --durations=5 tests
	$(TEST_ENV) $(LATEST)/bin/python -m pytest --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=300 --nbval-sanitize-with tests/nbval_sanitize.cfg \
	    chapters/01_convolution.ipynb

lint: $(STAMP)
	$(BIN)/ruff check helpers tests tools benchmarks scripts chapters/*.py

unit: $(STAMP) browser data
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --durations=10 tests

nbval: $(STAMP) data
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 --dist loadscope \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg $(CHAPTERS)

## claims: re-run chapters at other seeds and thread counts, list every failing claim
## (slow: not part of `make test`). Example: make claims SEEDS="1 2 3" CHAPTERS="01 03" THREADS="1 2"
SEEDS    ?= 1 2 3
THREADS  ?= 1 2
JOBS     ?= 1
claims: $(STAMP) data
	$(BIN)/python tools/check_claims.py --seeds $(SEEDS) --threads $(THREADS) --jobs $(JOBS) \
	    $(if $(CHAPTERS),--chapters $(CHAPTERS)) $(foreach s,$(SET),--set $(s))

## ledger: the claims ledger, benchmarks/claims/ledger.json: each chapter whose .py changed since
## its entry, at seeds 0-9 on one thread and seed 0 on two threads, two runs at a time (slow:
## about an hour for all ten chapters on 2 cores). make ledger CHAPTERS="04 07" FORCE=1
LEDGER_JOBS ?= 2
ledger: $(STAMP) data
	$(BIN)/python tools/ledger.py --jobs $(LEDGER_JOBS) $(if $(CHAPTERS),--chapters $(CHAPTERS)) \
	    $(if $(FORCE),--force)

## reference: chapter 9's table on all 60,000 training images, on the best device present, into
## benchmarks/reference/capstone.json (slow: about an hour on one CPU thread at 3 epochs).
## Example on a GPU: make reference REF_EPOCHS=30 REF_SEEDS="0 1 2 3 4"
REF_EPOCHS ?= 3
REF_SEEDS  ?= 0 1 2 3 4
reference: $(STAMP) data
	$(BIN)/python tools/reference.py --epochs $(REF_EPOCHS) --seeds $(REF_SEEDS)

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
	@$(CHECK_PYTHON)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet "torch==$(TORCH_LOCKED)" -e ".[dev]"
	.lock-venv/bin/python tools/write_lock.py .lock-venv > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(LATEST) .pytest_cache .hypothesis _build assignments
