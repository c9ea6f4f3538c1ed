# The two commands of a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python scripts/demo.py

# The fast loop: tests/unit alone (no AWS endpoint, no pkg subprocess).
.PHONY: test-fast check
test-fast: setup bytecode
	$(BIN)/python -m pytest -q tests/unit

# Installed code has its bytecode; so do the tests' and benchmarks' pkg processes, even where
# PYTHONDONTWRITEBYTECODE is set (every pkg process would compile the tool again: ~0.2 s each).
.PHONY: bytecode
bytecode: setup
	$(BIN)/python -m compileall -q packager cache

# Lint and types (settings in pyproject.toml: [tool.ruff], [tool.mypy]).
check: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

# Everything: tests/unit and tests/e2e (a local moto server, real pkg processes, real installs).
test: setup bytecode
	$(BIN)/python -m pytest -n auto -q

# Every benchmark, each writing its section of docs/benchmarks.md with the commit and machine it measured
# (offline; bench/bench_deps.py --pypi measures a real PyPI set). Run it on a quiet machine.
bench: setup bytecode
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_deps.py
	$(BIN)/python bench/bench_publish.py
	$(BIN)/python bench/bench_rollback.py
	$(BIN)/python bench/bench_shared.py

clean:
	rm -rf .pkg bench/out

# Reproducible dev envs: envs/<name>.conda-lock.yml for linux-64 and linux-aarch64 (needs conda-lock
# and network); `conda-lock install -n NAME envs/NAME.conda-lock.yml` installs one.
.PHONY: locks
locks: setup
	$(BIN)/pkg env lock --run
