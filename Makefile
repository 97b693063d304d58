# The report's commands. On a fresh machine `make book` installs everything and builds the book;
# `make test` runs the tests. pyproject.toml is the single source of dependencies.

PYTHON ?= python3
VENV   ?= .venv
PARAMS ?= params/default.yml
CONSTRAINTS ?= constraints.txt
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# TREC RAG 2024 queries with MS MARCO v2.1 passages, read from this wheel (never installed) by neuron_ig.ir.trec_rag
RAG_WHEEL := $(VENV)/share/neuron-ig/ir_axioms-1.2.5-py3-none-any.whl

.PHONY: all venv book test test-fast lab benchmark browser clean

all: book

## venv: create .venv and install the package with its book, test, lab and dev extras (again only when pyproject.toml
## changes), and download the ir-axioms wheel whose MS MARCO text trains the embedded cross-encoder
venv: $(STAMP) $(RAG_WHEEL)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[book,test,lab,dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (neuron-ig)"
	touch $(STAMP)

$(RAG_WHEEL): | $(STAMP)
	$(PY) -m pip download --no-deps --quiet ir-axioms==1.2.5 -d $(dir $(RAG_WHEEL))

## book: execute every notebook with $(PARAMS) and build the HTML book into _build/html; a page executed before
## with the same notebook, parameters and code is kept (RUNNER_ARGS=--rerun executes every page again)
book: venv
	$(PY) -m neuron_ig.report.runner --params $(PARAMS) $(RUNNER_ARGS)

## test: run the whole test suite, as CI does (the browser test needs Debian's chromium, installed here when root)
test: venv browser
	$(PY) -m pytest -q

## test-fast: the tests not marked slow (no book builds, browsers, torchrun or training runs): a few minutes
test-fast: venv
	$(PY) -m pytest -q -m 'not slow'

## lab: JupyterLab on notebooks/: the .md notebooks open as notebooks (jupyter/labconfig), on the venv's
## python3 kernel, with the book's cache (.cache/neuron_ig, see neuron_ig.runtime.cache). Extra options: LAB_ARGS=...
lab: venv
	JUPYTER_PREFER_ENV_PATH=1 JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  $(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(LAB_ARGS)

## browser: Debian's chromium, which the test of the built site drives through playwright
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "note: no chromium; install Debian's chromium (apt-get install chromium) or the browser test is skipped"; \
	  fi; }

## benchmark: time the NIG engine (its CPU batch size, its step counts and rules), the cost of the pruning hooks on
## re-ranking, and a fine-tuning step of the embedded cross-encoder
benchmark: venv
	$(PY) benchmarks/nig_speed.py
	$(PY) benchmarks/nig_batch_rows.py
	$(PY) benchmarks/nig_steps.py
	$(PY) benchmarks/pruning_speed.py
	$(PY) benchmarks/training_speed.py

## clean: remove the built site and the executed notebooks (the result cache .cache/ is kept)
clean:
	rm -rf _build book/generated
