# Two commands do all set-up: `make up` runs the ledger, `make test` installs and passes the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: up test unit fuzz faults clean bench wrk lock docs

# `make bench BENCH_SCALE=1 BENCH_RUNS=5 BENCH_ARGS="--profile"`: see docs/developers/benchmarks.md
BENCH_SCALE ?= 0.1
BENCH_RUNS  ?= 3
BENCH_ARGS  ?=

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

up: $(STAMP)
	LEDGER_WEBHOOK_ALLOW_LOOPBACK=$${LEDGER_WEBHOOK_ALLOW_LOOPBACK:-true} $(BIN)/consent-ledger up

# the Kafka passwords and JAAS file of docker-compose.yml's `ha` profile, random, in .ha-secrets
# (ignored by git and the image build); existing passwords are kept
.PHONY: ha-secrets
ha-secrets:
	sh deploy/kafka-ha-secrets.sh .ha-secrets

test: $(STAMP)
	$(BIN)/ruff check services schemas projections tests bench
	$(BIN)/ruff format --check services schemas projections tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict
	$(BIN)/pytest

# the documentation site (mkdocs.yml) into build/docs; strict: a broken page, link or anchor fails
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# every hypothesis property (hypothesis marks them `hypothesis`), with fresh random examples
# and ten times as many as `make test` draws (tests/properties.py)
fuzz: $(STAMP)
	$(BIN)/pytest -m hypothesis --hypothesis-profile fuzz

bench: $(STAMP) wrk
	$(BIN)/python -m bench.run --scale $(BENCH_SCALE) --runs $(BENCH_RUNS) $(BENCH_ARGS)

# the HTTP load generator of `make bench`, installed from Debian's packages when missing
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq wrk; \
	  else \
	    echo "make bench needs wrk (https://github.com/wg/wrk): run it as root on Debian or" \
	      "Ubuntu to have it installed, or install the wrk package yourself" \
	      "(sudo apt-get install wrk, brew install wrk) and put it on PATH" >&2; \
	    exit 1; \
	  fi; }

# the fault-injection suite alone, with larger workloads than in `make test`
LEDGER_FAULT_SCALE ?= 10
faults: $(STAMP)
	LEDGER_FAULT_SCALE=$(LEDGER_FAULT_SCALE) $(BIN)/pytest tests/faults

# requirements.lock: the production image's dependencies (no dev, no embedded servers) pinned
# with their hashes for every platform, plus the build backend; run after changing dependencies
lock: $(STAMP)
	printf 'setuptools>=77\n' | $(BIN)/uv pip compile pyproject.toml - --universal \
	  --python-version 3.11 --generate-hashes --custom-compile-command "make lock" \
	  --output-file requirements.lock

clean:
	rm -rf $(VENV) .ledger .mypy_cache .pytest_cache .ruff_cache build/docs
