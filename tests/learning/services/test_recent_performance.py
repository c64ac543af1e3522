"""RecentPerformance: the rolling windows of the strategy's recent record, kept with the aggregates and read at decision time."""
import random
from datetime import UTC, datetime, timedelta

import pytest

from learning.models import ALL_SYMBOLS, RecentPerformance, TrainingRecord
from learning.recent import RecentOutcome, entry_of, recent_record, window_figures, window_outcomes
from learning.selectors import recent_record_features
from learning.services import store_trade_outcomes
from learning.services.session import LearningSession
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db
START = datetime(2022, 1, 1, tzinfo=UTC)


def _outcomes(count: int, seed: int):
    """Outcomes on hourly candle times, several exiting in one candle, arriving out of exit order."""
    rng = random.Random(seed)
    outcomes = []
    for _ in range(count):
        entry = START + timedelta(hours=rng.randrange(0, 24 * 15))
        outcomes.append(TradeOutcomeFactory(entry_time=entry, exit_time=entry + timedelta(hours=rng.randrange(1, 30))))
    return outcomes


def _all_records() -> list[RecentOutcome]:
    return [
        RecentOutcome(system_type=system, symbol=symbol, entry_time=entry, exit_time=exit, pnl_pct=float(pnl), success=success)
        for system, symbol, entry, exit, pnl, success in TrainingRecord.objects.values_list(
            "system_type", "symbol", "entry_time", "exit_time", "pnl_pct", "success"
        )
    ]


def test_decision_time_features_from_the_windows_equal_those_from_every_record():
    outcomes = _outcomes(1200, seed=1)
    for start in range(0, 1200, 100):
        store_trade_outcomes(outcomes=outcomes[start : start + 100])
    records = _all_records()
    assert any(sum(1 for r in records if r.exit_time == t) > 5 for t in {r.exit_time for r in records})  # ties in exit time
    # Late in the history the windows serve; early, a full window has too few outcomes before `at`
    # and the records are read instead: both give what the whole history gives.
    for at in (START + timedelta(hours=h) for h in (10, 60, 150, 250, 330, 400)):
        for system in ("paper_trading", "profit_scraping"):
            for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
                expected = recent_record(records, system_type=system, symbol=symbol, at=at)
                assert recent_record_features(system_type=system, symbol=symbol, at=at) == expected


def test_a_windows_figures_are_those_of_its_latest_outcomes():
    store_trade_outcomes(outcomes=_outcomes(400, seed=2))
    row = RecentPerformance.objects.get(system_type="paper_trading", symbol=ALL_SYMBOLS)
    records = sorted((r for r in _all_records() if r.system_type == "paper_trading"), key=lambda r: (r.exit_time, r.entry_time, r.symbol, r.pnl_pct, r.success))
    assert window_outcomes("paper_trading", row.window) == records[-100:]
    pnl_20, pnl_50, win_20, win_50, count = window_figures([entry_of(r) for r in records])
    assert (row.pnl_pct_20, row.pnl_pct_50, row.win_rate_20, row.win_rate_50, row.window_outcomes) == (pnl_20, pnl_50, win_20, win_50, count)
    assert row.total_outcomes == len(records) and row.last_exit_time == records[-1].exit_time
    assert row.pnl_pct_20 == pytest.approx(sum(r.pnl_pct for r in records[-20:]) / 20)


def test_a_replay_session_keeps_the_windows_in_memory_as_the_store_does():
    # As in a replay: outcomes arrive as they exit, and a decision is made with the candle's own exits in.
    outcomes = sorted(_outcomes(600, seed=3), key=lambda o: o.exit_time)
    store_trade_outcomes(outcomes=outcomes[:200])
    session = LearningSession(learning=False)
    for outcome in outcomes[200:]:
        session.observe(outcome)
    at = outcomes[-1].exit_time
    in_memory = {(s, y): session.recent_record(system_type=s, symbol=y, at=at) for s in ("paper_trading", "profit_scraping") for y in ("BTCUSDT", "ETHUSDT")}
    session.write(trade_ids={}, checkpoint=False)
    assert TrainingRecord.objects.count() == 600
    for (system, symbol), features in in_memory.items():
        assert features == recent_record_features(system_type=system, symbol=symbol, at=at)
        assert features["recent_symbol_count"] == 50


def test_one_statement_stores_keep_the_windows_the_fold_keeps_in_order_late_and_too_old():
    """Single stores on PostgreSQL take each window path of the statement: an outcome after the window's
    last (appended, the oldest dropped), one before a full window's first (dropped at once), and one in
    between (merged by the sort); ties on exit times included. After each, the rebuild folds the same."""
    from django.core.management import call_command

    from learning.services import store_trade_outcome
    from tests.conftest import aggregates_snapshot

    def store(exit_times):
        for exit_time in exit_times:
            outcome = TradeOutcomeFactory(
                system_type="paper_trading", symbol="BTCUSDT", entry_time=exit_time - timedelta(hours=3), exit_time=exit_time
            )
            store_trade_outcome(outcome=outcome)
        incremental = aggregates_snapshot()
        call_command("rebuild_learning_stats", stdout=open("/dev/null", "w"))
        assert aggregates_snapshot() == incremental
        return incremental["recent_performance_learning"]

    rng = random.Random(11)
    hours = [START + timedelta(hours=half / 2) for half in range(300)]  # two exits an hour apart, ties within
    windows = store(hours[100:250])  # in exit order: appended, the oldest dropped once full
    assert all(len(row["window"]) == 100 for row in windows.values())
    kept = {key: row["window"] for key, row in windows.items()}
    # Before the full windows' first entry: dropped, the windows unchanged.
    assert {key: row["window"] for key, row in store(rng.sample(hours[:100], 20)).items()} == kept
    store(rng.sample(hours[150:250], 20))  # within: merged by the sort
    store(hours[250:])
