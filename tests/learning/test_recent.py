"""learning.recent: the recent-record features, one decision at a time and for a whole dataset, agree exactly."""
from collections import defaultdict, deque
from datetime import timedelta
from statistics import fmean

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from learning.recent import (
    EMPTY_PNL,
    EMPTY_WIN_RATE,
    RECENT_FEATURE_RANGES,
    RECENT_FEATURES,
    RECENT_HOURS_CAP,
    RecentOutcome,
    exit_order,
    recent_record,
    recent_record_of_windows,
    recent_record_frame,
)
from trading.features.builder import build_features
from trading.features.indicators import TECHNICAL_FEATURES
from trading.signals import technical_scores, technical_signal

FEE_BOTH_SIDES = 0.002
# Two systems with different exits, as paper trading (wide ATR exits) and profit scraping (tight target).
SYSTEMS = {"paper_trading": (settings.TRADING_STOP_ATR_MULTIPLE, settings.TRADING_TARGET_ATR_MULTIPLE, 48), "profit_scraping": (1.0, 0.5, 24)}


def _signals_and_outcomes(frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, list[RecentOutcome]]:
    """Every technical signal on the real candles, for both systems, and the outcome each would have had.

    Entry at the next candle's open, stop and target from the ATR, stop first within a candle,
    a time exit after the holding limit; net of fees. A test's stand-in for the engines' outcomes.
    """
    decisions, outcomes = [], []
    for symbol, frame in frames.items():
        features = build_features(frame)
        ready = features["ready"].to_numpy()
        scores = np.full(len(frame), np.nan)
        scores[ready] = technical_scores({name: features[name].to_numpy()[ready] for name in TECHNICAL_FEATURES})
        opens, highs, lows = (frame[c].astype("float64").to_numpy() for c in ("open", "high", "low"))
        times = list(frame.index.to_pydatetime())
        atr = features["atr_pct"].to_numpy()
        for i in range(1, len(frame) - 1):
            if not ready[i]:
                continue
            signal = technical_signal(scores[i], scores[i - 1] if ready[i - 1] else None)
            if signal is None:
                continue
            sign = 1 if signal.side == "long" else -1
            for system, (stop_multiple, target_multiple, holding) in SYSTEMS.items():
                decisions.append({"system_type": system, "symbol": symbol, "time": times[i]})
                entry = opens[i + 1]
                stop, target = entry * (1 - sign * stop_multiple * atr[i]), entry * (1 + sign * target_multiple * atr[i])
                exit_row, exit_price = None, None
                for j in range(i + 1, min(i + 1 + holding, len(frame))):
                    adverse, favourable = (lows[j], highs[j]) if sign == 1 else (highs[j], lows[j])
                    if sign * (adverse - stop) <= 0:
                        exit_row, exit_price = j, stop
                    elif sign * (favourable - target) >= 0:
                        exit_row, exit_price = j, target
                    if exit_row is not None:
                        break
                if exit_row is None:
                    if i + 1 + holding >= len(frame):
                        continue  # still open when the candles end: no outcome yet
                    exit_row, exit_price = i + 1 + holding, opens[i + 1 + holding]
                pnl = round(sign * (exit_price - entry) / entry - FEE_BOTH_SIDES, 10)
                outcomes.append(
                    RecentOutcome(system_type=system, symbol=symbol, entry_time=times[i + 1], exit_time=times[exit_row], pnl_pct=pnl, success=pnl > 0)
                )
    return pd.DataFrame(decisions), outcomes


@pytest.fixture(scope="module")
def real(btc_frame, eth_frame):
    decisions, outcomes = _signals_and_outcomes({"BTCUSDT": btc_frame, "ETHUSDT": eth_frame})
    # In exit order, as the learning store's rolling windows keep them.
    outcomes.sort(key=exit_order)
    return decisions, outcomes


def _frame(outcomes: list[RecentOutcome]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "system_type": [o.system_type for o in outcomes],
            "symbol": [o.symbol for o in outcomes],
            "entry_time": [o.entry_time for o in outcomes],
            "exit_time": [o.exit_time for o in outcomes],
            "pnl_pct": [o.pnl_pct for o in outcomes],
            "success": [o.success for o in outcomes],
        }
    )


def test_dataset_and_live_forms_agree_exactly_on_real_candles(real):
    decisions, outcomes = real
    assert len(decisions) > 1000 and len(outcomes) > 1000
    dataset = recent_record_frame(_frame(outcomes), decisions)
    assert list(dataset.columns) == list(RECENT_FEATURES)

    # Live: walk time forward, keeping only the last 50 outcomes per system and per symbol, as the
    # learning store's rolling windows do, and ask for each decision as it comes.
    by_system, by_symbol = defaultdict(lambda: deque(maxlen=50)), defaultdict(lambda: deque(maxlen=50))
    order = sorted(range(len(decisions)), key=lambda k: decisions.at[k, "time"])
    position = 0
    live = np.empty(dataset.shape)
    for k in order:
        at, system, symbol = decisions.at[k, "time"], decisions.at[k, "system_type"], decisions.at[k, "symbol"]
        while position < len(outcomes) and outcomes[position].exit_time < at:
            outcome = outcomes[position]
            by_system[outcome.system_type].append(outcome)
            by_symbol[outcome.system_type, outcome.symbol].append(outcome)
            position += 1
        row = recent_record_of_windows(system_outcomes=by_system[system], symbol_outcomes=by_symbol[system, symbol], at=at)
        live[k] = [row[name] for name in RECENT_FEATURES]
    np.testing.assert_array_equal(live, dataset.to_numpy())  # exactly, not approximately

    # A scope that has seen a few dozen outcomes has moved off its neutral values.
    assert (dataset["recent_symbol_count"] == 50).mean() > 0.9
    assert dataset["recent_system_pnl_20"].std() > 0 and dataset["recent_symbol_win_50"].std() > 0
    for name, (low, high) in RECENT_FEATURE_RANGES.items():
        assert dataset[name].between(low, high).all(), name


def test_the_full_history_gives_what_the_rolling_windows_give(real):
    decisions, outcomes = real
    sample = decisions.iloc[:: max(1, len(decisions) // 150)]
    dataset = recent_record_frame(_frame(outcomes), sample)
    for k, decision in sample.iterrows():
        row = recent_record(outcomes, system_type=decision.system_type, symbol=decision.symbol, at=decision.time)
        assert [row[name] for name in RECENT_FEATURES] == dataset.loc[k].tolist()


def test_only_outcomes_that_exited_before_the_decision_count(real):
    decisions, outcomes = real
    at = decisions["time"].iloc[len(decisions) // 2]
    before = recent_record(outcomes, system_type="paper_trading", symbol="BTCUSDT", at=at)
    # Rewrite history from `at` on, including an exit in the decision candle itself: nothing moves.
    changed = [
        o if o.exit_time < at else RecentOutcome(system_type=o.system_type, symbol=o.symbol, entry_time=o.entry_time, exit_time=o.exit_time, pnl_pct=-0.5, success=False)
        for o in outcomes
    ]
    changed.append(RecentOutcome(system_type="paper_trading", symbol="BTCUSDT", entry_time=at - timedelta(hours=1), exit_time=at, pnl_pct=0.3, success=True))
    assert recent_record(changed, system_type="paper_trading", symbol="BTCUSDT", at=at) == before
    frame = recent_record_frame(_frame(changed), pd.DataFrame([{"system_type": "paper_trading", "symbol": "BTCUSDT", "time": at}]))
    assert frame.iloc[0].tolist() == [before[name] for name in RECENT_FEATURES]
    # One hour later the exit in that candle is known.
    later = recent_record(changed, system_type="paper_trading", symbol="BTCUSDT", at=at + timedelta(hours=1))
    assert later["recent_symbol_hours_since_signal"] == 2.0


def test_figures_are_the_means_of_the_last_outcomes_of_each_scope(real):
    _, outcomes = real
    at = outcomes[len(outcomes) // 2].exit_time
    system = [o for o in outcomes if o.system_type == "profit_scraping" and o.exit_time < at]
    symbol = [o for o in system if o.symbol == "ETHUSDT"]
    row = recent_record(outcomes, system_type="profit_scraping", symbol="ETHUSDT", at=at)
    for scope, known in (("system", system), ("symbol", symbol)):
        for n in (20, 50):
            assert row[f"recent_{scope}_pnl_{n}"] == pytest.approx(fmean(o.pnl_pct for o in known[-n:]), abs=1e-12)
            assert row[f"recent_{scope}_win_{n}"] == pytest.approx(fmean(o.success for o in known[-n:]))
        assert row[f"recent_{scope}_count"] == min(len(known), 50)
        latest = max(o.entry_time for o in known[-50:])
        assert row[f"recent_{scope}_hours_since_signal"] == min((at - latest).total_seconds() / 3600, RECENT_HOURS_CAP)


def test_a_scope_without_outcomes_has_neutral_values(real):
    _, outcomes = real
    row = recent_record(outcomes, system_type="paper_trading", symbol="SOLUSDT", at=outcomes[-1].exit_time)
    assert row["recent_symbol_count"] == 0 and row["recent_system_count"] == 50
    assert (row["recent_symbol_pnl_20"], row["recent_symbol_win_50"], row["recent_symbol_hours_since_signal"]) == (EMPTY_PNL, EMPTY_WIN_RATE, RECENT_HOURS_CAP)
    empty = recent_record_frame(_frame([]), pd.DataFrame([{"system_type": "paper_trading", "symbol": "BTCUSDT", "time": outcomes[0].exit_time}]))
    assert empty.iloc[0].tolist() == [recent_record([], system_type="paper_trading", symbol="BTCUSDT", at=outcomes[0].exit_time)[n] for n in RECENT_FEATURES]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="pnl_pct.*decisions.time"):
        recent_record_frame(pd.DataFrame(columns=["system_type", "symbol", "entry_time", "exit_time", "success"]), pd.DataFrame(columns=["system_type", "symbol"]))


def test_the_order_outcomes_are_given_in_does_not_matter(real):
    decisions, outcomes = real
    sample = decisions.iloc[::7]
    shuffled = _frame(outcomes).sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(recent_record_frame(shuffled, sample), recent_record_frame(_frame(outcomes), sample))
    k = sample.index[len(sample) // 2]
    at, system, symbol = decisions.at[k, "time"], decisions.at[k, "system_type"], decisions.at[k, "symbol"]
    assert recent_record(outcomes[::-1], system_type=system, symbol=symbol, at=at) == recent_record(outcomes, system_type=system, symbol=symbol, at=at)
