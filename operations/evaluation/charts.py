"""The report's charts as inline SVG (matplotlib, no display): equity, reliability diagrams, learning curve."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from operations.evaluation.scoring import ALL_SYSTEMS  # noqa: E402

_RUN_COLOURS = {"baseline": "#7f7f7f", "learning": "#1f77b4", "transfer_off": "#ff7f0e", "transfer_on": "#ff7f0e"}


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: drop the XML prologue and doctype


def equity_chart(equity: dict[str, dict[str, list]]) -> str:
    """Closed-trade equity (net P&L % of starting balance) by day, one panel per system, one line per run."""
    systems = list(next(iter(equity.values())))
    figure, axes = plt.subplots(1, len(systems), figsize=(4.2 * len(systems), 3.2), squeeze=False)
    for axis, system in zip(axes[0], systems):
        for run, by_system in equity.items():
            days = pd.to_datetime([day for day, _ in by_system[system]])
            axis.plot(days, [100 * value for _, value in by_system[system]], label=run, color=_RUN_COLOURS.get(run), linewidth=1.2)
        axis.set_title(system, fontsize=10)
        axis.set_ylabel("net P&L, % of starting balance", fontsize=8)
        axis.axhline(0, color="black", linewidth=0.5)
        axis.tick_params(labelsize=7)
        axis.tick_params(axis="x", rotation=30)
    axes[0][0].legend(fontsize=8)
    return _svg(figure)


def reliability_chart(calibration: dict[str, dict]) -> str:
    """Predicted against observed win rate per probability bucket, for each forecast; marker area ∝ signals."""
    forecasts = [(name, figures) for name, figures in calibration.items() if figures.get("n")]
    figure, axes = plt.subplots(1, max(1, len(forecasts)), figsize=(3.8 * max(1, len(forecasts)), 3.6), squeeze=False)
    for axis, (name, figures) in zip(axes[0], forecasts):
        rows = [row for row in figures["reliability"] if row["count"]]
        largest = max(row["count"] for row in rows)
        axis.plot([0, 1], [0, 1], color="black", linewidth=0.6, linestyle="--", label="perfect")
        axis.plot([row["mean_probability"] for row in rows], [row["observed_rate"] for row in rows], color="#1f77b4", linewidth=1)
        axis.scatter(
            [row["mean_probability"] for row in rows],
            [row["observed_rate"] for row in rows],
            s=[20 + 180 * row["count"] / largest for row in rows],
            color="#1f77b4",
            zorder=3,
        )
        axis.set_title(f"{name} (n={figures['n']}, ECE {figures['ece']:.3f})", fontsize=9)
        axis.set_xlabel("predicted win rate", fontsize=8)
        axis.set_ylabel("observed win rate", fontsize=8)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
    return _svg(figure)


def learning_curve_chart(curve: list[dict]) -> str:
    """Per quarter, all systems: each run's profit factor; the learning run's ECE and hybrid Brier skill."""
    quarters = [row["quarter"] for row in curve]
    runs = [run for run in curve[0] if run != "quarter"] if curve else []
    figure, (factor_axis, forecast_axis) = plt.subplots(1, 2, figsize=(10, 3.4))
    for run in runs:
        factor_axis.plot(
            quarters, [row[run]["profit_factor"] for row in curve], marker="o", label=run, color=_RUN_COLOURS.get(run), linewidth=1
        )
    factor_axis.axhline(1, color="black", linewidth=0.5)
    factor_axis.set_title("profit factor by quarter (real trades)", fontsize=9)
    factor_axis.legend(fontsize=8)
    if "learning" in runs:
        forecast_axis.plot(quarters, [row["learning"].get("ece") for row in curve], marker="o", label="ECE of expected_win_rate")
        forecast_axis.plot(quarters, [row["learning"].get("brier_skill_hybrid") for row in curve], marker="s", label="Brier skill, hybrid")
        forecast_axis.axhline(0, color="black", linewidth=0.5)
        forecast_axis.legend(fontsize=8)
    forecast_axis.set_title("learning run: calibration by quarter", fontsize=9)
    for axis in (factor_axis, forecast_axis):
        axis.tick_params(labelsize=7)
        axis.tick_params(axis="x", rotation=45)
    return _svg(figure)


def charts(report: dict) -> dict:
    """Every chart of the report as SVG markup: equity, learning curve, and a reliability diagram per learning run."""
    reliability = {}
    for run, by_system in report["systems"].items():
        calibration = by_system[ALL_SYSTEMS]["overall"]
        if "expected_win_rate" in calibration:
            reliability[run] = reliability_chart({name: calibration[name] for name in ("expected_win_rate", "hybrid_probability")})
    return {
        "equity": equity_chart(report["equity"]),
        "learning_curve": learning_curve_chart(report["learning_curve"]),
        "reliability": reliability,
    }
