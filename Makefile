# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test  # bench_serve needs the serve extra (in the test extra)
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_rotate.py
	$(BIN)/python bench/bench_apply.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_devices.py

lint: $(VENV)/.installed-test  # ruff on everything; mypy --strict on mtctl/ (pyproject.toml)
	$(BIN)/python -m ruff check mtctl tests bench
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
