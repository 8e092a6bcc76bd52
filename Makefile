# The two commands of the README: `make demo` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint assets bench-intake bench-board clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

NPM         ?= npm
ASSETS_STAMP := node_modules/.installed

# The boards' front-end files (ECharts, the Socket.IO client) come from npm at the versions
# locked in package-lock.json; they are served from node_modules, never copied into the repo.
$(ASSETS_STAMP): package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	touch $(ASSETS_STAMP)

assets: $(ASSETS_STAMP)

## Set everything up, migrate and seed a SQLite database under instance/, serve on 127.0.0.1:5000.
demo: $(STAMP) $(ASSETS_STAMP)
	$(BIN)/hotline demo --host 127.0.0.1 --port 5000

## Set everything up and run lint plus the whole test suite (SQLite unless
## HOTLINE_TEST_DATABASE_URL points at PostgreSQL), one pytest-xdist worker per core, each on
## a database of its own (on PostgreSQL: <name>_gw0, <name>_gw1 …).
test: $(STAMP) $(ASSETS_STAMP) lint
	scripts/ensure-chromium
	scripts/ensure-nginx
	$(BIN)/python -m pytest -n auto --dist loadfile

## ruff, and import-linter's contracts (setup.cfg [importlinter]): the layers server →
## dashboards → dispatch → hotline, classifier apart, pages and the JSON API apart.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

bench-board: $(STAMP)
	$(BIN)/python bench/board.py

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules
