"""Configuration: strict parsing that names the bad variable, secrets required in production."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tradelearn import env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("DEBUG", "maybe", lambda: env.env_bool("DEBUG", False)),
        ("CONN_MAX_AGE", "ten", lambda: env.env_int("CONN_MAX_AGE", 60)),
        ("LEARNING_PRIOR_STRENGTH", "nan", lambda: env.env_float("LEARNING_PRIOR_STRENGTH", 20.0)),
        ("LEARNING_KELLY_FRACTION", "3", lambda: env.env_float("LEARNING_KELLY_FRACTION", 0.25, minimum=0, maximum=1)),
        ("SCRAPING_MIN_WICK", "1.5", lambda: env.env_float("SCRAPING_MIN_WICK", 0.5, minimum=0, maximum=1)),
        ("DATABASE_URL", "nosuchdb://x", lambda: env.env_database("DATABASE_URL", "sqlite:///x", base_dir=ROOT)),
        ("CELERY_BROKER_URL", "http://x", lambda: env.env_url("CELERY_BROKER_URL", None, schemes=("redis",))),
    ],
)
def test_a_malformed_value_names_the_variable(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        read()


def test_well_formed_values_are_read(monkeypatch):
    monkeypatch.setenv("DEBUG", "on")
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example")
    assert env.env_bool("DEBUG", False) is True
    assert env.env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]


def run_django(settings_module: str, *args: str, **environment: str) -> subprocess.CompletedProcess:
    child_env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "DEBUG", "DATABASE_URL")}
    child_env.update(DJANGO_SETTINGS_MODULE=settings_module, **environment)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_a_secret_key():
    result = run_django("tradelearn.settings.production", "check")
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_start_up_fails_naming_a_malformed_variable():
    result = run_django("tradelearn.settings.local", "check", DEBUG="perhaps")
    assert result.returncode != 0 and "DEBUG='perhaps' is not a boolean" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = run_django(
        "tradelearn.settings.production",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-long-random-production-secret-" + "x7Qp2" * 10,
        ALLOWED_HOSTS="tradelearn.example",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_suite_on_postgresql(settings):
    if os.environ.get("CI", "").lower() == "true":
        assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
