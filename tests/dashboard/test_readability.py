"""The dashboard reads at a glance: decisions by time across accounts with their reasoning folded to one line,
the vocabulary of the README, no signed zeros, weekly outcomes, whole-number version ticks, and an account that
stopped trading says why."""
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from dashboard import charts, selectors
from dashboard.templatetags.dashboard_format import money, rate, score
from learning.models import TrainingRecord
from trading.models import PaperAccount, PaperTrade, SignalDecision

pytestmark = pytest.mark.django_db


def test_decisions_of_every_account_are_sorted_by_candle_time(dashboard_data):
    # A decision stored later (higher id) for another account, about an older candle, sorts by its candle.
    newest = SignalDecision.objects.order_by("-candle_time").first()
    older = SignalDecision.objects.create(
        account=PaperAccount.objects.get(name="desk-paper"), symbol="BTCUSDT", timeframe="1h",
        candle_time=newest.candle_time - timedelta(hours=1), strategy_type="manual", side="long", technical_score=0.6,
        combined_confidence=0.6, market_regime="ranging", volatility_regime="low", taken=False,
        recommendation={"reasoning": "Win rate 40.0% rests on 3 trades. Expected net -0.10% per trade → skip."},
    )  # fmt: skip
    rows = selectors.recent_decisions(limit=5)
    times = [row.candle_time for row in rows]
    assert times == sorted(times, reverse=True)
    assert older.pk in [row.id for row in rows] and rows[0].id != older.pk


def test_reasoning_is_one_line_with_the_rest_on_demand(dashboard_data, admin_client):
    html = admin_client.get(reverse("dashboard:index")).content.decode()
    table = html[html.index('id="decisions-table"') : html.index("</table>", html.index('id="decisions-table"'))]
    cells = re.findall(r'<td class="reasoning">(.*?)</td>', table, flags=re.S)
    assert len(cells) == selectors.RECENT_DECISIONS
    for cell in cells:
        assert cell.startswith("<details><summary>") and "</summary><p>" in cell
    # The baseline's reasoning is one sentence; a refused one leads with why it was not opened.
    refused = next(row for row in selectors.recent_decisions(limit=500) if row.outcome == "taken, refused by risk limits")
    assert refused.headline.startswith("not opened:") and refused.reasoning in refused.explanation


def test_counts_use_the_readme_words(dashboard_data, admin_client):
    html = admin_client.get(reverse("dashboard:index")).content.decode()
    counts = selectors.decision_counts()
    for name in ("signals", "taken", "opened", "refused", "skipped"):
        assert f'<strong id="decisions-{name}">{counts[name]}</strong>' in html
    assert "taken, refused by risk limits" in html
    opened_real = PaperTrade.objects.filter(is_shadow=False, decision__isnull=False).count()
    assert counts["opened"] == opened_real


@pytest.mark.parametrize(("value", "shown"), [(-0.00001, "0.0%"), (-0.0004, "0.0%"), (-0.0006, "-0.1%"), (0.0, "0.0%")])
def test_no_signed_zero_percent(value, shown):
    assert rate(value) == shown


def test_no_signed_zero_money_or_score():
    assert money(-0.001) == "0.00" and money(-0.01) == "-0.01" and score(-0.0001) == "0.000"


def test_outcomes_are_a_weekly_series(dashboard_data):
    progress = selectors.learning_progress()
    weekly = selectors.outcomes_by_week(progress)
    assert sum(row.outcomes for row in weekly) == TrainingRecord.objects.count()
    assert all(row.week.weekday() == 0 for row in weekly)
    assert len({row.week for row in weekly}) < len({row.day for row in progress}) / 5
    assert "outcomes / week" in charts.learning_chart(progress)


def test_version_ticks_are_whole_numbers(dashboard_data):
    versions = [
        selectors.VersionRow(
            id=index, version=f"batch-{index:04d}", kind="batch", sequence=index, active=index == 7, is_interim=False,
            samples_seen=100 * index, created_at=None, note="", metrics={"log_loss": 0.7 - index / 1000},
        )  # fmt: skip
        for index in range(1, 20)
    ]
    svg = charts.model_chart(versions)
    axis = svg[svg.index('id="matplotlib.axis_1"') : svg.index('id="matplotlib.axis_2"')]
    ticks = re.findall(r">\s*([0-9.]+)\s*</text>", axis)
    assert ticks and all(re.fullmatch(r"\d+", tick) for tick in ticks), ticks


def test_an_account_that_stopped_trading_says_why(dashboard_data, admin_client):
    account = PaperAccount.objects.get(name="replay-paper")
    last_entry = PaperTrade.objects.filter(account=account, is_shadow=False).latest("entry_time").entry_time
    later = [last_entry + timedelta(days=40, hours=hour) for hour in range(6)]
    for index, moment in enumerate(later):
        SignalDecision.objects.create(
            account=account, symbol="BTCUSDT", timeframe="1h", candle_time=moment, strategy_type="trend_momentum",
            side="long", technical_score=0.6, combined_confidence=0.55, market_regime="ranging", volatility_regime="low",
            taken=False, recommendation={"reasoning": "Expected net -0.20% per trade → skip."},
        )  # fmt: skip
    since = SignalDecision.objects.filter(account=account, candle_time__gte=last_entry)
    row = next(row for row in selectors.accounts(open_trades=[]) if row.name == account.name)
    assert row.stopped is not None
    assert row.stopped.why.startswith(f"No trade opened since {last_entry:%Y-%m-%d}: of its {since.count()} signals to {later[-1]:%Y-%m-%d}")
    assert f"the learner skipped {since.filter(taken=False).count()} (expected net P&L after fees" in row.stopped.why
    html = admin_client.get(reverse("dashboard:index")).content.decode()
    assert f'<tr class="stopped" data-stopped="{account.name}">' in html
    assert f"no trade since {last_entry:%Y-%m-%d}" in html  # on the equity chart too
    # An account still trading says nothing of the kind.
    assert all(other.stopped is None for other in selectors.accounts(open_trades=[]) if other.name == "desk-paper")
