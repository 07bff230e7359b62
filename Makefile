# loadmon — the two commands of the README:
#   make demo   build the library and the Python module into .venv, run examples/demo.py
#   make test   every test: Rust (unit, integration, doc), C, Python, lints, header drift
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
VENV_OK := $(VENV)/.deps-installed
# pyo3 finds the interpreter it builds against here (clippy/cargo on the Python crate).
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: help demo test python rust-test py-test lint

help:
	@echo "make demo   - build everything into .venv and run python examples/demo.py"
	@echo "make test   - run every test (Rust, C, Python, lints)"

$(VENV_OK): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.5,<2" "pytest>=7" "mypy>=1.8"
	touch $@

# Builds the Rust extension and installs `loadmon` into .venv (editable).
python: $(VENV_OK)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet

demo: python
	$(PY) examples/demo.py

lint: $(VENV_OK)
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

rust-test:
	cargo test --workspace --exclude loadmon-python

py-test: python
	$(PY) -m pytest -q

test: lint rust-test py-test
	@echo "make test: all suites passed"
