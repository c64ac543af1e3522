"""Test settings: PostgreSQL (as in CI), fast password hashing."""
import os

os.environ.setdefault("SECRET_KEY", "insecure-test-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tradelearn")

from .base import *  # noqa: E402,F403
from .base import DATABASES  # noqa: E402

# Parallel runs on one machine (several checkouts) keep apart by naming their test database.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_tradelearn")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"anon": "100000/minute", "user": "100000/minute"}
# Serve static files from the apps directly: tests never run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Tests change users and tokens between requests: look every token up (a test enables the memory).
API_TOKEN_CACHE_SECONDS = 0
