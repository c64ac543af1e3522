"""Fault-test plumbing: a private Redis, real Celery worker processes, candle slices and the books' invariants."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db.models import Count, Sum

from learning.models import ModelKind, ModelVersion, OnlineLearningState, TrainingRecord
from tests.conftest import BUNDLED_CANDLES, aggregates_snapshot, service_missing
from trading.models import EngineTick, PaperAccount, PaperTrade, SignalDecision
from trading.services.candles import candles_import

ROOT = Path(__file__).resolve().parents[2]
CANDLES = BUNDLED_CANDLES
CELERY = str(Path(sys.executable).with_name("celery"))
EXCHANGE = "binanceusdm"
TIMEFRAME = "1h"
# The slice of the bundled candles the fault tests trade: 301 warm-up candles, then the run.
SLICE_CANDLES = 1100
FIRST_TICK = datetime(2022, 1, 1, tzinfo=UTC) + timedelta(hours=400)


def candle_slice(tmp_path: Path, symbol: str, candles: int = SLICE_CANDLES) -> Path:
    """The first `candles` rows of a bundled file, under its own name so the importer infers the series."""
    with open(CANDLES / f"{symbol}-1h.csv") as source:
        lines = [source.readline() for _ in range(candles + 1)]
    path = tmp_path / f"{symbol}-1h.csv"
    path.write_text("".join(lines))
    return path


def import_slice(tmp_path: Path, *symbols: str, candles: int = SLICE_CANDLES) -> None:
    for symbol in symbols:
        report = candles_import(path=candle_slice(tmp_path, symbol, candles), exchange=EXCHANGE)
        assert report.loaded == candles and not report.rejected


def all_learned() -> bool:
    """Every stored outcome has been claimed by an online update, once (learned, or skipped as not fitting the schema)."""
    state = OnlineLearningState.objects.first()
    return (
        state is not None
        and not TrainingRecord.objects.filter(learned_at__isnull=True).exists()
        and state.samples_learned + state.records_skipped == TrainingRecord.objects.count()
    )


def tick_times(hours: int, step_hours: int) -> list[datetime]:
    """The `now` of each queued tick: the first candle, then every `step_hours` up to `hours` later."""
    return [FIRST_TICK + timedelta(hours=offset) for offset in range(0, hours + 1, step_hours)]


# --- a Redis of our own -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A throw-away redis-server on loopback: the fault tests stop and start it, never the shared one."""

    def __init__(self, directory: Path):
        self.port = _free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed: the fault tests run a Redis of their own")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- Celery workers as real processes -----------------------------------------------------------


@dataclass
class Workers:
    """Celery worker processes on the test database and a private broker; every one is stopped at teardown."""

    env: dict
    broker_url: str
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    starts: Counter = field(default_factory=Counter)

    def start(self, name: str, queues: list[str], **environment: str) -> None:
        self.starts[name] += 1
        log = open(self.log_dir / f"{name}-{self.starts[name]}.log", "w")
        self.processes[name] = subprocess.Popen(
            [
                CELERY, "-A", "tradelearn", "worker", "--pool=solo", "-Q", ",".join(queues), "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info",
            ],
            cwd=ROOT, env={**self.env, **environment}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill(self, name: str) -> None:
        """SIGKILL, as a crashed machine or the OOM killer would: no shutdown code runs."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob("*.log")))

    def send(self, task: str, *args, queue: str, **kwargs) -> None:
        """Queue a task by name on the private broker (the test process itself has no broker: it runs tasks eagerly)."""
        with Celery("sender", broker=self.broker_url, set_as_current=False) as app:
            app.send_task(task, args=args, kwargs=kwargs, queue=queue)

    def wait_for(self, condition, *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.3)
        pytest.fail(f"timed out waiting for {what}; worker logs (end):\n{self.log()[-6000:]}")

    def redelivered_task_ids(self) -> set[str]:
        """Task ids some worker received more than once: a killed worker's task handed to the next."""
        received = Counter(re.findall(r"Task [\w.]+\[([0-9a-f-]+)\] received", self.log()))
        return {task_id for task_id, count in received.items() if count > 1}


@pytest.fixture
def workers(subprocess_env, own_redis, tmp_path):
    env = {
        **subprocess_env,
        "DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings",
        "CELERY_BROKER_URL": own_redis.url,
        "PYTHONUNBUFFERED": "1",
    }
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    pool = Workers(env=env, broker_url=own_redis.url, log_dir=log_dir)
    try:
        yield pool
    finally:
        pool.stop_all()


def queue_name() -> str:
    return f"ticks-{uuid.uuid4().hex[:10]}"


# --- what must hold of the books, whatever happened ---------------------------------------------

TRADE_FIELDS = (
    "symbol", "side", "is_shadow", "status", "entry_time", "entry_price", "quantity", "fees",
    "exit_time", "exit_price", "exit_reason", "net_pnl", "pnl_pct",
)  # fmt: skip


def books(account: PaperAccount) -> dict:
    """An account's trades (in entry order) and balance: what a run with faults must reproduce exactly."""
    trades = PaperTrade.objects.filter(account=account).order_by("entry_time", "symbol", "is_shadow", "side")
    return {
        "trades": [tuple(row) for row in trades.values_list(*TRADE_FIELDS)],
        "balance": PaperAccount.objects.get(pk=account.pk).current_balance,
    }


def expected_ticks(symbol: str, start: datetime, end: datetime) -> int:
    from trading.models import Candle

    return Candle.objects.filter(exchange=EXCHANGE, symbol=symbol, timeframe=TIMEFRAME, open_time__gte=start, open_time__lte=end).count()


def ticks_done(account: PaperAccount, symbol: str) -> int:
    return EngineTick.objects.filter(account=account, symbol=symbol, completed_at__isnull=False).count()


def assert_books_hold(account: PaperAccount) -> None:
    """One decision per candle, one trade per decision, one outcome per closed trade, and a balance that adds up."""
    account = PaperAccount.objects.get(pk=account.pk)
    assert not EngineTick.objects.filter(account=account, completed_at__isnull=True).exists()
    doubled = (
        SignalDecision.objects.filter(account=account).values("symbol", "candle_time").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not doubled.exists(), list(doubled)
    trades = PaperTrade.objects.filter(account=account)
    per_candle = trades.values("symbol", "entry_time", "is_shadow").annotate(n=Count("id")).filter(n__gt=1)
    assert not per_candle.exists(), list(per_candle)
    closed = trades.filter(status=PaperTrade.Status.CLOSED)
    trade_ids = {f"acct{account.pk}-trade{pk}" for pk in closed.values_list("pk", flat=True)}
    stored = Counter(TrainingRecord.objects.filter(trade_id__startswith=f"acct{account.pk}-").values_list("trade_id", flat=True))
    assert set(stored) == trade_ids and set(stored.values()) <= {1}
    real = trades.filter(is_shadow=False)
    closed_net = real.filter(status=PaperTrade.Status.CLOSED).aggregate(total=Sum("net_pnl"))["total"] or Decimal(0)
    open_entry_fees = real.filter(status=PaperTrade.Status.OPEN).aggregate(total=Sum("fees"))["total"] or Decimal(0)
    assert account.current_balance == account.starting_balance + closed_net - open_entry_fees


def assert_rebuild_equals_incremental(*, float_tolerance: float = 0.0) -> None:
    """Rebuilding the five aggregates from the records changes nothing: no outcome was counted twice or missed.

    Counts and money sums must match exactly; with concurrent stores float figures may differ in
    their last bits (the README's note on lock order), which `float_tolerance` allows.
    """
    from learning.services.aggregates import aggregates_rebuild

    incremental = aggregates_snapshot()
    aggregates_rebuild()
    rebuilt = aggregates_snapshot()
    assert rebuilt.keys() == incremental.keys()
    for table, rows in incremental.items():
        assert rebuilt[table].keys() == rows.keys(), table
        for key, values in rows.items():
            for name, value in values.items():
                other = rebuilt[table][key][name]
                if isinstance(value, float) and float_tolerance:
                    assert other == pytest.approx(value, rel=float_tolerance, abs=1e-12), (table, key, name)
                else:
                    assert other == value, (table, key, name)


def assert_one_active_version_per_kind() -> None:
    for kind in ModelKind.values:
        assert ModelVersion.objects.filter(kind=kind, active=True).count() <= 1
