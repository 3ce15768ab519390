# Two commands do all set-up: `make up` runs the ledger, `make test` installs and passes the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up test unit faults clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/consent-ledger up

test: $(STAMP)
	$(BIN)/ruff check services schemas projections tests bench
	$(BIN)/ruff format --check services schemas projections tests bench
	$(BIN)/mypy
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# the fault-injection suite alone, with larger workloads than in `make test`
LEDGER_FAULT_SCALE ?= 10
faults: $(STAMP)
	LEDGER_FAULT_SCALE=$(LEDGER_FAULT_SCALE) $(BIN)/pytest tests/faults

clean:
	rm -rf $(VENV) .ledger .mypy_cache .pytest_cache .ruff_cache
