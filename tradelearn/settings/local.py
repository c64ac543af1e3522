"""The embedded default: SQLite under var/, no broker, a development secret key."""
import os

os.environ.setdefault("SECRET_KEY", "insecure-development-key-never-use-in-production")

from .base import *  # noqa: E402,F403
