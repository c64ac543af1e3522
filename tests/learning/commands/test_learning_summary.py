"""manage.py learning_summary: real and shadow trades apart, "recent" relative to the data, figures with their meaning."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from learning.services import store_trade_outcomes
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db

# Long before today: a replay of 2023 read in 2026.
LAST_EXIT = datetime(2023, 12, 31, 12, tzinfo=UTC)


def outcomes(n: int, *, shadow: bool, wins: int, days_before_last: int, system: str = "paper_trading"):
    exit_time = LAST_EXIT - timedelta(days=days_before_last)
    return [
        TradeOutcomeFactory(
            system_type=system, is_shadow=shadow, side="long", move_pct=Decimal("0.02") if index < wins else Decimal("-0.02"),
            entry_time=exit_time - timedelta(hours=5), exit_time=exit_time,
        )  # fmt: skip
        for index in range(n)
    ]


def summary() -> str:
    out = StringIO()
    call_command("learning_summary", stdout=out)
    return out.getvalue()


def test_real_and_shadow_trades_are_counted_apart_and_recent_means_the_last_days_of_data():
    store_trade_outcomes(
        outcomes=[
            *outcomes(10, shadow=False, wins=4, days_before_last=200),
            *outcomes(30, shadow=True, wins=9, days_before_last=200),
            *outcomes(6, shadow=False, wins=3, days_before_last=3),
            *outcomes(8, shadow=True, wins=2, days_before_last=0),
        ]
    )
    text = summary()
    assert "Training records: 54 outcomes (16 real trades, 38 shadow trades)" in text
    paper = next(line for line in text.splitlines() if line.strip().startswith("paper_trading"))
    assert "real trades     16  win rate  43.8%" in paper  # 7 of 16, shadow outcomes not mixed in
    assert "shadow trades     38  win rate  28.9%" in paper  # 11 of 38
    assert "last 30 days to 2023-12-31: 6 real (50.0% won), 8 shadow" in paper


def test_each_figure_says_what_it_is():
    store_trade_outcomes(outcomes=outcomes(12, shadow=False, wins=5, days_before_last=1))
    text = summary()
    assert "percentage points" in text
    assert "regime win-rate correlation: n/a (Pearson, −1..+1, over the 0 regimes both systems traded)" in text
    assert "transfer skill paper→scraping n/a" in text and "above 0 the history transfers" in text
    assert "Calibration gap: " in text and "mean |realised − promised win rate|" in text
