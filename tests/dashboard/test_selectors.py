"""Dashboard selectors: every figure equals what the database holds, recomputed here row by row."""
from collections import defaultdict

import pytest
from django.db.models import Sum

from dashboard import selectors
from learning.buckets import bucket_index, bucket_label
from learning.models import FeatureImportance, MarketRegimeStats, ModelVersion, SignalQuality, TrainingRecord
from tests.trading.accounting.helpers import account_summaries
from trading.models import Candle, PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_figures
from trading.services.summaries import account_summaries_rebuild

pytestmark = pytest.mark.django_db


def test_learning_progress_counts_every_outcome_per_day_with_a_rolling_win_rate(dashboard_data):
    days = defaultdict(lambda: [0, 0, 0])
    for system, exit_time, success, shadow in TrainingRecord.objects.values_list("system_type", "exit_time", "success", "is_shadow"):
        tally = days[(system, exit_time.date())]
        tally[0] += 1
        tally[1] += success
        tally[2] += shadow
    progress = selectors.learning_progress(rolling_days=5)
    assert [(row.system_type, row.day, row.outcomes, row.wins, row.shadow) for row in progress] == [
        (system, day, *tally) for (system, day), tally in sorted(days.items())
    ]
    for system in ("paper_trading", "profit_scraping"):
        rows = [row for row in progress if row.system_type == system]
        assert len(rows) > 5
        for index, row in enumerate(rows):
            window = rows[max(0, index - 4) : index + 1]
            assert row.rolling_win_rate == sum(r.wins for r in window) / sum(r.outcomes for r in window)
    monthly = selectors.outcomes_by_month(progress)
    assert sum(row.outcomes for row in monthly) == TrainingRecord.objects.count()
    last_day = [row for row in progress if row.system_type == "profit_scraping"][-1]
    assert [row for row in monthly if row.system_type == "profit_scraping"][-1].rolling_win_rate == last_day.rolling_win_rate
    totals = {row.system_type: row for row in selectors.system_totals(progress)}
    assert totals["profit_scraping"].outcomes == TrainingRecord.objects.filter(system_type="profit_scraping").count()
    assert totals["paper_trading"].wins == TrainingRecord.objects.filter(system_type="paper_trading", success=True).count()


def test_calibration_by_model_score_buckets_the_stored_scores(dashboard_data):
    buckets = defaultdict(list)
    for score, success in TrainingRecord.objects.filter(ml_score__isnull=False).values_list("ml_score", "success"):
        buckets[bucket_index(score)].append((score, success))
    expected = [
        (bucket_label(index), len(rows), sum(s for s, _ in rows) / len(rows), sum(w for _, w in rows) / len(rows))
        for index, rows in sorted(buckets.items())
    ]
    actual = [(b.bucket, b.count, b.predicted, b.realised) for b in selectors.calibration_by_model_score()]
    assert [row[:2] for row in actual] == [row[:2] for row in expected] and len(actual) >= 5
    for (_, _, predicted, realised), (_, _, want_predicted, want_realised) in zip(actual, expected):
        assert predicted == pytest.approx(want_predicted) and realised == want_realised


def test_calibration_by_confidence_pools_signal_quality_over_signal_types(dashboard_data):
    pooled = defaultdict(lambda: [0, 0, 0.0])
    for row in SignalQuality.objects.all():
        pooled[row.confidence_bucket][0] += row.sample_size
        pooled[row.confidence_bucket][1] += row.successes
        pooled[row.confidence_bucket][2] += row.sum_confidence
    actual = selectors.calibration_by_confidence()
    assert [(b.bucket, b.count) for b in actual] == [(bucket, n) for bucket, (n, _, _) in sorted(pooled.items()) if n]
    for bucket in actual:
        n, successes, confidence = pooled[bucket.bucket]
        assert bucket.realised == successes / n and bucket.predicted == pytest.approx(confidence / n)
    assert sum(b.count for b in actual) == TrainingRecord.objects.count()


def test_accounts_agree_with_account_figures_and_the_trades(dashboard_data):
    rows = {row.name: row for row in selectors.accounts(open_trades=selectors.open_trades())}
    assert set(rows) == set(PaperAccount.objects.values_list("name", flat=True)) == {"replay-paper", "desk-paper"}
    for account in PaperAccount.objects.all():
        row, figures = rows[account.name], account_figures(account=account)
        assert (row.realised_pnl, row.unrealised_pnl, row.equity) == (figures.realised_pnl, figures.unrealised_pnl, figures.equity)
        assert (row.closed_trades, row.winning_trades, row.open_trades) == (figures.closed_trades, figures.winning_trades, figures.open_trades)
        assert row.current_balance == account.current_balance
    assert rows["desk-paper"].open_trades == 2 and rows["desk-paper"].unrealised_pnl != 0


def test_equity_curve_is_the_starting_balance_plus_cumulative_closed_real_pnl(dashboard_data):
    account = dashboard_data
    curve = next(row.curve for row in selectors.accounts(open_trades=[]) if row.name == account.name)
    closed = PaperTrade.objects.filter(account=account, is_shadow=False, status="closed")
    by_day = defaultdict(list)
    for exit_time, pnl in closed.values_list("exit_time", "net_pnl"):
        by_day[exit_time.date()].append(pnl)
    equity, expected = account.starting_balance, []
    for day, pnls in sorted(by_day.items()):
        equity += sum(pnls)
        expected.append((day, len(pnls), sum(1 for pnl in pnls if pnl > 0), sum(pnls), equity))
    assert [(p.day, p.trades, p.wins, p.net_pnl, p.equity) for p in curve] == expected
    assert curve[-1].equity == account.starting_balance + closed.aggregate(total=Sum("net_pnl"))["total"]
    months = selectors.equity_by_month(curve)
    assert sum(month.trades for month in months) == closed.count() and months[-1].equity == curve[-1].equity


def test_open_trades_are_marked_to_the_last_stored_close(dashboard_data):
    last_close = Candle.objects.filter(symbol="BTCUSDT").order_by("-open_time").values_list("close", flat=True).first()
    rows = selectors.open_trades()
    assert len(rows) == PaperTrade.objects.filter(status="open", is_shadow=False).count() == 2
    for row in rows:
        trade = PaperTrade.objects.get(pk=row.id)
        sign = 1 if trade.side == "long" else -1
        assert row.mark_price == last_close and row.account_id == trade.account_id
        assert row.unrealised_pnl == sign * trade.quantity * (last_close - trade.entry_price)


def test_recent_decisions_are_the_newest_with_their_reasoning(dashboard_data):
    rows = selectors.recent_decisions(limit=10)
    newest = list(SignalDecision.objects.order_by("-candle_time", "-pk")[:10])
    assert [row.id for row in rows] == [decision.pk for decision in newest]
    for row, decision in zip(rows, newest):
        assert row.explanation == decision.explanation and row.taken == decision.taken
        trade = PaperTrade.objects.filter(decision=decision).first()
        assert row.trade_id == (trade.pk if trade else None)
    taken = SignalDecision.objects.filter(taken=True)
    counts = selectors.decision_counts()
    assert counts == {
        "signals": SignalDecision.objects.count(),
        "taken": taken.count(),
        "opened": taken.filter(trade__is_shadow=False).count(),
        "refused": taken.filter(trade__is_shadow=True).count(),
        "not_filled": taken.filter(trade__isnull=True).count(),
        "skipped": SignalDecision.objects.filter(taken=False).count(),
    }
    # The baseline replay takes every signal: some are refused by the account's risk limits.
    assert counts["refused"] > 0 and counts["opened"] + counts["refused"] + counts["not_filled"] == counts["taken"]


def test_model_versions_put_the_active_first_with_their_metrics(dashboard_data):
    rows = selectors.model_versions()
    stored = {version.version: version for version in ModelVersion.objects.all()}
    assert {row.version for row in rows} == set(stored) and rows[0].active
    for row in rows:
        metrics = stored[row.version].metrics
        scores = metrics.get("ensemble", metrics) if row.kind == "online" else metrics
        assert row.metrics["log_loss"] == scores.get("log_loss") and row.active == stored[row.version].active
    assert next(row for row in rows if row.kind == "batch").metrics["log_loss"] is not None


def test_regimes_and_features_are_the_learned_rows(dashboard_data):
    regimes = selectors.regimes()
    stored = list(MarketRegimeStats.objects.order_by("market_regime", "volatility_regime"))
    assert [(r.market_regime, r.volatility_regime, r.trades, r.best_strategy) for r in regimes] == [
        (s.market_regime, s.volatility_regime, s.total_trades_in_regime, s.best_strategy) for s in stored
    ]
    assert all(r.win_rate == s.winning_trades / s.total_trades_in_regime for r, s in zip(regimes, stored))

    correlations = selectors.feature_correlations(limit=5)
    top = FeatureImportance.objects.exclude(strategy_type="*").order_by("-importance_score", "feature_name", "strategy_type")[:5]
    assert [(r.feature_name, r.strategy_type, r.correlation_with_success) for r in correlations] == [
        (f.feature_name, f.strategy_type, f.correlation_with_success) for f in top
    ]
    batch = ModelVersion.objects.get(kind="batch", active=True)
    importance = selectors.model_importance(limit=len(batch.feature_importance))
    assert {row.feature_name: row.model_importance for row in importance} == pytest.approx(batch.feature_importance)


def test_the_summaries_the_replay_and_trade_open_keep_equal_a_rebuild(dashboard_data):
    kept = account_summaries()
    assert kept[0] and kept[1]  # the replay wrote both
    account_summaries_rebuild()
    assert account_summaries() == kept
