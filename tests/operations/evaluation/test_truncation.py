"""Causality with learning on: cutting the candles after t changes no decision made before t, nor any of its features.

Run with every optional feature group on (higher timeframes, another symbol's candles), so
each feature schema v2 can hold is covered.
"""
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from operations.evaluation.runner import LEARNING, run_one
from tests.operations.evaluation.conftest import BUNDLED_CANDLES

pytestmark = pytest.mark.slow

CUT = datetime(2022, 4, 30, 23, tzinfo=UTC)  # the last candle kept
# What a decision is: everything but `reason`, which records what later happened to its fill.
DECISION_FIELDS = (
    "system", "symbol", "candle_time", "side", "taken", "technical_score",
    "combined_confidence", "model_probability", "expected_win_rate", "position_size", "features",
)
SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADE_FIELDS = ("system", "symbol", "side", "is_shadow", "entry_time", "exit_time", "notional", "net_pnl", "pnl_pct", "exit_reason")


def truncated_candles(directory: Path, *, last_open: datetime) -> Path:
    """A copy of the bundled candle files without the rows after `last_open`."""
    directory.mkdir()
    limit = int(last_open.timestamp() * 1000)
    for symbol in SYMBOLS:
        lines = (BUNDLED_CANDLES / f"{symbol}-1h.csv").read_text().splitlines()
        kept = [lines[0], *(line for line in lines[1:] if int(line.split(",", 1)[0]) <= limit)]
        (directory / f"{symbol}-1h.csv").write_text("\n".join(kept) + "\n")
    return directory


def test_truncating_candles_after_t_leaves_every_earlier_decision_unchanged(tmp_path, template_database, window, monkeypatch):
    # The replays run as child processes, which read these from the environment.
    monkeypatch.setenv("FEATURES_HIGHER_TIMEFRAMES", "4h,1d")
    monkeypatch.setenv("FEATURES_CORRELATED_SYMBOLS", "BTCUSDT")
    cut_dir = truncated_candles(tmp_path / "cut", last_open=CUT)
    span = (date(2022, 3, 1), date(2022, 5, 31))
    full = run_one(spec=LEARNING, window=window(*span, symbols=SYMBOLS), template=template_database, workdir=tmp_path)
    # The same command over the same days; only the candles after t are gone.
    cut = run_one(spec=LEARNING, window=window(*span, symbols=SYMBOLS, candles_dir=cut_dir), template=template_database, workdir=cut_dir)

    def decisions(payload):
        return [tuple(row[name] for name in DECISION_FIELDS) for row in payload["decisions"] if row["candle_time"] <= CUT.isoformat()]

    def trades(payload):
        return [tuple(row[name] for name in TRADE_FIELDS) for row in payload["trades"] if row["exit_time"] <= CUT.isoformat()]

    before_cut = decisions(full)
    assert decisions(cut) == before_cut
    assert trades(cut) == trades(full)
    # The check has teeth only if learning was at work before t: models and learned recommendations.
    assert sum(row[DECISION_FIELDS.index("model_probability")] is not None for row in before_cut) > 50
    assert {row[DECISION_FIELDS.index("taken")] for row in before_cut} == {True, False}
    assert len(full["decisions"]) > len(before_cut)
    # Every group of schema v2 was there to be compared, the optional ones included.
    names = set(before_cut[0][DECISION_FIELDS.index("features")])
    assert {"recent_symbol_pnl_20", "plan_payoff_after_fees", "signed_roc_12", "htf_4h_rsi_14", "htf_1d_roc_1", "corr_btcusdt_roc_1"} <= names
    assert len({row[DECISION_FIELDS.index("features")]["recent_system_count"] for row in before_cut}) > 10
