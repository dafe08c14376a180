# Two entry points do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= conf/glancelite.conf

.PHONY: serve test install install-test db-sync lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

db-sync: install
	$(BIN)/glancelite-manage --config-file $(CONFIG) db sync

serve: db-sync
	$(BIN)/glancelite-api --config-file $(CONFIG)

test: install-test
	$(BIN)/pytest

lint: install-test
	$(BIN)/pip install -q ruff
	$(BIN)/ruff check glancelite tests bench

clean:
	rm -rf $(VENV) var build *.egg-info
