"""Dashboard charts: matplotlib figures rendered on the server to inline SVG, cached by the data they show."""

# matplotlib (~0.5 s) is imported when a chart is drawn, not when the URL conf loads: every
# command, `manage.py check` included, would pay for it otherwise.
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

from dashboard import selectors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The key is a hash of the figures drawn, so a cached chart is never stale; the timeout only frees space.
CACHE_SECONDS = 24 * 60 * 60
SIZE = (10.0, 3.4)
COLOURS = ("#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2")
STYLE = {
    # Text stays text (smaller, selectable, readable by tests); one salt per chart keeps the ids
    # of several inline SVGs on one page apart, and the same data always gives the same bytes.
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def _render(name: str, data: tuple, draw: Callable[[Figure, tuple], None], *, size=SIZE) -> SafeString:
    key = f"dashboard:chart:{name}:{hashlib.sha256(repr(data).encode()).hexdigest()}"
    svg = cache.get(key)
    if svg is None:
        import matplotlib
        from matplotlib import rc_context
        from matplotlib.figure import Figure

        # A server has no display: should anything import pyplot, it must not look for an interactive backend.
        matplotlib.use("Agg")
        with rc_context({**STYLE, "svg.hashsalt": name}):
            figure = Figure(figsize=size, layout="constrained")
            draw(figure, data)
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        text = buffer.getvalue()
        # Inline in HTML: the XML declaration and DOCTYPE belong to standalone files only.
        svg = text[text.index("<svg") :]
        cache.set(key, svg, CACHE_SECONDS)
    # matplotlib escapes the text it writes into the SVG, labels included.
    return mark_safe(svg)


def _date_axis(axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _max_ticks(**options):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(**options)


def learning_chart(progress: list[selectors.DailyOutcomes]) -> SafeString | None:
    """Outcomes per week and the rolling win rate, one line per system."""
    if not progress:
        return None
    series: dict[str, list[tuple]] = {}
    for row in selectors.outcomes_by_week(progress):
        series.setdefault(row.system_type, []).append((row.week, row.outcomes, row.rolling_win_rate))
    data = tuple((system, tuple(points)) for system, points in series.items())

    def draw(figure: Figure, data: tuple) -> None:
        outcomes, rolling = figure.subplots(2, 1, sharex=True)
        for colour, (system, points) in zip(COLOURS, data):
            weeks = [point[0] for point in points]
            outcomes.step(weeks, [point[1] for point in points], where="post", color=colour, linewidth=1.0, label=system)
            rolling.plot(weeks, [point[2] for point in points], color=colour, linewidth=1.2, label=system)
        rolling.axhline(0.5, color="#6b7280", linewidth=0.8, linestyle="--")
        outcomes.set_ylabel("outcomes / week")
        outcomes.set_ylim(bottom=0)
        rolling.set_ylabel(f"win rate ({selectors.ROLLING_DAYS} d)")
        rolling.set_ylim(0, 1)
        outcomes.legend(loc="upper left", frameon=False)
        _date_axis(rolling)

    return _render("learning", data, draw, size=(10.0, 4.4))


def calibration_chart(
    by_confidence: list[selectors.CalibrationBucket], by_model: list[selectors.CalibrationBucket]
) -> SafeString | None:
    """Reliability diagram: realised against predicted win rate per bucket, marker area by count."""
    if not by_confidence and not by_model:
        return None
    data = tuple(
        (label, tuple((bucket.predicted, bucket.realised, bucket.count) for bucket in buckets))
        for label, buckets in (("signal confidence", by_confidence), ("model ml_score", by_model))
        if buckets
    )

    def draw(figure: Figure, data: tuple) -> None:
        axes = figure.subplots()
        axes.plot([0, 1], [0, 1], color="#6b7280", linewidth=0.8, linestyle="--", label="perfect calibration")
        largest = max(count for _, points in data for _, _, count in points)
        # The two series' buckets often sit close together: one's counts go above its points, the other's below.
        for colour, offset, (label, points) in zip(COLOURS, ((4, 4), (4, -11)), data):
            predicted = [point[0] for point in points]
            realised = [point[1] for point in points]
            sizes = [20 + 180 * point[2] / largest for point in points]
            axes.plot(predicted, realised, color=colour, linewidth=1)
            axes.scatter(predicted, realised, s=sizes, color=colour, alpha=0.7, label=label)
            for x, y, count in points:
                axes.annotate(f"{count}", (x, y), textcoords="offset points", xytext=offset, fontsize=7, color=colour)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel("predicted win rate")
        axes.set_ylabel("realised win rate")
        axes.legend(loc="upper left", frameon=False)

    return _render("calibration", data, draw, size=(5.5, 4.2))


def equity_chart(accounts: list[selectors.AccountRow]) -> SafeString | None:
    """Each account's equity from closed real trades, by exit day; one that stopped trading is carried
    on, dotted, to its latest signal and labelled with why."""
    data = tuple(
        (
            account.name,
            float(account.starting_balance),
            tuple((point.day, float(point.equity)) for point in account.curve),
            (account.stopped.latest_signal.date(), _stopped_label(account.stopped)) if account.stopped else None,
        )
        for account in accounts
        if account.curve
    )
    if not data:
        return None

    def draw(figure: Figure, data: tuple) -> None:
        axes = figure.subplots()
        for colour, (name, start, points, stopped) in zip(COLOURS, data):
            axes.step([points[0][0], *(day for day, _ in points)], [start, *(value for _, value in points)], where="post", color=colour, linewidth=1.2, label=name)
            if stopped:
                last_day, last_equity = points[-1]
                axes.plot([last_day, stopped[0]], [last_equity, last_equity], color=colour, linewidth=1.0, linestyle=":")
                # Ending where the dotted line ends keeps the label inside the axes and off the solid curve.
                axes.annotate(stopped[1], (stopped[0], last_equity), xytext=(0, 6), textcoords="offset points", ha="right", fontsize=7, color=colour)
        axes.set_ylabel("equity")
        axes.legend(loc="upper right", frameon=False)
        _date_axis(axes)

    return _render("equity", data, draw)


def _stopped_label(stopped: selectors.Inactivity) -> str:
    if stopped.paused:
        return "paused"
    what = f"learner skipped {stopped.skipped:,}" if stopped.skipped >= stopped.refused else f"risk limits refused {stopped.refused:,}"
    return f"no trade since {stopped.last_entry:%Y-%m-%d}: {what} of {stopped.signals:,} signals" if stopped.last_entry else f"no trade: {what}"


def model_chart(versions: list[selectors.VersionRow]) -> SafeString | None:
    """Validation log-loss of each version shown, by kind and sequence; the active ones starred."""
    data = tuple(
        (version.kind, version.sequence, version.metrics["log_loss"], version.active)
        for version in sorted(versions, key=lambda version: (version.kind, version.sequence))
        if version.metrics.get("log_loss") is not None
    )
    if not data:
        return None

    def draw(figure: Figure, data: tuple) -> None:
        axes = figure.subplots()
        for colour, kind in zip(COLOURS, sorted({row[0] for row in data})):
            rows = [row for row in data if row[0] == kind]
            axes.plot([row[1] for row in rows], [row[2] for row in rows], marker="o", markersize=3, color=colour, linewidth=1, label=kind)
            for row in rows:
                if row[3]:
                    axes.scatter([row[1]], [row[2]], marker="*", s=160, color=colour, zorder=3)
        axes.xaxis.set_major_locator(_max_ticks(integer=True))  # versions are whole numbers
        axes.set_xlabel("version (sequence within its kind; ★ active)")
        axes.set_ylabel("log-loss")
        axes.legend(loc="upper right", frameon=False)

    return _render("models", data, draw)


def regime_chart(regimes: list[selectors.RegimeRow]) -> SafeString | None:
    """Win rate per market and volatility regime, labelled with its best strategy."""
    data = tuple(
        (f"{row.market_regime} / {row.volatility_regime}", row.win_rate or 0.0, row.trades, row.best_strategy)
        for row in regimes
    )
    if not data:
        return None

    def draw(figure: Figure, data: tuple) -> None:
        axes = figure.subplots()
        labels = [row[0] for row in data]
        axes.barh(labels, [row[1] for row in data], color=COLOURS[0], alpha=0.8)
        for index, (_, rate, trades, best) in enumerate(data):
            axes.annotate(f"{rate:.1%} of {trades} · best: {best or '—'}", (rate, index), xytext=(4, 0), textcoords="offset points", va="center", fontsize=7)
        axes.axvline(0.5, color="#6b7280", linewidth=0.8, linestyle="--")
        axes.set_xlim(0, 1)
        axes.invert_yaxis()
        axes.set_xlabel("win rate")

    return _render("regimes", data, draw, size=(10.0, 0.6 + 0.32 * len(data)))


def feature_chart(
    correlations: list[selectors.FeatureRow], importance: list[selectors.ModelImportanceRow]
) -> SafeString | None:
    """Correlation of each feature with success, and its permutation importance in the batch model."""
    data = (
        tuple((f"{row.feature_name} ({row.strategy_type})", row.correlation_with_success) for row in correlations),
        tuple((row.feature_name, row.model_importance) for row in importance),
    )
    if not any(data):
        return None

    def draw(figure: Figure, data: tuple) -> None:
        panels = [(title, rows) for title, rows in zip(("correlation with success", "model importance (Δ log-loss)"), data) if rows]
        for axes, (title, rows) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
            values = [value for _, value in rows]
            axes.barh([name for name, _ in rows], values, color=[COLOURS[0] if value >= 0 else COLOURS[3] for value in values])
            axes.axvline(0, color="#6b7280", linewidth=0.8)
            # Few ticks, so labels like −0.050 and −0.025 never run into each other.
            axes.xaxis.set_major_locator(_max_ticks(nbins=4))
            axes.invert_yaxis()
            axes.set_title(title, fontsize=9)

    rows = max(len(data[0]), len(data[1]))
    return _render("features", data, draw, size=(9.0, 0.8 + 0.28 * rows))
