# The two commands of the README: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench-intake clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Set everything up, migrate and seed a SQLite database under instance/, serve on 127.0.0.1:5000.
demo: $(STAMP)
	$(BIN)/hotline demo --host 127.0.0.1 --port 5000

## Set everything up and run lint plus the whole test suite (SQLite unless
## HOTLINE_TEST_DATABASE_URL points at PostgreSQL).
test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) instance .pytest_cache
