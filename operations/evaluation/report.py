"""The evaluation report: tables shared by the terminal summary and the HTML page, and the files written to --out."""
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.template import Context, Engine
from django.utils.safestring import mark_safe

from operations.evaluation.charts import charts
from operations.evaluation.scoring import ALL_SYSTEMS

TEMPLATES = Path(__file__).resolve().parent / "templates"

DEFINITIONS = (
    ("trades", "real (not shadow) trades closed in the period, counted at their exit time"),
    ("win rate", "share of those trades with net P&L after fees > 0"),
    ("profit factor", "gross profit / gross loss of those trades (n/a without a loss)"),
    ("net P&L %", "their net P&L as a percentage of the account's starting balance (both accounts' for 'all')"),
    ("max drawdown", "largest fall of closed-trade equity from its running peak"),
    ("Sharpe", "daily: mean / standard deviation of daily returns on equity (P&L booked on the exit day, "
     "days without exits count as 0), × √365"),
    ("exposure", "fraction of the period with at least one real position open (fill candle to exit candle)"),
    ("Brier, ECE", "of every signal with an outcome — the trade, real or shadow, that followed the decision; "
     "ECE over 10 equal-width buckets"),
    ("Brier skill", "1 − Brier / Brier of the running base rate: the success rate of the same scope's outcomes "
     "known before each decision (signals before the first outcome are left out)"),
    ("precision, recall of take", "of the signals taken, the share that won; of the signals that won, the share taken"),
)


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""

    def text(self) -> str:
        widths = [max(len(column), *(len(row[index]) for row in self.rows)) for index, column in enumerate(self.columns)]

        def line(cells):
            return "  ".join(cell.ljust(width) if index == 0 else cell.rjust(width) for index, (cell, width) in enumerate(zip(cells, widths)))

        lines = [self.title, line(self.columns), *(line(row) for row in self.rows)]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _pct(value, digits: int = 1, *, signed: bool = False) -> str:
    return "n/a" if value is None else f"{100 * value:{'+' if signed else ''}.{digits}f}%"


def _num(value, digits: int = 2, *, signed: bool = False) -> str:
    return "n/a" if value is None else f"{value:{'+' if signed else ''}.{digits}f}"


def _performance_row(label: tuple[str, ...], figures: dict) -> tuple[str, ...]:
    return (
        *label,
        str(figures["trades"]),
        _pct(figures["win_rate"]),
        _num(figures["profit_factor"]),
        _pct(figures["net_pnl_pct"], 2, signed=True),
        _pct(figures["max_drawdown"], 2),
        _num(figures["sharpe_daily"]),
        _pct(figures["exposure"]),
        str(figures["losing"]),
    )


_PERFORMANCE_COLUMNS = ("trades", "win rate", "PF", "net P&L", "max DD", "Sharpe", "exposure", "losing")


def performance_table(report: dict) -> Table:
    rows = [
        _performance_row((run, system), by_system[system]["overall"])
        for run, by_system in report["systems"].items()
        for system in by_system
    ]
    return Table("Performance, whole window (real trades; Sharpe daily, annualised)", ("run", "system", *_PERFORMANCE_COLUMNS), rows)


def breakdown_table(report: dict, part: str) -> Table:
    """Performance per symbol or per quarter (`part` is by_symbol or by_quarter), every run and system."""
    rows = [
        _performance_row((run, system, key), figures)
        for run, by_system in report["systems"].items()
        for system, scope in by_system.items()
        for key, figures in scope[part].items()
        if figures["trades"]  # a quarter (or symbol) without a trade has no figures, only n/a
    ]
    name = {"by_symbol": "symbol", "by_quarter": "quarter"}[part]
    return Table(f"Performance per {name}", ("run", "system", name, *_PERFORMANCE_COLUMNS), rows, note=f"A {name} without trades in a run is left out.")


def symbol_comparison_table(report: dict) -> Table:
    """Each symbol, all systems together: every run's profit factor and net P&L side by side."""
    runs = list(report["systems"])
    symbols = next(iter(report["systems"].values()))[ALL_SYSTEMS]["by_symbol"]
    rows = []
    for symbol in symbols:
        figures = [report["systems"][run][ALL_SYSTEMS]["by_symbol"][symbol] for run in runs]
        rows.append(
            (
                symbol,
                *(_num(item["profit_factor"]) for item in figures),
                *(_pct(item["net_pnl_pct"], 2, signed=True) for item in figures),
                *(str(item["losing"]) for item in figures),
            )
        )
    return Table(
        "Per symbol, all systems",
        ("symbol", *(f"{run} PF" for run in runs), *(f"{run} net" for run in runs), *(f"{run} losing" for run in runs)),
        rows,
    )


_FORECAST_NAMES = {
    "expected_win_rate": "expected_win_rate",
    "expected_win_rate_taken": "expected_win_rate (taken)",
    "hybrid_probability": "hybrid probability",
}


def calibration_table(report: dict) -> Table:
    rows = []
    for run, by_system in report["systems"].items():
        for system, scope in by_system.items():
            for key, name in _FORECAST_NAMES.items():
                figures = scope["overall"].get(key)
                if not figures or not figures["n"]:
                    continue
                rows.append(
                    (
                        run,
                        system,
                        name,
                        str(figures["n"]),
                        _pct(figures["mean_probability"]),
                        _pct(figures["observed_rate"]),
                        _num(figures["brier"], 4),
                        _num(figures["ece"], 4),
                        _num(figures["brier_skill"], 4, signed=True),
                    )
                )
    return Table(
        "Calibration against realised outcomes (every signal with an outcome, real or shadow)",
        ("run", "system", "forecast", "n", "mean p", "observed", "Brier", "ECE", "skill"),
        rows,
        note="skill: Brier skill score against the running base rate (> 0 beats it).",
    )


def meta_labelling_table(report: dict) -> Table:
    rows = []
    for run, by_system in report["systems"].items():
        for system, scope in by_system.items():
            figures = scope["overall"].get("meta_labelling")
            if figures is None:
                continue
            rows.append(
                (
                    run,
                    system,
                    str(figures["signals"]),
                    str(figures["taken"]),
                    str(figures["skipped"]),
                    f"{figures['skipped_would_lose']} ({_pct(figures['skipped_loss_rate'])})",
                    _pct(figures["base_rate"]),
                    _pct(figures["precision"]),
                    _pct(figures["recall"]),
                )
            )
    return Table(
        "Take/skip as meta-labelling (skipped signals judged by their shadow trades)",
        ("run", "system", "signals", "taken", "skipped", "skipped, would lose", "base rate", "precision", "recall"),
        rows,
        note="precision of take above the base rate means the learner picks winners better than taking every signal.",
    )


def selection_table(report: dict) -> Table:
    """Per learning run and system: does taking pick better signals? AUC, precision lift and P&L lift with their SEs."""
    rows = []
    for run, by_system in report["systems"].items():
        for system, scope in by_system.items():
            figures = scope["overall"].get("selection")
            if figures is None:
                continue
            meta = scope["overall"]["meta_labelling"]
            lift, se = figures["precision_lift"], figures["precision_lift_se"]
            rows.append(
                (
                    run,
                    system,
                    str(figures["signals"]),
                    str(figures["taken"]),
                    _num(figures["auc"], 3),
                    _pct(meta["base_rate"]),
                    _pct(meta["precision"]),
                    _pct(lift, signed=True),
                    "n/a" if lift is None or not se else f"{lift / se:+.1f}",
                    _num(figures["all_mean_pnl"], 3, signed=True),
                    _num(figures["taken_mean_pnl"], 3, signed=True),
                    _num(figures["pnl_lift"], 3, signed=True),
                    _num(figures["pnl_lift_se"], 3),
                )
            )
    return Table(
        "Selection: taken against all signals (every signal with an outcome, real or shadow)",
        ("run", "system", "signals", "taken", "AUC", "base rate", "precision", "lift", "lift/SE", "P&L all", "P&L taken", "P&L lift", "SE"),
        rows,
        note="AUC of the hybrid probability; lift: precision of take minus the base rate, in standard errors of a weekly-block "
        "bootstrap; P&L: mean net P&L per signal in points of notional (0.1 = 0.1 %), taken minus all, with its SE.",
    )


def learning_curve_table(report: dict) -> Table:
    curve = report["learning_curve"]
    runs = list(report["systems"])
    learning = "learning" in runs
    columns = ["quarter", *(f"{run} PF" for run in runs)]
    if learning:
        columns += ["learning trades", "ECE", "skill", "precision", "base rate"]
    rows = []
    for row in curve:
        if not any(row[run]["trades"] for run in runs):
            continue  # no run traded in this quarter: nothing to compare
        cells = [row["quarter"], *(_num(row[run]["profit_factor"]) if row[run]["trades"] else "no trades" for run in runs)]
        if learning:
            figures = row["learning"]
            cells += [
                str(figures["trades"]),
                _num(figures.get("ece"), 4),
                _num(figures.get("brier_skill_hybrid"), 4, signed=True),
                _pct(figures.get("precision")),
                _pct(figures.get("base_rate")),
            ]
        rows.append(tuple(cells))
    return Table(
        "Learning curve, all systems, by quarter",
        tuple(columns),
        rows,
        note=(
            "ECE of expected_win_rate; skill: Brier skill of the hybrid probability; precision of take vs the signals' base rate."
            " Quarters in which no run traded are left out."
        ),
    )


def transfer_table(report: dict) -> Table | None:
    if "transfer" not in report:
        return None
    rows = []
    for system, runs in report["transfer"].items():
        for run, figures in runs.items():
            rows.append(
                (
                    system,
                    run,
                    str(figures["trades"]),
                    _pct(figures["win_rate"]),
                    _num(figures["profit_factor"]),
                    _pct(figures["net_pnl_pct"], 2, signed=True),
                    _num(figures["expected_win_rate"].get("ece"), 4),
                    _num(figures["hybrid_probability"].get("brier_skill"), 4, signed=True),
                    _pct(figures["meta_labelling"]["precision"]),
                )
            )
    return Table(
        "Transfer: learning with and without the other system's history",
        ("system", "run", "trades", "win rate", "PF", "net P&L", "ECE", "skill", "precision"),
        rows,
    )


TARGETS_TITLE = "Targets: does learning help? (learning run, per system and over all)"


def targets_text(report: dict) -> str:
    if "targets" not in report:
        return "Targets: not judged (they need a baseline and a learning run)."
    lines = [TARGETS_TITLE]
    for target in report["targets"]:
        lines.append(f"  [{'MET' if target['met'] else 'MISSED'}] {target['scope']}: {target['target']}: {target['detail']}")
    lines.append(
        "  [TESTS] shuffled labels show no skill and cutting the candles after t changes nothing before t: checked by the test "
        "suite (tests/operations/evaluation, tests/operations/research), not by this run."
    )
    return "\n".join(lines)


def heading(report: dict) -> str:
    window = report["window"]
    runs = ", ".join(f"{name} {run['seconds']:.0f} s" for name, run in report["runs"].items())
    return (
        f"Walk-forward evaluation of {', '.join(window['symbols'])} {window['timeframe']}, {window['from']} to {window['to']}"
        f" (engines {', '.join(window['engines'])}; candles {window['candles_dir']})\n"
        f"Runs, each from an empty learning store: {runs}"
    )


def summary_tables(report: dict) -> list[Table]:
    """The tables the terminal shows: the headline figures, not every breakdown."""
    tables = [
        performance_table(report),
        symbol_comparison_table(report),
        calibration_table(report),
        meta_labelling_table(report),
        selection_table(report),
        learning_curve_table(report),
    ]
    return [table for table in (*tables, transfer_table(report)) if table is not None]


def summary_text(report: dict) -> str:
    return "\n\n".join([heading(report), *(table.text() for table in summary_tables(report)), targets_text(report)])


def _safe(markup):
    """Mark matplotlib's SVG (it escapes the text it draws) as safe to inline, in nested dicts too."""
    if isinstance(markup, dict):
        return {name: _safe(value) for name, value in markup.items()}
    return mark_safe(markup)


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write report.json and report.html (with inline SVG charts) under `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=1, allow_nan=False))
    tables = {
        "performance": performance_table(report),
        "symbols": symbol_comparison_table(report),
        "by_symbol": breakdown_table(report, "by_symbol"),
        "by_quarter": breakdown_table(report, "by_quarter"),
        "calibration": calibration_table(report),
        "meta_labelling": meta_labelling_table(report),
        "selection": selection_table(report),
        "learning_curve": learning_curve_table(report),
        "transfer": transfer_table(report),
    }
    engine = Engine(dirs=[str(TEMPLATES)], autoescape=True)
    html = engine.get_template("evaluation/report.html").render(
        Context(
            {
                "heading": heading(report),
                "report": report,
                "tables": tables,
                "charts": _safe(charts(report)),
                "definitions": DEFINITIONS,
                "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            }
        )
    )
    paths["html"].write_text(html)
    return paths
