PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0

.PHONY: venv demo lint test test-slow bench tutorials docs clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/pyrossm demo --out demo_output

# ruff: lint and format check (configured in pyproject.toml); `make format` applies both
lint: venv
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow

# re-executes the tutorials in full mode and stores their outputs (figures) in the notebooks
tutorials: venv
	PYROSSM_FAST=0 $(VENV)/bin/jupyter-execute --inplace tutorials/*.ipynb

# the API reference and the tutorials (stored outputs), warnings as errors: docs/_build/html
docs: venv
	$(VENV)/bin/sphinx-build -W -b html docs docs/_build/html

bench: venv
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) demo_output docs/_build docs/tutorials
