"""The evaluation's figures against hand computations."""
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from operations.evaluation import metrics


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


def test_profit_factor_is_gross_profit_over_gross_loss():
    assert metrics.profit_factor([30.0, -10.0, 20.0, -15.0]) == pytest.approx(50 / 25)
    assert metrics.profit_factor([5.0, 0.0]) is None  # a zero P&L is not a loss to divide by
    assert metrics.profit_factor([]) is None


def test_max_drawdown_from_the_running_peak_of_closed_trade_equity():
    # Equity 100 → 110 → 88 → 98 → 77: the worst fall is 110 → 77.
    assert metrics.max_drawdown([10, -22, 10, -21], starting_equity=100) == pytest.approx(33 / 110)
    assert metrics.max_drawdown([5, 5], starting_equity=100) == 0.0


def test_daily_sharpe_counts_every_day_and_annualises_by_365():
    # Four days on 100: +1 on day 1, −1 on day 2 (two trades), nothing on day 3, +2 on day 4.
    exit_times = [t(1, 5), t(2, 3), t(2, 20), t(4, 1)]
    pnls = [1.0, -0.5, -0.5, 2.0]
    returns = np.array([1 / 100, -1 / 101, 0 / 100, 2 / 100])
    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(365)
    assert metrics.daily_sharpe(exit_times, pnls, starting_equity=100, start=t(1), end=t(5)) == pytest.approx(expected)


def test_daily_sharpe_is_undefined_without_spread():
    assert metrics.daily_sharpe([], [], starting_equity=100, start=t(1), end=t(5)) is None


def test_exposure_is_the_covered_share_of_the_window_overlaps_counted_once():
    entries = [t(1, 0), t(1, 6), t(2, 12)]
    exits = [t(1, 12), t(1, 18), t(3, 12)]  # the first two overlap: 18 h; the third: 24 h, half inside
    assert metrics.exposure(entries, exits, start=t(1), end=t(3)) == pytest.approx((18 + 12) / 48)


def test_running_base_rate_uses_only_outcomes_known_by_the_decision():
    outcome_times = [t(1), t(2), t(3)]
    outcomes = [1, 0, 0]
    rates = metrics.running_base_rate(outcome_times, outcomes, [t(1, 0) - pd.Timedelta(hours=1), t(1), t(2, 12), t(9)])
    assert np.isnan(rates[0])
    assert rates[1:] == pytest.approx([1.0, 0.5, 1 / 3])


def test_brier_skill_score_against_a_reference():
    outcomes = [1, 0, 1, 0]
    forecast = [0.8, 0.3, 0.6, 0.1]
    reference = [0.5, 0.5, 0.5, 0.5]
    brier = (0.04 + 0.09 + 0.16 + 0.01) / 4
    assert metrics.brier_skill_score(outcomes, forecast, reference) == pytest.approx(1 - brier / 0.25)
    assert metrics.brier_skill_score([1, 0], [0.5, 0.5], [1.0, 0.0]) is None


def test_calibration_by_hand():
    # Two buckets: [0.2, 0.3) holds 0.2, 0.2 (one win) and [0.8, 0.9) holds 0.8, 0.8, 0.8 (three wins).
    outcomes = [1, 0, 1, 1, 1]
    forecast = [0.2, 0.2, 0.8, 0.8, 0.8]
    reference = [np.nan, 1.0, 0.5, 2 / 3, 0.75]
    figures = metrics.calibration(outcomes, forecast, reference)
    assert figures["n"] == 5 and figures["skill_n"] == 4
    assert figures["brier"] == pytest.approx((0.64 + 0.04 + 3 * 0.04) / 5)
    assert figures["ece"] == pytest.approx((2 * abs(0.2 - 0.5) + 3 * abs(0.8 - 1.0)) / 5)
    reference_brier = (1.0 + 0.25 + (1 / 3) ** 2 + 0.25**2) / 4
    assert figures["brier_skill"] == pytest.approx(1 - ((0.04 + 3 * 0.04) / 4) / reference_brier)
    filled = [row for row in figures["reliability"] if row["count"]]
    assert [(row["lower"], row["count"], row["observed_rate"]) for row in filled] == [
        (pytest.approx(0.2), 2, 0.5),
        (pytest.approx(0.8), 3, 1.0),
    ]


def test_meta_labelling_precision_recall_and_what_skipping_avoided():
    taken = [True, True, True, False, False, False]
    wins = [True, False, True, False, False, True]
    figures = metrics.meta_labelling(taken, wins)
    assert figures == {
        "signals": 6,
        "taken": 3,
        "skipped": 3,
        "skipped_would_lose": 2,
        "skipped_loss_rate": pytest.approx(2 / 3),
        "base_rate": pytest.approx(0.5),
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
    }


def test_quarters_are_calendar_quarters_clipped_to_the_window():
    spans = metrics.quarters(datetime(2022, 2, 15, tzinfo=UTC), datetime(2022, 7, 2, tzinfo=UTC))
    assert [(label, start.date().isoformat(), end.date().isoformat()) for label, start, end in spans] == [
        ("2022Q1", "2022-02-15", "2022-04-01"),
        ("2022Q2", "2022-04-01", "2022-07-01"),
        ("2022Q3", "2022-07-01", "2022-07-02"),
    ]


def test_selection_by_hand():
    # Four signals in four weeks: two taken (a win of +1 % and a loss of -0.5 %), two skipped losers.
    moments = pd.to_datetime(["2022-01-03", "2022-01-10", "2022-01-17", "2022-01-24"], utc=True)
    figures = metrics.selection(
        [True, True, False, False], [True, False, False, False], [0.01, -0.005, -0.002, -0.004], [0.7, 0.4, 0.3, 0.2], moments, resamples=0
    )
    assert figures["taken"] == 2 and figures["signals"] == 4
    assert figures["auc"] == 1.0  # the one winner has the highest probability
    assert figures["precision_lift"] == pytest.approx(0.5 - 0.25)
    assert figures["taken_mean_pnl"] == pytest.approx(0.25) and figures["all_mean_pnl"] == pytest.approx(-0.025)
    assert figures["pnl_lift"] == pytest.approx(0.275)
    assert figures["precision_lift_se"] is None  # no bootstrap asked for


def test_weekly_block_se_resamples_whole_weeks():
    weeks = np.repeat(["2022-01", "2022-02", "2022-03", "2022-04", "2022-05"], 3)
    values = np.repeat([0.0, 1.0, 0.0, 1.0, 1.0], 3)
    # Rows of one week move together: the SE of the mean is that of five values, not fifteen.
    se = metrics.weekly_block_se(weeks, lambda rows: values[rows].mean(), resamples=2000, seed=1)
    assert se == pytest.approx(np.sqrt(0.6 * 0.4 / 5), rel=0.1)
    assert metrics.weekly_block_se(weeks[:9], lambda rows: values[rows].mean()) is None  # three weeks are too few
