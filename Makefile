# Two commands set up everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test check test-sqlite test-postgres test-dates bench venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Runs against local stand-ins in this process: no root, no servers to install.
demo: venv
	$(BIN)/python -m standins.demo

# The whole suite on SQLite, then again on a real PostgreSQL the tests start themselves, then
# the tests of every date rule with the machine's clock moved (libfaketime; see test-dates).
test: test-sqlite test-postgres test-dates

# The fast tier: every test that needs no database, stand-in or server (tests/conftest.py marks
# the others "integration"), on SQLite; under a minute on the 2-core machine. Run it while you work;
# `make test` is what CI runs.
check: venv
	TEST_DB=sqlite $(BIN)/python -m pytest -q $(WORKERS) -m "not integration and not slow and not postgres"

# One pytest worker per core (pytest-xdist): each worker starts its own servers on free ports and
# its own PostgreSQL, so the tests share nothing but the machine. WORKERS= runs them in one process.
WORKERS ?= -n auto

test-sqlite: venv
	TEST_DB=sqlite $(BIN)/python -m pytest -q $(WORKERS)

# The tests that touch a database, again on PostgreSQL (the others do not depend on it and ran above).
# Three workers on two cores: much of this tier waits (daemons on a compressed clock, processes let
# go at one instant), and a third worker fills that time. PG_WORKERS= runs them in one process.
PG_WORKERS ?= -n 3
test-postgres: venv
	TEST_DB=postgres $(BIN)/python -m pytest -q $(PG_WORKERS) -m "database"

# The tests that touch a date rule (import windows, invoice and credit-note dates, deadlines and
# business hours, review windows, job slots, reports, DATEV periods, the clock itself), run with
# the machine's clock years ahead and at 23:30 Berlin time on a New Year's Eve. The app's clock
# is what counts: code that asked the machine instead would show up here.
DATE_TESTS = tests/unit/test_clock.py tests/unit/test_datev.py tests/unit/test_accounting.py \
	tests/unit/test_states.py tests/integration/test_importing.py tests/integration/test_invoicing.py \
	tests/integration/test_routing.py tests/integration/test_amazon_solicitations.py \
	tests/integration/test_jobs.py tests/integration/test_reports.py tests/integration/test_alerts.py \
	tests/integration/test_settlement.py tests/integration/test_outbox.py \
	tests/integration/test_payment_queue.py tests/integration/test_payments.py tests/e2e/test_shipping.py
# The machine's clock is offset, not restarted: with faketime's "@DATE" every child process
# (a jobs daemon, a job) would start again at DATE, behind its parent.
FAKE_DATES = "2031-03-17 10:15:00" "2030-12-31 22:30:00"

test-dates: venv
	@if ! command -v faketime >/dev/null; then \
	  if [ -n "$$CI" ]; then echo "test-dates: faketime is not installed (CI installs it)"; exit 1; fi; \
	  echo "test-dates: skipped, faketime is not installed here (apt-get install faketime; CI has it)"; exit 0; fi
	@for at in $(FAKE_DATES); do \
	  off=$$(( $$(date -u -d "$$at" +%s) - $$(date -u +%s) )); \
	  echo "== the machine's clock at $$at UTC"; \
	  TZ=UTC TEST_DB=sqlite faketime -f "+$$off" $(BIN)/python -m pytest -q -p no:cacheprovider $(WORKERS) $(DATE_TESTS) || exit 1; \
	done

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
