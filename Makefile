# Two commands set up everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test check test-sqlite test-postgres screenshots bench venv clean

# Python writes its bytecode caches, as it does by default, even where the shell says not to: every
# test worker and every caturactl process a test starts would otherwise compile the package (and
# pytest rewrite the test modules) again, about 5 s per worker and 0.3 s per process.
unexport PYTHONDONTWRITEBYTECODE

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Runs against local stand-ins in this process: no root, no servers to install.
demo: venv
	$(BIN)/python -m standins.demo

# The whole suite on SQLite, then the tests that touch a database again on a real PostgreSQL the
# tests start themselves. Each tier runs with the machine's clock moved (libfaketime; see
# tests/at_date.sh): SQLite's years ahead, PostgreSQL's at 23:30 Berlin time on a New Year's Eve.
# The app's clock is what counts: code that asked the machine instead would show up there.
test: test-sqlite test-postgres

# The fast tier: every test that needs no database, stand-in or server (tests/conftest.py marks
# the others "integration"), on SQLite; under a minute on the 2-core machine. Run it while you work;
# `make test` is what CI runs.
check: venv
	TEST_DB=sqlite $(BIN)/python -m pytest -q $(WORKERS) -m "not integration and not slow and not postgres"

# pytest-xdist workers, one more than the cores: much of the suite waits (servers, daemons on a
# compressed clock, processes let go at one instant), and the extra worker fills that time. Each
# worker starts its own servers on free ports and its own PostgreSQL, so the tests share nothing
# but the machine. WORKERS= runs them in one process.
NPROC   := $(shell nproc 2>/dev/null || echo 2)
WORKERS ?= -n $(shell expr $(NPROC) + 1)
SQLITE_AT ?= 2031-03-17 10:15:00
POSTGRES_AT ?= 2030-12-31 22:30:00

test-sqlite: venv
	TEST_DB=sqlite tests/at_date.sh "$(SQLITE_AT)" $(BIN)/python -m pytest -q $(WORKERS)

# The tests that touch a database, again on PostgreSQL (the others do not depend on it and ran
# above), and the pure tests of date rules ("dates"), at the second instant. PG_WORKERS= runs them
# in one process.
PG_WORKERS ?= $(WORKERS)
test-postgres: venv
	TEST_DB=postgres tests/at_date.sh "$(POSTGRES_AT)" $(BIN)/python -m pytest -q $(PG_WORKERS) -m "database or dates"

# The partner portal's pages in chromium, saved to docs/portal/ (desktop and phone width); a test
# run saves them in its own folder instead.
screenshots: venv
	PORTAL_SCREENSHOTS=$(CURDIR)/docs/portal TEST_DB=sqlite $(BIN)/python -m pytest -q tests/e2e/test_portal_browser.py

bench: venv
	$(BIN)/python bench/import.py
	$(BIN)/python bench/shop_import.py
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/portal.py
	$(BIN)/python bench/fulfilment.py
	$(BIN)/python bench/invoices.py
	$(BIN)/python bench/settlement.py
	$(BIN)/python bench/datev.py
	$(BIN)/python bench/day.py
	$(BIN)/python bench/chaos.py

clean:
	rm -rf $(VENV) demo .pytest_cache .hypothesis *.egg-info
