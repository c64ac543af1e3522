# tradelearn's entry points. `make run` is the main job, `make test` the test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Django 6 needs Python 3.12+: take the first interpreter on this machine that is new enough.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 $$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && { echo $$p; break; }; done)

ENGINES ?= paper,scraping

.PHONY: venv run test bench migrate

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
	$(PY) manage.py import_candles data/candles/*.csv --exchange binanceusdm
	$(PY) manage.py replay --engines $(ENGINES) --from 2022-01-15 --to 2023-12-31 --skip-done
	$(PY) manage.py learning_summary

# The whole suite on PostgreSQL (and Redis where a test needs it).
test: venv
	DJANGO_SETTINGS_MODULE=tradelearn.settings.test $(PY) -m pytest

bench: venv
	$(PY) benchmarks/run.py
