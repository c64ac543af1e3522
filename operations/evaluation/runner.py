"""Evaluation runs: each replay in its own child process on a freshly migrated SQLite database, so none shares learning."""
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# A child must learn from nothing but its own replay: no shared broker, cache or result store.
_SHARED_SERVICE_VARIABLES = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL", "REDIS_URL")
_STDERR_TAIL = 4000


class EvaluationError(RuntimeError):
    """A run could not be completed (its child process failed)."""


@dataclass(frozen=True, kw_only=True)
class Window:
    """What is replayed: candles of `symbols` from `candles_dir`, days `start` to `end` inclusive (UTC)."""

    candles_dir: Path
    symbols: tuple[str, ...]
    timeframe: str
    start: date
    end: date
    engines: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    name: str
    title: str
    learning: bool
    transfer_weight: float | None = None  # None: LEARNING_TRANSFER_WEIGHT as configured
    shuffle_labels_seed: int | None = None  # the control: see operations.evaluation.shuffle


# The weight at which the transfer comparison switches cross-system transfer on when it is configured off.
TRANSFER_COMPARISON_WEIGHT = 0.5

BASELINE = RunSpec(name="baseline", title="baseline: technical signals only, fixed size", learning=False)
LEARNING = RunSpec(name="learning", title="learning: models, recommendations, sizing", learning=True)
TRANSFER_OFF = RunSpec(name="transfer_off", title="learning with cross-system transfer off", learning=True, transfer_weight=0.0)
TRANSFER_ON = RunSpec(
    name="transfer_on", title="learning with cross-system transfer on", learning=True, transfer_weight=TRANSFER_COMPARISON_WEIGHT
)


def transfer_comparison() -> RunSpec:
    """Learning with cross-system transfer switched the other way from LEARNING_TRANSFER_WEIGHT: is it earning its place?"""
    return TRANSFER_OFF if settings.LEARNING_TRANSFER_WEIGHT > 0 else TRANSFER_ON


def default_runs(engines) -> list[RunSpec]:
    """Baseline and learning; with both engines also learning with transfer switched (alone it would equal learning)."""
    return [BASELINE, LEARNING, transfer_comparison()] if len(set(engines)) > 1 else [BASELINE, LEARNING]


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), *args]
    return subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True)


def _child_env(database: Path, spec: RunSpec | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in _SHARED_SERVICE_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE, DATABASE_URL=f"sqlite:///{database.resolve()}")
    if spec is not None and spec.transfer_weight is not None:
        env["LEARNING_TRANSFER_WEIGHT"] = repr(spec.transfer_weight)
    return env


def _check(result: subprocess.CompletedProcess, what: str) -> None:
    if result.returncode != 0:
        raise EvaluationError(f"{what} failed (exit {result.returncode}):\n{result.stderr[-_STDERR_TAIL:]}")


def migrated_template(workdir: Path) -> Path:
    """An empty, migrated database that every run starts from as a copy (migrating once, not per run)."""
    template = workdir / "template.sqlite3"
    _check(_manage("migrate", "--no-input", "-v", "0", env=_child_env(template)), "migrating the template database")
    return template


def run_one(*, spec: RunSpec, window: Window, template: Path, workdir: Path) -> dict:
    """Replay `window` as `spec` says in a child process on a copy of `template`; return its exported rows."""
    database, out = workdir / f"{spec.name}.sqlite3", workdir / f"{spec.name}.json"
    shutil.copyfile(template, database)
    args = [
        "evaluation_run",
        f"--out={out}",
        f"--candles-dir={window.candles_dir}",
        f"--symbols={','.join(window.symbols)}",
        f"--timeframe={window.timeframe}",
        f"--from={window.start.isoformat()}",
        f"--to={window.end.isoformat()}",
        f"--engines={','.join(window.engines)}",
    ]
    if not spec.learning:
        args.append("--no-learning")
    if spec.shuffle_labels_seed is not None:
        args.append(f"--shuffle-labels-seed={spec.shuffle_labels_seed}")
    started = time.perf_counter()
    result = _manage(*args, env=_child_env(database, spec))
    _check(result, f"run {spec.name}")
    payload = json.loads(out.read_text())
    payload.update(name=spec.name, title=spec.title, learning=spec.learning, seconds=time.perf_counter() - started, replay_output=result.stdout)
    return payload


def run_all(
    *, window: Window, runs: list[RunSpec], workdir: Path, jobs: int = 1, on_done: Callable[[dict], None] | None = None
) -> dict[str, dict]:
    """Every run of `runs` (at most `jobs` at once), by name, in the order given."""
    template = migrated_template(workdir)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {spec.name: pool.submit(run_one, spec=spec, window=window, template=template, workdir=workdir) for spec in runs}
        payloads = {}
        for name, future in futures.items():
            payloads[name] = future.result()
            logger.debug("run %s finished in %.1f s", name, payloads[name]["seconds"])
            if on_done is not None:
                on_done(payloads[name])
    return payloads
