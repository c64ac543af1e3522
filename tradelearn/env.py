"""Strict reading of configuration from the environment.

A malformed value raises ImproperlyConfigured naming the variable; it is never silently
replaced by a default (django-environ alone would read DEBUG=maybe as False).
"""
import math
import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

_NOT_SET = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, default):
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _NOT_SET:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return None
    return value


def env_str(name: str, default=_NOT_SET) -> str:
    value = _raw(name, default)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name, default)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no, on/off).")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    value = _raw(name, default)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if not math.isfinite(number):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number.")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(f"{name}={number} must lie in [{minimum}, {maximum}].")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name, default)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_database(name: str, default: str, *, base_dir: Path) -> dict:
    url = env_str(name, default)
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(f"{name}={url!r} is not a valid database URL: {exc}") from None
    if not config.get("ENGINE", "").startswith("django.db.backends."):
        raise ImproperlyConfigured(f"{name}={url!r} names no known database engine (use postgres:// or sqlite:///).")
    if config["ENGINE"] == "django.db.backends.sqlite3" and config["NAME"] != ":memory:":
        path = Path(config["NAME"])
        path = path if path.is_absolute() else base_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/ yet
        config["NAME"] = str(path)
    return config


def env_cache(name: str, default: str | None) -> dict:
    url = env_str(name, default)
    if url is None:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if url.startswith(("redis://", "rediss://")):
        return {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    try:
        return environ.Env.cache_url_config(url)
    except Exception as exc:
        raise ImproperlyConfigured(f"{name}={url!r} is not a valid cache URL: {exc}") from None


def env_url(name: str, default: str | None, *, schemes: tuple[str, ...]) -> str | None:
    url = env_str(name, default)
    if url is not None and not url.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ImproperlyConfigured(f"{name}={url!r} must start with one of {', '.join(schemes)}.")
    return url


def env_datetime(name: str, default: None = None):
    """An ISO 8601 date or time, read as UTC when it names no zone (e.g. 2022-03-01 or 2022-03-01T12:00Z)."""
    from datetime import UTC, datetime

    value = _raw(name, default)
    if value is None:
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an ISO 8601 date or time (e.g. 2022-03-01).") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
