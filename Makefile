# The two commands of the README: `make demo` and `make test`.
# Both create .venv (Python ≥ 3.11) and install requirements.txt on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo report test test-fast lint format clean

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

# The inner loop: every test that runs no Snakemake workflow (and no Slurm), in about 4 minutes.
test-fast: setup
	$(BIN)/python -m pytest -m "not workflow and not slurm"

# What CI checks besides the tests; `make format` applies the two formatters.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow/rules

clean:
	rm -rf results resources logs benchmarks .snakemake report.html
