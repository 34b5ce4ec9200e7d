# Two commands set up and run everything on a machine that has only Python 3.11+:
#   make demo   — the whole platform with sample content: site, editor, explorer, impressions
#   make test   — run the test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint clean

# The virtual environment is rebuilt whenever the project's packaging or C sources change.
$(STAMP): pyproject.toml setup.py $(wildcard src/marrow/store/*.c)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "marrow needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/marrow demo

# The store runs again on its pure-Python twins (MARROW_PURE=1), as on a machine without a C compiler.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)
	MARROW_PURE=1 $(PY) -m pytest tests/store $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/marrow bench store --records $${RECORDS:-1000000} --json

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build src/*.egg-info src/marrow/store/*.so .pytest_cache .mypy_cache .hypothesis
