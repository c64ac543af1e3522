"""Figures of merit for trades and forecasts: profit factor, drawdown, daily Sharpe, exposure, skill, meta-labelling."""
import math
from datetime import datetime

import numpy as np
import pandas as pd

from learning.ml import metrics as forecast_metrics

# Crypto trades every calendar day, so a daily Sharpe is annualised over 365 days.
DAYS_PER_YEAR = 365


def profit_factor(net_pnls) -> float | None:
    """Gross profit over gross loss; None when there is no loss to divide by."""
    pnls = np.asarray(net_pnls, dtype=float)
    losses = -pnls[pnls <= 0].sum()
    return float(pnls[pnls > 0].sum() / losses) if losses > 0 else None


def max_drawdown(net_pnls, *, starting_equity: float) -> float:
    """Largest fall of closed-trade equity from its running peak, as a fraction of that peak."""
    equity = starting_equity + np.cumsum(np.concatenate([[0.0], np.asarray(net_pnls, dtype=float)]))
    return float((1.0 - equity / np.maximum.accumulate(equity)).max())


def daily_pnl(exit_times, net_pnls, *, start: datetime, end: datetime) -> pd.Series:
    """Net P&L booked per calendar day (UTC) in [start, end), on the day of each exit; 0 on days without one."""
    days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(end) - pd.Timedelta(1), freq="D")
    booked = pd.Series(np.asarray(net_pnls, dtype=float), index=pd.DatetimeIndex(exit_times).normalize())
    return booked.groupby(level=0).sum().reindex(days, fill_value=0.0)


def daily_sharpe(exit_times, net_pnls, *, starting_equity: float, start: datetime, end: datetime) -> float | None:
    """Annualised Sharpe of daily returns on equity, P&L booked on its exit day, every day in [start, end) counted.

    None when fewer than two days or no spread (a run without trades has no Sharpe, not zero).
    """
    booked = daily_pnl(exit_times, net_pnls, start=start, end=end).to_numpy()
    if booked.size < 2:
        return None
    equity_before = starting_equity + np.concatenate([[0.0], np.cumsum(booked)[:-1]])
    returns = booked / equity_before
    spread = returns.std(ddof=1)
    if not spread > 1e-12:
        return None
    return float(returns.mean() / spread * math.sqrt(DAYS_PER_YEAR))


def exposure(entry_times, exit_times, *, start: datetime, end: datetime) -> float:
    """Fraction of [start, end) with at least one position open; a position holds [entry, exit)."""
    total = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds()
    if total <= 0:
        return 0.0
    intervals = sorted(
        (max(pd.Timestamp(entry), pd.Timestamp(start)), min(pd.Timestamp(exit_), pd.Timestamp(end)))
        for entry, exit_ in zip(entry_times, exit_times)
    )
    covered, reach = 0.0, pd.Timestamp(start)
    for entry, exit_ in intervals:
        entry = max(entry, reach)
        if exit_ > entry:
            covered += (exit_ - entry).total_seconds()
            reach = exit_
    return covered / total


def _nanoseconds(moments) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(moments, utc=True)).as_unit("ns").asi8


def running_base_rate(outcome_times, outcomes, decision_times) -> np.ndarray:
    """For each decision, the success rate of outcomes known by then (time ≤ decision time); NaN before the first."""
    order = np.argsort(_nanoseconds(outcome_times), kind="stable")
    times = _nanoseconds(outcome_times)[order]
    wins = np.cumsum(np.asarray(outcomes, dtype=float)[order])
    known = np.searchsorted(times, _nanoseconds(decision_times), side="right")
    rates = np.full(known.shape, np.nan)
    seen = known > 0
    rates[seen] = wins[known[seen] - 1] / known[seen]
    return rates


def brier_skill_score(outcomes, probabilities, reference) -> float | None:
    """1 − Brier(forecast) / Brier(reference): above 0 beats the reference; None when the reference is perfect."""
    reference_brier = forecast_metrics.brier(outcomes, reference)
    if reference_brier == 0:
        return None
    return 1.0 - forecast_metrics.brier(outcomes, probabilities) / reference_brier


def calibration(outcomes, probabilities, reference) -> dict:
    """Brier, ECE (10 equal-width buckets), skill against `reference` and the reliability table of one forecast."""
    outcomes = np.asarray(outcomes, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if not outcomes.size:
        return {"n": 0}
    # The skill score needs a reference: decisions before the first known outcome have none.
    scored = ~np.isnan(reference)
    return {
        "n": int(outcomes.size),
        "mean_probability": float(probabilities.mean()),
        "observed_rate": float(outcomes.mean()),
        "brier": forecast_metrics.brier(outcomes, probabilities),
        "ece": forecast_metrics.expected_calibration_error(outcomes, probabilities, n_bins=10),
        "skill_n": int(scored.sum()),
        "brier_skill": brier_skill_score(outcomes[scored], probabilities[scored], reference[scored]) if scored.any() else None,
        "reliability": [
            {"lower": row.lower, "upper": row.upper, "count": row.count, "mean_probability": row.mean_probability, "observed_rate": row.observed_rate}
            for row in forecast_metrics.reliability_table(outcomes, probabilities, n_bins=10)
        ],
    }


def weekly_block_se(weeks, statistic, *, resamples: int = 200, seed: int = 0) -> float | None:
    """Standard error of `statistic(row positions)` by a bootstrap over whole weeks (rows labelled by `weeks`).

    Outcomes in one week share the market's moves, so resampling single signals would understate
    the noise; whole weeks keep that dependence. None with fewer than four weeks.
    """
    labels, codes = np.unique(np.asarray(weeks), return_inverse=True)
    if len(labels) < 4 or resamples < 2:
        return None
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    members = [order[bounds[code] : bounds[code + 1]] for code in range(len(labels))]
    rng = np.random.default_rng(seed)
    values = np.array([statistic(np.concatenate([members[code] for code in rng.integers(0, len(labels), len(labels))])) for _ in range(resamples)], dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if len(values) > 1 else None


def iso_weeks(moments) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(moments, utc=True)).strftime("%G-%V").to_numpy()


def selection(taken, outcomes, pnl_pct, probabilities, moments, *, resamples: int = 200) -> dict:
    """How well taking picks signals: AUC of the probability, precision and mean net P&L of taken over all, with SEs.

    `pnl_pct` is each signal's net P&L as a fraction of its notional (real or shadow trade), so
    taken and skipped signals compare per signal, whatever size was traded. Standard errors are
    by a weekly-block bootstrap (None when `resamples` is 0).
    """
    taken = np.asarray(taken, dtype=bool)
    wins = np.asarray(outcomes, dtype=float)
    pnl = np.asarray(pnl_pct, dtype=float) * 100  # points of notional per signal
    probs = np.asarray(probabilities, dtype=float)
    known = np.isfinite(probs)
    weeks = iso_weeks(moments)

    def lift(rows):
        rows_taken = taken[rows]
        return wins[rows][rows_taken].mean() - wins[rows].mean() if rows_taken.any() else np.nan

    def pnl_lift(rows):
        rows_taken = taken[rows]
        return pnl[rows][rows_taken].mean() - pnl[rows].mean() if rows_taken.any() else np.nan

    everything = np.arange(taken.size)
    has_both = known.any() and 0 < wins[known].sum() < known.sum()
    result = {
        "signals": int(taken.size),
        "taken": int(taken.sum()),
        "auc": forecast_metrics.roc_auc(wins[known], probs[known]) if has_both else None,
        "precision_lift": float(lift(everything)) if taken.any() else None,
        "all_mean_pnl": float(pnl.mean()) if pnl.size else None,
        "taken_mean_pnl": float(pnl[taken].mean()) if taken.any() else None,
        "pnl_lift": float(pnl_lift(everything)) if taken.any() else None,
        "precision_lift_se": None,
        "pnl_lift_se": None,
    }
    if resamples and taken.any():
        result["precision_lift_se"] = weekly_block_se(weeks, lift, resamples=resamples)
        result["pnl_lift_se"] = weekly_block_se(weeks, pnl_lift, resamples=resamples)
    return result


def meta_labelling(taken, outcomes) -> dict:
    """The take/skip decision scored as a classifier of winners: precision and recall of "take", what skips avoided."""
    taken = np.asarray(taken, dtype=bool)
    wins = np.asarray(outcomes, dtype=bool)
    taken_wins = int((taken & wins).sum())
    skipped = ~taken
    return {
        "signals": int(taken.size),
        "taken": int(taken.sum()),
        "skipped": int(skipped.sum()),
        "skipped_would_lose": int((skipped & ~wins).sum()),
        "skipped_loss_rate": float((skipped & ~wins).sum() / skipped.sum()) if skipped.any() else None,
        "base_rate": float(wins.mean()) if wins.size else None,
        "precision": taken_wins / int(taken.sum()) if taken.any() else None,
        "recall": taken_wins / int(wins.sum()) if wins.any() else None,
    }


def quarter_label(moment) -> str:
    moment = pd.Timestamp(moment)
    return f"{moment.year}Q{(moment.month - 1) // 3 + 1}"


def quarters(start: datetime, end: datetime) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """Calendar quarters overlapping [start, end), each clipped to it: (label, from, to)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    spans, boundary = [], pd.Timestamp(year=start.year, month=(start.month - 1) // 3 * 3 + 1, day=1, tz=start.tz)
    while boundary < end:
        following = boundary + pd.DateOffset(months=3)
        spans.append((quarter_label(boundary), max(start, boundary), min(end, following)))
        boundary = following
    return spans
