"""Turn the runs' decisions and trades into the report: performance, calibration, meta-labelling, curve, transfer, targets."""
import math
from datetime import UTC, datetime, time, timedelta

import pandas as pd

from operations.evaluation import metrics
from operations.evaluation.runner import Window
from trading.marketdata.naming import timeframe_ms

ALL_SYSTEMS = "all"
# The targets, fixed here and never tuned to the data evaluated.
TARGET_MAX_ECE = 0.05
TARGET_MIN_CALIBRATION_TRADES = 300
TARGET_MIN_BRIER_SKILL = 0.0
# Our own extra check: taking must pick winners by more than this many standard errors of chance.
SELECTION_EDGE_STANDARD_ERRORS = 2.0


def _frames(payload: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions (with the outcome of the trade, real or shadow, that followed each) and real closed trades."""
    decisions = pd.DataFrame(
        payload["decisions"],
        columns=["id", "system", "symbol", "candle_time", "taken", "model_probability", "expected_win_rate"],
    )
    trades = pd.DataFrame(
        payload["trades"], columns=["decision_id", "system", "symbol", "is_shadow", "entry_time", "exit_time", "net_pnl"]
    )
    for frame, columns in ((decisions, ["candle_time"]), (trades, ["entry_time", "exit_time"])):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    followed = trades.dropna(subset=["decision_id"]).astype({"decision_id": "int64"}).set_index("decision_id")
    decisions["outcome_time"] = decisions["id"].map(followed["exit_time"])
    decisions["success"] = decisions["id"].map(followed["net_pnl"] > 0)
    decisions = decisions.dropna(subset=["success"]).astype({"success": bool, "taken": bool})
    for column in ("model_probability", "expected_win_rate"):
        decisions[column] = decisions[column].astype(float)
    return decisions, trades[~trades["is_shadow"].astype(bool)]


def _with_reference(decisions: pd.DataFrame, systems: list[str]) -> dict[str, pd.DataFrame]:
    """Each scope's decisions with the running base rate of that scope's outcomes known before each decision."""
    scoped = {}
    for system in systems:
        rows = decisions if system == ALL_SYSTEMS else decisions[decisions["system"] == system]
        rows = rows.copy()
        rows["reference"] = metrics.running_base_rate(rows["outcome_time"], rows["success"], rows["candle_time"])
        scoped[system] = rows
    return scoped


def performance(trades: pd.DataFrame, *, balance: float, start, end, step: timedelta, equity_before: float = 0.0) -> dict:
    """Figures of the real trades that closed in [start, end); exposure counts every position overlapping it."""
    closed = trades[(trades["exit_time"] >= start) & (trades["exit_time"] < end)]
    pnls = closed["net_pnl"].to_numpy(dtype=float)
    equity = balance + equity_before
    return {
        "trades": int(pnls.size),
        "wins": int((pnls > 0).sum()),
        "losing": int((pnls <= 0).sum()),
        "win_rate": float((pnls > 0).mean()) if pnls.size else None,
        "profit_factor": metrics.profit_factor(pnls),
        "net_pnl": float(pnls.sum()),
        "net_pnl_pct": float(pnls.sum() / balance),
        "max_drawdown": metrics.max_drawdown(pnls, starting_equity=equity),
        "sharpe_daily": metrics.daily_sharpe(closed["exit_time"], pnls, starting_equity=equity, start=start, end=end),
        # A position is held from its fill candle's open to the close of the candle it exited in.
        "exposure": metrics.exposure(trades["entry_time"], trades["exit_time"] + step, start=start, end=end),
    }


def equity_by_day(trades: pd.DataFrame, *, balance: float, start, end) -> list[tuple[str, float]]:
    """Closed-trade net P&L as a fraction of the starting balance at the end of each day in [start, end)."""
    cumulative = metrics.daily_pnl(trades["exit_time"], trades["net_pnl"], start=start, end=end).cumsum() / balance
    return [(day.date().isoformat(), float(value)) for day, value in cumulative.items()]


def forecasts(decisions: pd.DataFrame, *, tables: bool) -> dict:
    """Calibration of the learner's expected win rate and of the hybrid probability, and the take/skip scores."""
    result = {}
    for name, column, rows in (
        ("expected_win_rate", "expected_win_rate", decisions),
        ("expected_win_rate_taken", "expected_win_rate", decisions[decisions["taken"]]),
        ("hybrid_probability", "model_probability", decisions),
    ):
        rows = rows.dropna(subset=[column])
        figures = metrics.calibration(rows["success"], rows[column], rows["reference"])
        if not tables:
            figures.pop("reliability", None)
        result[name] = figures
    result["meta_labelling"] = metrics.meta_labelling(decisions["taken"], decisions["success"])
    return result


def score_run(payload: dict, *, start: datetime, end: datetime, step: timedelta) -> dict:
    """Every figure of one run, per system (and all systems together), overall, per symbol and per quarter."""
    decisions, trades = _frames(payload)
    balances = {}
    for account in payload["accounts"]:
        balances[account["system"]] = balances.get(account["system"], 0.0) + account["starting_balance"]
    systems = [*sorted(balances), ALL_SYSTEMS]
    balances[ALL_SYSTEMS] = sum(balances.values())
    scoped = _with_reference(decisions, systems)
    learned = payload["learning"]
    result = {}
    for system in systems:
        rows = trades if system == ALL_SYSTEMS else trades[trades["system"] == system]
        balance = balances[system]
        signals = scoped[system]
        figures = {"overall": performance(rows, balance=balance, start=start, end=end, step=step), "by_symbol": {}, "by_quarter": {}}
        for symbol in sorted(set(rows["symbol"]) | set(signals["symbol"])):
            figures["by_symbol"][symbol] = performance(rows[rows["symbol"] == symbol], balance=balance, start=start, end=end, step=step)
            if learned:
                figures["by_symbol"][symbol].update(forecasts(signals[signals["symbol"] == symbol], tables=False))
        for label, quarter_start, quarter_end in metrics.quarters(start, end):
            before = float(rows.loc[rows["exit_time"] < quarter_start, "net_pnl"].sum())
            quarter = performance(rows, balance=balance, start=quarter_start, end=quarter_end, step=step, equity_before=before)
            if learned:
                in_quarter = (signals["candle_time"] >= quarter_start) & (signals["candle_time"] < quarter_end)
                quarter.update(forecasts(signals[in_quarter], tables=False))
            figures["by_quarter"][label] = quarter
        if learned:
            figures["overall"].update(forecasts(signals, tables=True))
        figures["equity"] = equity_by_day(rows, balance=balance, start=start, end=end)
        result[system] = figures
    return result


def _better_or_equal(learning: float | None, baseline: float | None, learning_trades: int) -> bool:
    # A profit factor is undefined without losses: with trades and no loss it is unbounded, so at least any other.
    if learning is None:
        return learning_trades > 0
    return baseline is not None and learning >= baseline


def targets(systems: dict[str, dict]) -> list[dict]:
    """The issue's three targets, each met or missed on the learning run over all systems, with why."""
    learning = systems["learning"][ALL_SYSTEMS]["overall"]
    baseline = systems["baseline"][ALL_SYSTEMS]["overall"]
    calibration = learning["expected_win_rate"]
    skill = learning["hybrid_probability"]
    ece_met = calibration["n"] >= TARGET_MIN_CALIBRATION_TRADES and calibration["ece"] <= TARGET_MAX_ECE
    if calibration["n"] < TARGET_MIN_CALIBRATION_TRADES:
        ece_detail = f"only {calibration['n']} signals with an outcome (needs {TARGET_MIN_CALIBRATION_TRADES})"
    else:
        ece_detail = f"ECE {calibration['ece']:.4f} over {calibration['n']} signals with an outcome (real or shadow)"
    skill_value = skill.get("brier_skill")
    skill_met = skill_value is not None and skill_value > TARGET_MIN_BRIER_SKILL
    skill_detail = (
        "the hybrid model never gave a probability"
        if skill_value is None
        else f"Brier skill {skill_value:+.4f} against the running base rate over {skill['skill_n']} signals"
    )
    profit_met = _better_or_equal(learning["profit_factor"], baseline["profit_factor"], learning["trades"])
    fewer_losses = learning["losing"] < baseline["losing"]

    meta = learning["meta_labelling"]
    base_rate, precision = meta["base_rate"], meta["precision"]
    if precision is None or base_rate is None:
        edge_met, edge_detail = False, "the learner took no signal with an outcome"
    else:
        margin = SELECTION_EDGE_STANDARD_ERRORS * math.sqrt(base_rate * (1 - base_rate) / meta["taken"])
        edge_met = precision - base_rate > margin
        edge_detail = (
            f"precision of take {precision:.1%} vs base rate {base_rate:.1%} of all signals"
            f" (needs > {margin:.1%} more: {SELECTION_EDGE_STANDARD_ERRORS:g} standard errors over {meta['taken']} taken)"
        )

    def factor(value):
        return "n/a" if value is None else f"{value:.3f}"

    return [
        {
            "name": "calibration",
            "issue": True,
            "target": f"ECE of expected_win_rate ≤ {TARGET_MAX_ECE} over ≥ {TARGET_MIN_CALIBRATION_TRADES} trades",
            "met": bool(ece_met),
            "detail": ece_detail,
        },
        {
            "name": "skill",
            "issue": True,
            "target": "Brier skill score of the hybrid probability > 0",
            "met": bool(skill_met),
            "detail": skill_detail,
        },
        {
            "name": "profit",
            "issue": True,
            "target": "learning profit factor ≥ baseline's, with fewer losing trades taken",
            "met": bool(profit_met and fewer_losses),
            "detail": (
                f"profit factor {factor(learning['profit_factor'])} vs baseline {factor(baseline['profit_factor'])}"
                f" ({'≥' if profit_met else '<'}); losing trades {learning['losing']} vs baseline {baseline['losing']}"
                f" ({'fewer' if fewer_losses else 'not fewer'}) out of {learning['trades']} vs {baseline['trades']} real trades"
            ),
        },
        {
            "name": "selection",
            "issue": False,
            "target": "extra check: taking a signal picks winners better than chance",
            "met": bool(edge_met),
            "detail": edge_detail,
        },
    ]


def learning_curve(systems: dict[str, dict]) -> list[dict]:
    """Quarter by quarter, all systems: each run's trading figures and the learner's calibration and take precision."""
    rows = []
    quarter_labels = next(iter(systems.values()))[ALL_SYSTEMS]["by_quarter"]
    for label in quarter_labels:
        row = {"quarter": label}
        for run, by_system in systems.items():
            quarter = by_system[ALL_SYSTEMS]["by_quarter"][label]
            row[run] = {key: quarter[key] for key in ("trades", "win_rate", "profit_factor", "net_pnl_pct")}
            if "expected_win_rate" in quarter:
                row[run].update(
                    ece=quarter["expected_win_rate"].get("ece"),
                    brier_skill_hybrid=quarter["hybrid_probability"].get("brier_skill"),
                    precision=quarter["meta_labelling"]["precision"],
                    base_rate=quarter["meta_labelling"]["base_rate"],
                )
        rows.append(row)
    return rows


def score(*, payloads: dict[str, dict], window: Window) -> dict:
    """The report's figures for runs `payloads` (by run name) over the days of `window`."""
    start = datetime.combine(window.start, time(), UTC)
    end = datetime.combine(window.end + timedelta(days=1), time(), UTC)
    step = timedelta(milliseconds=timeframe_ms(window.timeframe))
    systems = {name: score_run(payload, start=start, end=end, step=step) for name, payload in payloads.items()}
    # Daily equity feeds the chart alone; it is kept apart from the per-system figures.
    equity = {name: {system: figures.pop("equity") for system, figures in by_system.items()} for name, by_system in systems.items()}
    report = {
        "window": {
            "candles_dir": str(window.candles_dir),
            "symbols": list(window.symbols),
            "timeframe": window.timeframe,
            "from": window.start.isoformat(),
            "to": window.end.isoformat(),
            "engines": list(window.engines),
        },
        "runs": {
            name: {
                "title": payload["title"],
                "learning": payload["learning"],
                "seconds": round(payload["seconds"], 1),
                "settings": payload["settings"],
                "open_trades_at_end": payload["open_trades"],
            }
            for name, payload in payloads.items()
        },
        "systems": systems,
        "equity": equity,
        "learning_curve": learning_curve(systems),
    }
    if "baseline" in systems and "learning" in systems:
        report["targets"] = targets(systems)
    if "transfer_off" in systems:
        report["transfer"] = {
            system: {run: systems[run][system]["overall"] for run in ("learning", "transfer_off")}
            for system in systems["learning"]
        }
    return report
