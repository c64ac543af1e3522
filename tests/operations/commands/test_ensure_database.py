"""ensure_database: `make up` against a PostgreSQL server without the database creates it, in one line, not a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[3]
MISSING = f"{os.environ.get('TEST_DATABASE_NAME', 'test_tradelearn')}_fresh"


def run(*args: str, database_url: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="tradelearn.settings.test", DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def missing_database(django_db_setup):
    from django.db import connection

    db = connection.settings_dict
    server = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    admin = psycopg.connect(f"{server}/postgres", autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{MISSING}"')
    yield f"{server}/{MISSING}"
    admin.execute(f'DROP DATABASE IF EXISTS "{MISSING}"')
    admin.close()


def test_a_missing_database_is_created_then_left_alone(missing_database):
    # Before: `manage.py migrate` on it is a long traceback ending in 'database ... does not exist'.
    first = run("ensure_database", database_url=missing_database)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"Created the PostgreSQL database '{MISSING}'."
    again = run("ensure_database", database_url=missing_database)
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""


def test_an_unreachable_server_is_one_line():
    result = run("ensure_database", database_url="postgres://postgres@127.0.0.1:1/tradelearn")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("CommandError: Cannot open the database 'tradelearn':")
    assert len(result.stderr.strip().splitlines()) == 1


def test_make_up_ensures_the_database_before_migrating():
    recipe = (ROOT / "Makefile").read_text().split("\nup:", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("manage.py ensure_database") < recipe.index("manage.py migrate")
