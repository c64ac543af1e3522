"""Turn the runs' decisions and trades into the report: performance, calibration, meta-labelling, curve, transfer, targets."""
from datetime import UTC, datetime, time, timedelta

import pandas as pd

from operations.evaluation import metrics
from operations.evaluation.runner import Window
from trading.marketdata.naming import timeframe_ms

ALL_SYSTEMS = "all"
PAPER, SCRAPING = "paper_trading", "profit_scraping"
# The evaluation's targets (does learning help?), fixed here and never tuned to the data evaluated.
TARGET_PAPER_MIN_AUC = 0.55
TARGET_PAPER_MIN_BRIER_SKILL = 0.0
TARGET_PAPER_MIN_PRECISION_LIFT = 0.04  # 4 points over the base rate ...
TARGET_PAPER_MIN_LIFT_STANDARD_ERRORS = 3.0  # ... and 3 standard errors
TARGET_PAPER_MIN_PNL_LIFT = 0.2  # points of notional per signal, taken over all
TARGET_MIN_PF_GAIN = 0.10
TARGET_MAX_ECE = 0.03
TARGET_MAX_ECE_TAKEN = 0.05
TARGET_MIN_CALIBRATION_SIGNALS = 300
# A system whose learner takes at most this share of its signals stands aside.
STANDS_ASIDE_SHARE = 0.05
BOOTSTRAP_RESAMPLES = 200


def _frames(payload: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decisions (with the outcome of the trade, real or shadow, that followed each) and real closed trades."""
    decisions = pd.DataFrame(
        payload["decisions"],
        columns=["id", "system", "symbol", "candle_time", "taken", "model_probability", "expected_win_rate"],
    )
    trades = pd.DataFrame(
        payload["trades"], columns=["decision_id", "system", "symbol", "is_shadow", "entry_time", "exit_time", "net_pnl", "pnl_pct"]
    )
    for frame, columns in ((decisions, ["candle_time"]), (trades, ["entry_time", "exit_time"])):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    followed = trades.dropna(subset=["decision_id"]).astype({"decision_id": "int64"}).set_index("decision_id")
    decisions["outcome_time"] = decisions["id"].map(followed["exit_time"])
    decisions["success"] = decisions["id"].map(followed["net_pnl"] > 0)
    decisions["pnl_pct"] = decisions["id"].map(followed["pnl_pct"])
    decisions = decisions.dropna(subset=["success"]).astype({"success": bool, "taken": bool, "pnl_pct": float})
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
    # Standard errors (a bootstrap) only for the whole window's tables, not every breakdown.
    result["selection"] = metrics.selection(
        decisions["taken"], decisions["success"], decisions["pnl_pct"], decisions["model_probability"], decisions["candle_time"],
        resamples=BOOTSTRAP_RESAMPLES if tables else 0,
    )
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
            middle = start + (end - start) / 2
            figures["halves"] = {
                "first": forecasts(signals[signals["candle_time"] < middle], tables=False),
                "second": forecasts(signals[signals["candle_time"] >= middle], tables=False),
            }
        figures["equity"] = equity_by_day(rows, balance=balance, start=start, end=end)
        result[system] = figures
    return result


def _better_or_equal(learning: float | None, baseline: float | None, learning_trades: int) -> bool:
    # A profit factor is undefined without losses: with trades and no loss it is unbounded, so at least any other.
    if learning is None:
        return learning_trades > 0
    return baseline is not None and learning >= baseline


def _target(name: str, target: str, met: bool, detail: str, scope: str) -> dict:
    return {"name": name, "scope": scope, "target": target, "met": bool(met), "detail": detail}


def _points(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _paper_targets(paper: dict) -> list[dict]:
    selection, skill = paper["selection"], paper["hybrid_probability"].get("brier_skill")
    auc, lift, se = selection["auc"], selection["precision_lift"], selection["precision_lift_se"]
    lift_met = lift is not None and se is not None and lift >= TARGET_PAPER_MIN_PRECISION_LIFT and lift >= TARGET_PAPER_MIN_LIFT_STANDARD_ERRORS * se
    pnl_lift = selection["pnl_lift"]
    return [
        _target("paper_auc", f"ROC AUC of the hybrid probability ≥ {TARGET_PAPER_MIN_AUC}", auc is not None and auc >= TARGET_PAPER_MIN_AUC,
                "no probability" if auc is None else f"AUC {auc:.3f} over {selection['signals']} signals", PAPER),
        _target("paper_skill", f"Brier skill of the hybrid probability ≥ {TARGET_PAPER_MIN_BRIER_SKILL:g}",
                skill is not None and skill >= TARGET_PAPER_MIN_BRIER_SKILL,
                "no probability" if skill is None else f"Brier skill {skill:+.4f} against the running base rate", PAPER),
        _target("paper_precision", f"precision of take ≥ base rate + {TARGET_PAPER_MIN_PRECISION_LIFT:.0%} and ≥ {TARGET_PAPER_MIN_LIFT_STANDARD_ERRORS:g} SE",
                lift_met,
                "nothing taken" if lift is None else
                f"precision {paper['meta_labelling']['precision']:.1%} vs base rate {paper['meta_labelling']['base_rate']:.1%}: "
                f"{lift:+.1%}" + ("" if se is None else f" = {lift / se:+.1f} SE (SE {se:.1%}, weekly blocks)"), PAPER),
        _target("paper_pnl", f"taken signals' mean net P&L ≥ all signals' + {TARGET_PAPER_MIN_PNL_LIFT} points",
                pnl_lift is not None and pnl_lift >= TARGET_PAPER_MIN_PNL_LIFT,
                "nothing taken" if pnl_lift is None else
                f"taken {_points(selection['taken_mean_pnl'])} vs all {_points(selection['all_mean_pnl'])} points per signal: "
                f"{pnl_lift:+.3f}" + ("" if selection["pnl_lift_se"] is None else f" (SE {selection['pnl_lift_se']:.3f})"), PAPER),
    ]


def _scraping_target(scraping: dict) -> dict:
    selection = scraping["selection"]
    share = selection["taken"] / selection["signals"] if selection["signals"] else 0.0
    pnl_lift = selection["pnl_lift"]
    if share <= STANDS_ASIDE_SHARE:
        met = True
        detail = (
            f"stands aside: took {selection['taken']} of {selection['signals']} signals ({share:.1%}), because their expected net "
            f"P&L after fees was not positive (all signals averaged {_points(selection['all_mean_pnl'])} points)"
        )
        if pnl_lift is not None:
            detail += f"; the few taken averaged {_points(selection['taken_mean_pnl'])}"
    else:
        met = pnl_lift is not None and pnl_lift > 0
        detail = f"taken {_points(selection['taken_mean_pnl'])} vs all {_points(selection['all_mean_pnl'])} points per signal over {selection['taken']} taken"
    return _target("scraping_pnl", "taken signals' mean net P&L above all signals', or the system stands aside (says why)", met, detail, SCRAPING)


def targets(systems: dict[str, dict]) -> list[dict]:
    """The targets, per system and over all, each met or missed on the learning run, with why."""
    learning, baseline = systems["learning"], systems["baseline"]
    result = []
    if PAPER in learning:
        result += _paper_targets(learning[PAPER]["overall"])
    if SCRAPING in learning:
        result.append(_scraping_target(learning[SCRAPING]["overall"]))
    overall, base = learning[ALL_SYSTEMS]["overall"], baseline[ALL_SYSTEMS]["overall"]
    pf, base_pf = overall["profit_factor"], base["profit_factor"]
    result.append(
        _target("profit", f"learning profit factor ≥ baseline's + {TARGET_MIN_PF_GAIN:.2f}",
                pf is not None and base_pf is not None and pf >= base_pf + TARGET_MIN_PF_GAIN,
                f"profit factor {_num3(pf)} vs baseline {_num3(base_pf)} ({overall['trades']} vs {base['trades']} real trades)", ALL_SYSTEMS)
    )
    behind = [
        f"{symbol} {_num3(figures['profit_factor'])} < {_num3(baseline[ALL_SYSTEMS]['by_symbol'].get(symbol, {}).get('profit_factor'))}"
        for symbol, figures in learning[ALL_SYSTEMS]["by_symbol"].items()
        if not _better_or_equal(figures["profit_factor"], baseline[ALL_SYSTEMS]["by_symbol"].get(symbol, {}).get("profit_factor"), figures["trades"])
    ]
    result.append(
        _target("profit_every_symbol", "learning profit factor ≥ baseline's on every symbol", not behind,
                "behind on " + ", ".join(behind) if behind else f"on all {len(learning[ALL_SYSTEMS]['by_symbol'])} symbols", ALL_SYSTEMS)
    )
    ece_all, ece_taken = overall["expected_win_rate"].get("ece"), overall["expected_win_rate_taken"].get("ece")
    signals = overall["expected_win_rate"]["n"]
    detail = f"ECE {_num4(ece_all)} over {signals} signals, {_num4(ece_taken)} over {overall['expected_win_rate_taken'].get('n', 0)} taken"
    if signals < TARGET_MIN_CALIBRATION_SIGNALS:
        detail = f"only {signals} signals with an outcome (needs {TARGET_MIN_CALIBRATION_SIGNALS}); {detail}"
    result.append(
        _target("calibration", f"ECE of expected_win_rate ≤ {TARGET_MAX_ECE} over all signals and ≤ {TARGET_MAX_ECE_TAKEN} on the taken",
                signals >= TARGET_MIN_CALIBRATION_SIGNALS and ece_all is not None and ece_taken is not None
                and ece_all <= TARGET_MAX_ECE and ece_taken <= TARGET_MAX_ECE_TAKEN,
                detail, ALL_SYSTEMS)
    )
    halves = learning[ALL_SYSTEMS].get("halves", {})
    first = halves.get("first", {}).get("hybrid_probability", {}).get("brier_skill")
    second = halves.get("second", {}).get("hybrid_probability", {}).get("brier_skill")
    result.append(
        _target("learning_curve", "a learning curve: Brier skill of the hybrid probability in the window's second half ≥ its first half",
                first is not None and second is not None and second >= first,
                f"first half {_num4(first, signed=True)}, second half {_num4(second, signed=True)}", ALL_SYSTEMS)
    )
    return result


def _num3(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _num4(value, *, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value:{'+' if signed else ''}.4f}"


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
    switched = next((run for run in ("transfer_off", "transfer_on") if run in systems), None)
    if switched is not None:
        report["transfer"] = {system: {run: systems[run][system]["overall"] for run in ("learning", switched)} for system in systems["learning"]}
    return report
