# One command to set up and test, one to run: each installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CLI := $(BIN)/likeness-monitor
DEVSET ?= var/devset

.PHONY: install models prometheus chromium postgres test lint typecheck unit eval bench run clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

models: install
	$(CLI) models fetch

lint: install
	$(BIN)/ruff check monitor tests bench dashboards docs
	$(BIN)/ruff format --check monitor tests bench dashboards docs

typecheck: install
	$(BIN)/mypy

# promtool, prometheus and amtool (Debian packages) for the rules, scrape and Alertmanager
# tests; apt only if missing.
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v amtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null; \
	  else echo "prometheus missing: apt-get install prometheus prometheus-alertmanager (as root), or their tests skip (fail under CI=true)"; fi; }

# Debian's chromium for the review page's browser tests (Playwright drives it); apt only if missing.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: apt-get install chromium (as root), or the browser tests skip (fail under CI=true)"; fi; }

# PostgreSQL for the store tests (each store's suite runs on SQLite and on PostgreSQL): the
# server at LIKENESS_TEST_POSTGRES_URL if set, else this machine's on 127.0.0.1:5432, started
# with pg_ctlcluster when it is installed but down (as root); say which.
postgres:
	@if [ -n "$$LIKENESS_TEST_POSTGRES_URL" ]; then echo "store tests: PostgreSQL at $$LIKENESS_TEST_POSTGRES_URL"; \
	elif pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then echo "store tests: this machine's PostgreSQL (127.0.0.1:5432, already running)"; \
	elif [ "$$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start && echo "store tests: started this machine's PostgreSQL (127.0.0.1:5432)"; \
	else echo "no PostgreSQL on 127.0.0.1:5432: set LIKENESS_TEST_POSTGRES_URL, or its tests skip (fail under CI=true)"; fi

unit: models prometheus chromium postgres
	$(BIN)/pytest

test: lint typecheck unit

# The dev evaluation on ../shared/eval-media (table in the README).
eval: models
	$(BIN)/python -m bench.devset --out $(DEVSET)
	$(CLI) gallery build $(DEVSET)/gallery
	$(CLI) eval --gallery $(DEVSET)/gallery --cases $(DEVSET)/cases.json
	$(CLI) eval-captions --gallery $(DEVSET)/gallery --cases bench/captions/eval.json

bench: models
	$(BIN)/python -m bench.scoring

# The monitor on its embedded defaults: broker, bundled models, demo platform and gallery.
run: models
	$(CLI) up

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
