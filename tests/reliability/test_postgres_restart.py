"""PostgreSQL restarted under load: workers reconnect, failed tasks retry, nothing is left half-written."""
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import service_missing
from tests.learning.learnable import store_learnable
from tests.reliability.conftest import (
    EXCHANGE,
    FIRST_TICK,
    TIMEFRAME,
    all_learned,
    assert_books_hold,
    assert_one_active_version_per_kind,
    assert_rebuild_equals_incremental,
    expected_ticks,
    import_slice,
    queue_name,
    tick_times,
    ticks_done,
)
from trading.services.accounts import account_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def postgres_cluster() -> list[str]:
    """pg_ctlcluster's version and cluster name for the server on 127.0.0.1:5432."""
    versions = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    if shutil.which("pg_ctlcluster") is None or not versions:
        service_missing("pg_ctlcluster is not available: this test restarts the local PostgreSQL")
    return [versions[-1].parent.name, "main"]


def pg_ctl(action: str, cluster: list[str]) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, action], check=True, timeout=60, capture_output=True)


def test_workers_reconnect_and_retry_after_postgres_restarts(tmp_path, workers):
    cluster = postgres_cluster()
    import_slice(tmp_path, *SYMBOLS, candles=900)
    account = account_create(name="restart", system_type="paper_trading", starting_balance=Decimal("10000"))
    store_learnable(1500, seed=5)
    queue = queue_name()
    times = tick_times(360, 12)
    for now in times:
        for symbol in SYMBOLS:
            workers.send("trading.tasks.engine_tick_task", account.pk, symbol, TIMEFRAME, EXCHANGE, now=now.isoformat(), queue=queue)
    # Small chunks keep an online update in flight too when the server goes down.
    env = {"LEARNING_CHECKPOINT_EVERY": "40"}
    workers.send("learning.tasks.online_update_task", queue="celery")
    workers.start("ticker", [queue], **env)
    workers.start("learner", ["celery"], **env)
    workers.wait_for(lambda: ticks_done(account, "BTCUSDT") >= 40, timeout=120, what="ticks before the restart")

    connections.close_all()
    try:
        pg_ctl("restart", cluster)
    finally:
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"], timeout=30).returncode != 0:
            pg_ctl("start", cluster)  # never leave the shared server down
    connections.close_all()  # this process's connection died with the server too

    totals = {symbol: expected_ticks(symbol, FIRST_TICK, times[-1]) for symbol in SYMBOLS}

    workers.wait_for(
        lambda: all(ticks_done(account, symbol) == totals[symbol] for symbol in SYMBOLS), timeout=240, what="every candle ticked"
    )
    workers.send("learning.tasks.online_update_task", queue="celery")
    workers.wait_for(all_learned, timeout=180, what="every outcome learned")
    workers.stop_all()

    log = workers.log()
    assert "retry: Retry in" in log, "no task failed and retried: the restart missed the load"
    assert_books_hold(account)
    assert_one_active_version_per_kind()
    assert_rebuild_equals_incremental()
