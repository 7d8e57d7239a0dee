# Two commands set up everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-sqlite test-postgres bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Runs against local stand-ins in this process: no root, no servers to install.
demo: venv
	$(BIN)/python -m standins.demo

# The whole suite on SQLite, then again on a real PostgreSQL the tests start themselves.
test: test-sqlite test-postgres

test-sqlite: venv
	TEST_DB=sqlite $(BIN)/python -m pytest -q

test-postgres: venv
	TEST_DB=postgres $(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python bench/import.py
	$(BIN)/python bench/fulfilment.py
	$(BIN)/python bench/invoices.py
	$(BIN)/python bench/settlement.py
	$(BIN)/python bench/datev.py
	$(BIN)/python bench/day.py
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis *.egg-info
