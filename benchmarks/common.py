"""Benchmark plumbing: a scratch database per run, Django set up against it, timing helpers."""
import logging
import os
import resource
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_CANDLES = ROOT.parent / "shared" / "data" / "candles"
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def postgres_url(name: str) -> str:
    """Drop and create a scratch PostgreSQL database; return its URL."""
    admin = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c"]
    subprocess.run([*admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)
    subprocess.run([*admin, f"CREATE DATABASE {name}"], check=True)
    return f"{POSTGRES}/{name}"


def sqlite_url(name: str) -> str:
    path = ROOT / "var" / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def setup_django(database_url: str) -> None:
    """Point Django at `database_url`, migrate it, and leave it ready for ORM calls."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradelearn.settings.local")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def quiet_services() -> None:
    """As `manage.py replay` does by default: no line per fill, exit and retrain."""
    for name in ("trading.services", "learning.services"):
        logging.getLogger(name).setLevel(logging.WARNING)


def cpu_seconds() -> tuple[float, float]:
    """CPU time (user + system) so far of this process and of its finished children (the training workers)."""
    return tuple(
        usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def percentiles_ms(durations: list[float]) -> tuple[float, float]:
    ordered = sorted(durations)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


@contextmanager
def timed():
    result = {}
    start = time.perf_counter()
    yield result
    result["seconds"] = time.perf_counter() - start
