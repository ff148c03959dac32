# The two commands: `make demo` (a working helpdesk) and `make test` (the whole suite).
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8000

.PHONY: demo test install lint

$(BIN)/madoguchi: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/madoguchi

demo: install
	$(BIN)/madoguchi demo --port $(PORT)

test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check src tests bench
