# oanda-sidecar — targets a newcomer can guess. `make run`, then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint proto proto-check docs bench chaos soak clean

install: $(STAMP)

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	touch $(STAMP)

run: install
	$(BIN)/oanda-sidecar demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check sidecar clients tests scripts bench chaos soak
	$(BIN)/mypy sidecar chaos soak clients/python/oanda_sidecar_client
	$(BIN)/buf lint

proto: install
	$(BIN)/python scripts/genproto.py

proto-check: install
	$(BIN)/python scripts/genproto.py --check

docs: install
	$(BIN)/python scripts/configdoc.py
	$(BIN)/python scripts/apidoc.py
	$(BIN)/python scripts/opsdoc.py
	$(BIN)/python scripts/archdoc.py

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.orders
	$(BIN)/python -m bench.ratelimit
	$(BIN)/python -m bench streams

# Faults below HTTP in network namespaces (root, nftables): the table goes to
# bench/results/chaos.md. The short form runs in `make test` (tests/chaos).
chaos: install
	$(BIN)/python -m chaos

# SOAK_MINUTES (default 30): the sidecar under load and faults; exit 1 if a slope is not flat.
soak: install
	$(BIN)/python -m soak

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
