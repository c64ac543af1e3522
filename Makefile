# tradelearn's entry points. `make run` is the main job, `make test` the test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Django 6 needs Python 3.12+: take the first interpreter on this machine that is new enough.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 $$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)

ENGINES ?= paper,scraping
# Where the web server listens (add a public host to ALLOWED_HOSTS to listen beyond this machine).
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv run up test bench migrate

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (none found)."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

venv: $(VENV)/.installed

migrate: venv
	$(PY) manage.py migrate --no-input

# The main job (embedded default: SQLite under var/, no broker).
run: migrate
	$(PY) manage.py import_candles data/candles/*.csv
	$(PY) manage.py replay --engines $(ENGINES) --from 2022-01-15 --to 2023-12-31 --skip-done
	$(PY) manage.py learning_summary
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@echo "Dashboard: http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/; Ctrl-C stops the server)"
	$(VENV)/bin/gunicorn tradelearn.wsgi --bind $(HOST):$(PORT) --workers 2 --access-logfile -

# Live paper trading: web, Celery worker and beat from the Procfile, on PostgreSQL and Redis. The bundled
# candles are what the clock feed (MARKET_FEED=clock, the default) releases; one account per engine trades.
up: venv
	@test -n "$$DATABASE_URL" -a -n "$$CELERY_BROKER_URL" || { echo "make up needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis), e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/tradelearn CELERY_BROKER_URL=redis://127.0.0.1:6379/0 make up"; exit 1; }
	$(PY) manage.py ensure_database
	$(PY) manage.py migrate --no-input
	$(PY) manage.py import_candles data/candles/*.csv
	$(PY) manage.py setup_periodic_tasks
	$(PY) manage.py accounts ensure-live
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@echo "Dashboard: http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/; Ctrl-C stops web, worker and beat)"
	HOST=$(HOST) $(VENV)/bin/honcho start --port $(PORT)

# The whole suite on PostgreSQL (and Redis where a test needs it).
test: venv
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser test"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
		|| echo "Could not install chromium: the browser test fails under CI=true and is skipped otherwise."
	DJANGO_SETTINGS_MODULE=tradelearn.settings.test $(PY) -m pytest

bench: venv
	$(PY) benchmarks/run.py
