"""Make data/demo/outcomes.csv: trade outcomes of a plain EMA-crossover rule on the bundled candles.

Used only to seed the learning core's demo before an engine has run. Fills at the next
candle's open, stop before target inside one candle, fees of 0.04 % on both sides.
"""
import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FEE_RATE = 0.0004
NOTIONAL = 1000.0


def load(symbol: str) -> pd.DataFrame:
    frame = pd.read_csv(ROOT / "data" / "candles" / f"{symbol}-1h.csv")
    frame["time"] = pd.to_datetime(frame["open_time"], unit="ms", utc=True)
    close = frame["close"]
    frame["ema_fast"] = close.ewm(span=12, adjust=False).mean()
    frame["ema_slow"] = close.ewm(span=26, adjust=False).mean()
    true_range = pd.concat(
        [frame["high"] - frame["low"], (frame["high"] - close.shift()).abs(), (frame["low"] - close.shift()).abs()], axis=1
    ).max(axis=1)
    frame["atr_pct"] = true_range.rolling(14).mean() / close
    frame["slope"] = close.rolling(50).mean().pct_change(10)
    frame["atr_rank"] = frame["atr_pct"].rolling(500, min_periods=100).rank(pct=True)
    frame["roc_12"] = close.pct_change(12)
    return frame


def regimes(row) -> tuple[str, str]:
    market = "trending_up" if row.slope > 0.01 else "trending_down" if row.slope < -0.01 else "ranging"
    volatility = "low" if row.atr_rank < 1 / 3 else "high" if row.atr_rank > 2 / 3 else "medium"
    return market, volatility


def outcomes(symbol: str):
    frame = load(symbol)
    rows = list(frame.itertuples())
    index = 600
    while index < len(rows) - 50:
        row, previous = rows[index], rows[index - 1]
        cross_up = previous.ema_fast <= previous.ema_slow and row.ema_fast > row.ema_slow
        cross_down = previous.ema_fast >= previous.ema_slow and row.ema_fast < row.ema_slow
        if not (cross_up or cross_down) or np.isnan(row.atr_rank):
            index += 1
            continue
        side = 1 if cross_up else -1
        entry = rows[index + 1].open
        stop = entry * (1 - side * 2 * row.atr_pct)
        target = entry * (1 + side * 3 * row.atr_pct)
        exit_price, exit_reason, exit_index = None, "time_exit", min(index + 48, len(rows) - 1)
        for later in range(index + 1, exit_index + 1):
            candle = rows[later]
            if (side == 1 and candle.low <= stop) or (side == -1 and candle.high >= stop):
                exit_price, exit_reason, exit_index = (min(stop, candle.open) if side == 1 else max(stop, candle.open)), "stop_loss", later
                break
            if (side == 1 and candle.high >= target) or (side == -1 and candle.low <= target):
                exit_price, exit_reason, exit_index = target, "take_profit", later
                break
        if exit_price is None:
            exit_price = rows[exit_index].close
        quantity = NOTIONAL / entry
        fees = FEE_RATE * quantity * (entry + exit_price)
        net_pnl = side * quantity * (exit_price - entry) - fees
        market, volatility = regimes(row)
        strength = min(1.0, abs(row.roc_12) / (3 * row.atr_pct))
        yield {
            "trade_id": f"demo-{symbol}-{int(row.open_time)}",
            "symbol": symbol,
            "strategy_type": "ema_crossover",
            "system_type": "paper_trading",
            "side": "long" if side == 1 else "short",
            "confidence_score": round(0.5 + 0.2 * strength, 4),
            "entry_price": f"{entry}",
            "exit_price": f"{exit_price:.8f}",
            "pnl_pct": f"{net_pnl / NOTIONAL:.8f}",
            "net_pnl": f"{net_pnl:.8f}",
            "fees": f"{fees:.8f}",
            "market_regime": market,
            "volatility_regime": volatility,
            "exit_reason": exit_reason,
            "entry_time": datetime.fromtimestamp(rows[index + 1].open_time / 1000, UTC).isoformat(),
            "exit_time": datetime.fromtimestamp(rows[exit_index].open_time / 1000 + 3600, UTC).isoformat(),
            "features": json.dumps({"atr_pct": round(row.atr_pct, 6), "roc_12": round(row.roc_12, 6), "side": side}),
        }
        index = exit_index + 1


if __name__ == "__main__":
    out = ROOT / "data" / "demo" / "outcomes.csv"
    rows = [row for symbol in ("BTCUSDT", "ETHUSDT") for row in outcomes(symbol)]
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} outcomes written to {out.relative_to(ROOT)}")
