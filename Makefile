# The two commands: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench clean

# setuptools in the venv too: the packaging test builds the editable wheel with the backend pyproject.toml names.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools>=77'

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# The tests cover the integrations against their real packages, so they install those extras too.
# The test session starts its own PostgreSQL server: from the system's binaries, else from a wheel
# that ships them (pgserver), installed only on a machine that has none.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mcp,agents,postgres,langgraph,adk,otel]'
	if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		$(BIN)/python -m pip install --quiet 'pgserver==0.1.4'; fi
	touch $@ $(VENV)/.installed

# The demo ends with the report of what it recorded: one HTML page, openable offline.
demo: $(VENV)/.installed
	$(BIN)/ledger --db demo.db demo
	$(BIN)/ledger --db demo.db report demo-report.html

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The full benchmark table (a few minutes on 2 cores); `python -m benchmarks --quick` is the smoke run.
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mcp,agents,postgres,langgraph,adk,otel,bench]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-test

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm demo-report.html .pytest_cache .hypothesis
