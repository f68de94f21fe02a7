# The two commands of the README: `make demo` and `make test`.
# Both create .venv (Python ≥ 3.11) and install requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo report test clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: setup
	$(BIN)/snakemake --cores 8

report: demo
	$(BIN)/snakemake --report report.html

test: setup
	bash tests/install_system_packages.sh
	$(BIN)/python -m pytest

clean:
	rm -rf results resources logs benchmarks .snakemake report.html
