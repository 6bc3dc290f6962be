# Capital Allocator — the commands a person types. `make help` lists them.
# Needs only python3 (3.11+) and make: the first target that needs it creates .venv and installs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KERNEL := capital-allocator
STAMP := $(VENV)/.installed-stamp
ALLOCATOR := $(BIN)/allocator
DATE ?=
DATE_ARG := $(if $(DATE),--date $(DATE),)
# Offline demo data: the seeded synthetic market (no network, no API key).
DEMO_SOURCE ?= synthetic
# Real SPY/QQQ/DIA history beside the checkout, when present, turns on the calibration test on
# real data (it is read in place, never copied into the repository).
ALLOCATOR_MARKET_CSV_DIR ?= $(abspath $(wildcard ../shared/data/market))
export ALLOCATOR_MARKET_CSV_DIR

.DEFAULT_GOAL := help
.PHONY: help install demo test test-fast lint format lab serve crontab bench clean-notebooks \
        run-fetch run-signal run-execute run-backtest run-review runs clean bench-sweep

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Capital Allocator needs Python 3.11 or newer: run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Capital Allocator (.venv)" >/dev/null
	@$(BIN)/python -m allocator.notebook.hygiene setup
	@touch $@
	@echo "installed into $(VENV) (kernel '$(KERNEL)')"

install: $(STAMP) ## create .venv, install the package, its Jupyter kernel and git's notebook filter

demo: $(STAMP) ## offline end-to-end run on its own SQLite database (var/demo.sqlite3)
	@$(BIN)/python -m allocator.cli.demo --source $(DEMO_SOURCE)

test: $(STAMP) ## lint and run the whole suite (SQLite and, when reachable, PostgreSQL)
	$(BIN)/ruff check allocator tests benchmarks
	$(BIN)/ruff format --check allocator tests benchmarks
	$(BIN)/python -m allocator.notebook.render --check notebooks/*.ipynb
	$(BIN)/python -m pytest -n auto

test-fast: $(STAMP) ## the suite without the notebook (papermill) tests
	$(BIN)/python -m pytest -m "not notebook"

lint: $(STAMP) ## ruff check
	$(BIN)/ruff check allocator tests benchmarks

format: $(STAMP) ## ruff format and fix, and strip notebook outputs
	$(BIN)/ruff check --fix allocator tests benchmarks
	$(BIN)/ruff format allocator tests benchmarks
	$(BIN)/python -m allocator.notebook.render --strip notebooks/*.ipynb

clean-notebooks: $(STAMP) ## strip outputs and execution counts from notebooks/
	$(BIN)/python -m allocator.notebook.render --strip notebooks/*.ipynb

# Extra options for JupyterLab, e.g. make lab LAB_ARGS="--ip 0.0.0.0 --port 8888 --allow-root".
LAB_ARGS ?=
lab: $(STAMP) ## open JupyterLab on the whole checkout (LAB_ARGS="--ip ... --port ...")
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR) $(LAB_ARGS)

HOST ?= 127.0.0.1
PORT ?= 8000
serve: $(STAMP) ## the read-only web app: dashboard, runs, JSON API (HOST=127.0.0.1 PORT=8000)
	$(ALLOCATOR) serve --host $(HOST) --port $(PORT)

crontab: $(STAMP) ## print the production cron schedule for this checkout
	@$(ALLOCATOR) crontab

runs: $(STAMP) ## list recent job runs
	@$(ALLOCATOR) runs --limit 20

run-fetch: $(STAMP) ## run the fetch notebook (DATE=YYYY-MM-DD, default today's session)
	$(ALLOCATOR) run fetch $(DATE_ARG)

run-signal: $(STAMP) ## run the signal notebook (DATE=YYYY-MM-DD)
	$(ALLOCATOR) run signal $(DATE_ARG)

run-execute: $(STAMP) ## run the execute notebook (DATE=YYYY-MM-DD)
	$(ALLOCATOR) run execute $(DATE_ARG)

START ?= 2005-01-03
END ?=
run-backtest: $(STAMP) ## backtest the stored history (START=YYYY-MM-DD [END=YYYY-MM-DD])
	$(ALLOCATOR) run backtest -p start $(START) $(if $(END),-p end $(END),)

run-review: $(STAMP) ## tabulate archived runs (FROM=YYYY-MM-DD TO=YYYY-MM-DD; default 30 days)
	$(ALLOCATOR) run review $(if $(FROM),-p start $(FROM),) $(if $(TO),-p end $(TO),)

bench: $(STAMP) ## benchmarks: backtest and research kernel speed, job overhead, CLI start-up (CPU)
	$(BIN)/python -m benchmarks

bench-sweep: $(STAMP) ## make bench plus the 200-config Dask sweep (about 5 minutes more)
	$(BIN)/python -m benchmarks --sweep

clean: ## remove the virtualenv and caches (keeps var/, runs/ and reports/)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
