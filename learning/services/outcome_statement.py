"""One outcome stored in one PostgreSQL statement: the record and all the aggregates' upserts.

A store with its own durable commit is bound by the commit; reading each aggregate row, folding
it in Python and writing it back took a dozen round trips more and ran at 0.05 of that bound.
Here the record's INSERT and the five aggregates' INSERT ... ON CONFLICT DO UPDATE travel as one
statement of data-modifying CTEs, so one round trip carries the whole store and, outside a
transaction, its commit. The statement is prepared once per connection (planning it took longer
than the commit) and takes its rows as JSON, so the EXECUTE that runs it is short.

The fold is still the Python one of `aggregates.py`, spelled once more in SQL:
- a new row is the Python fold of this one outcome onto an empty row (the `excluded` row);
- an existing row `t` takes the outcome as `t` + `excluded` for every running sum (an empty
  row's sums are zero, so `excluded` holds exactly what the outcome adds), and its figures are
  recomputed from the new sums (`n`) with the same float operations, in the same order, as each
  aggregate's `refresh`. IEEE doubles on both sides make the two equal bit for bit, which the
  rebuild-equals-incremental test checks after thousands of outcomes through both paths.
A duplicate trade_id inserts no record, and aggregate rows change only if the record went in
(`WHERE EXISTS (SELECT FROM record)`), so storing twice changes nothing.
"""
import hashlib
import json
import weakref
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace

from django.conf import settings
from django.db import connection, models
from django.db.utils import DataError

from learning.buckets import label_midpoint
from learning.models import RECENT_WINDOW_CAPACITY, TrainingRecord
from learning.recent import RECENT_WINDOWS
from learning.services.aggregates import AGGREGATES, Aggregate, OutcomeFacts, PositionSizingAggregate


def _mean(total: str, count: str) -> str:
    """stats.mean for a count of at least one (a row exists because an outcome fell in it)."""
    return f"(({total})::float8 / ({count}))"


def _sharpe(count: str, sum_x: str, sum_sq_x: str, stage: str) -> tuple[dict, str]:
    """stats.sharpe: mean over sample standard deviation; NULL below 2 trades or without spread."""
    mean_and_variance = {
        "average": f"({sum_x} / {count})",
        "variance": f"(({sum_sq_x} - {count} * ({sum_x} / {count}) * ({sum_x} / {count})) / ({count} - 1))",
    }
    sharpe = f"CASE WHEN {count} < 2 OR {stage}.variance <= 1e-18::float8 THEN NULL ELSE {stage}.average / sqrt({stage}.variance) END"
    return mean_and_variance, sharpe


def _added(*names: str) -> dict[str, str]:
    return {name: f"t.{name} + excluded.{name}" for name in names}


def _tally(column: str, outer: str, inner: str, counters: dict[str, tuple[str, str, str]]) -> str:
    """column[outer] with the object at [inner] raised by each counter: name -> (SQL type, zero, amount)."""
    old = f"coalesce(t.{column} -> {outer}, '{{}}'::jsonb)"
    fields = ", ".join(
        f"'{name}', coalesce((({old}) -> {inner} ->> '{name}')::{kind}, {zero}) + {amount}"
        for name, (kind, zero, amount) in counters.items()
    )
    return f"({old}) || jsonb_build_object({inner}, jsonb_build_object({fields}))"


# Each aggregate's SQL, in three steps: the new running sums `n` from t and excluded; stages of
# intermediate figures (each a LATERAL sub-query, so every figure is computed once); and the
# figures its `refresh` computes. `f` is the outcome's facts and the settings (see _FACTS).
def _strategy_performance() -> tuple[dict, list, dict]:
    cum = "(t.cum_pnl_pct + excluded.cum_pnl_pct)"
    peak = f"greatest(t.peak_cum_pnl_pct, {cum})"
    sums = _added(
        "total_trades", "winning_trades", "total_pnl", "sum_pnl_pct", "sum_sq_pnl_pct",
        "sum_win_pnl_pct", "sum_loss_pnl_pct", "sum_duration_minutes", "cum_pnl_pct",
    )  # fmt: skip
    sums["peak_cum_pnl_pct"] = peak
    sums["max_drawdown_pct"] = f"greatest(t.max_drawdown_pct, {peak} - {cum})"
    spread, sharpe = _sharpe("n.total_trades", "n.sum_pnl_pct", "n.sum_sq_pnl_pct", "s1")
    figures = {
        "losing_trades": "n.total_trades - n.winning_trades",
        "win_rate": _mean("n.winning_trades", "n.total_trades"),
        "avg_pnl_pct": _mean("n.sum_pnl_pct", "n.total_trades"),
        "avg_duration_minutes": _mean("n.sum_duration_minutes", "n.total_trades"),
        "sharpe_ratio": sharpe,
    }
    return sums, [("s1", spread)], figures


def _signal_quality() -> tuple[dict, list, dict]:
    sums = _added("sample_size", "successes", "sum_confidence")
    counters = {"trades": ("int", "0", "1"), "wins": ("int", "0", "f.win")}
    sums["market_conditions"] = (
        "t.market_conditions || jsonb_build_object("
        f"'market_regime', {_tally('market_conditions', "'market_regime'", 'f.market_regime', counters)}, "
        f"'volatility_regime', {_tally('market_conditions', "'volatility_regime'", 'f.volatility_regime', counters)})"
    )
    rates = {"predicted": _mean("n.sum_confidence", "n.sample_size"), "actual": _mean("n.successes", "n.sample_size")}
    figures = {
        "predicted_success_rate": "s1.predicted",
        "actual_success_rate": "s1.actual",
        "calibration_score": "1.0::float8 - abs(s1.actual - s1.predicted)",
    }
    return sums, [("s1", rates)], figures


def _market_regime() -> tuple[dict, list, dict]:
    sums = _added("total_trades_in_regime", "winning_trades", "sum_pnl_pct", "sum_duration_minutes")
    counters = {"trades": ("int", "0", "1"), "wins": ("int", "0", "f.win"), "sum_pnl_pct": ("float8", "0.0::float8", "f.pnl_pct")}
    strategies = _tally("regime_characteristics", "'strategies'", "f.strategy_type", counters)
    sums["regime_characteristics"] = f"t.regime_characteristics || jsonb_build_object('strategies', {strategies})"
    rates = {"win_rate": _mean("n.winning_trades", "n.total_trades_in_regime")}
    # The highest win rate shrunk toward the regime's own; ties go to the first name, as in `refresh`.
    shrunk = "(((s.value ->> 'wins')::int + s1.win_rate * f.prior_strength) / ((s.value ->> 'trades')::int + f.prior_strength))"
    best_row = (
        f"SELECT s.key AS name, {shrunk} AS rate FROM jsonb_each(n.regime_characteristics -> 'strategies') s "
        f"ORDER BY rate DESC, s.key COLLATE \"C\" LIMIT 1"
    )
    figures = {
        "avg_trade_duration_minutes": _mean("n.sum_duration_minutes", "n.total_trades_in_regime"),
        "regime_characteristics": (
            "n.regime_characteristics || jsonb_build_object("
            f"'win_rate', to_jsonb(s1.win_rate), 'avg_pnl_pct', to_jsonb({_mean('n.sum_pnl_pct', 'n.total_trades_in_regime')}))"
        ),
        "best_strategy": "s2.name",
        "best_strategy_win_rate": "s2.rate",
    }
    return sums, [("s1", rates), ("s2", best_row)], figures


def _position_sizing() -> tuple[dict, list, dict]:
    sums = _added("sample_size", "wins", "sum_pnl_pct", "sum_sq_pnl_pct", "sum_win_pnl_pct", "sum_loss_pnl_pct")
    spread, sharpe = _sharpe("n.sample_size", "n.sum_pnl_pct", "n.sum_sq_pnl_pct", "s1")
    losses, weight = "(n.sample_size - n.wins)", "least(n.wins, n.sample_size - n.wins)"
    observed = f"((n.sum_win_pnl_pct / n.wins) / (n.sum_loss_pnl_pct / {losses}))"
    evidence = {
        **spread,
        "win_rate": "((n.wins + f.midpoint * f.prior_strength) / (n.sample_size + f.prior_strength))",
        # payoff_ratio with a prior ratio of 1.0
        "payoff": (
            f"(CASE WHEN n.wins = 0 OR {losses} = 0 OR n.sum_loss_pnl_pct <= 0 THEN 1.0::float8 "
            f"ELSE ({observed} * {weight} + 1.0::float8 * f.prior_strength) / ({weight} + f.prior_strength) END)"
        ),
    }
    kelly = {"kelly": "(CASE WHEN s1.payoff <= 0 THEN 0.0::float8 ELSE s1.win_rate - (1.0::float8 - s1.win_rate) / s1.payoff END)"}
    figures = {
        "risk_adjusted_return": sharpe,
        "optimal_position_size_pct": (
            "CASE WHEN s2.kelly <= 0 THEN 0.0::float8 "
            "ELSE least(greatest(f.kelly_fraction * s2.kelly, f.min_size), f.max_size) END"
        ),
    }
    return sums, [("s1", evidence), ("s2", kelly)], figures


def _feature_importance() -> tuple[dict, list, dict]:
    sums = _added("sample_size", "successes", "sum_value", "sum_sq_value", "sum_value_success")
    # stats.correlation with y the 0/1 outcome; Python's integer products are exact, so bigint here.
    count, sum_y = "n.sample_size::bigint", "n.successes::bigint"
    moments = {
        "cov": f"({count} * n.sum_value_success - n.sum_value * {sum_y})",
        "var_x": f"({count} * n.sum_sq_value - n.sum_value * n.sum_value)",
        "var_y": f"({count} * {sum_y} - {sum_y} * {sum_y})",
    }
    correlation = {
        "value": (
            f"(CASE WHEN {count} < 2 THEN 0.0::float8 "
            f"WHEN s1.var_x <= 1e-12::float8 * greatest(1.0::float8, {count} * n.sum_sq_value) OR s1.var_y <= 0 THEN 0.0::float8 "
            f"ELSE greatest(-1.0::float8, least(1.0::float8, s1.cov / sqrt(s1.var_x * s1.var_y))) END)"
        )
    }
    figures = {
        "correlation_with_success": "s2.value",
        "importance_score": "abs(s2.value) * (n.sample_size::float8 / (n.sample_size + f.prior_strength))",
    }
    return sums, [("s1", moments), ("s2", correlation)], figures


def _recent_performance() -> tuple[dict, list, dict]:
    # The window keeps the RECENT_WINDOW_CAPACITY largest entries in exit order: [exit µs, entry µs,
    # symbol, P&L units, success] compared as Python compares the lists (symbols by code point).
    sums = {**_added("total_outcomes"), "window": "t.window || excluded.window"}
    def order_of(e: str) -> str:
        return f"({e} ->> 0)::bigint, ({e} ->> 1)::bigint, ({e} ->> 2) COLLATE \"C\", ({e} ->> 3)::bigint, ({e} ->> 4)::boolean"

    order = order_of("e")
    sorted_window = (
        "SELECT jsonb_agg(w.e ORDER BY w.position) FROM ("
        f"SELECT e, row_number() OVER (ORDER BY {order}) AS position, count(*) OVER () AS total "
        "FROM jsonb_array_elements(n.window) AS e) AS w "
        f"WHERE w.position > w.total - {RECENT_WINDOW_CAPACITY}"
    )
    # Without a sort in the two usual cases (bisect.insort puts an entry after those equal to it): an
    # outcome that sorts after the window's last entry (exit order) is appended, the oldest entry
    # dropped if the window is full; one that sorts before the first entry of a full window is
    # dropped at once. Any other is merged by the sort.
    new, last, first = order_of("(excluded.window -> 0)"), order_of("(t.window -> -1)"), order_of("(t.window -> 0)")
    full = f"jsonb_array_length(t.window) >= {RECENT_WINDOW_CAPACITY}"
    appended = f"CASE WHEN jsonb_array_length(n.window) > {RECENT_WINDOW_CAPACITY} THEN n.window - 0 ELSE n.window END"
    merged = (
        f"CASE WHEN jsonb_array_length(t.window) = 0 OR ROW({last}) <= ROW({new}) THEN {appended} "
        f"WHEN {full} AND ROW({new}) <= ROW({first}) THEN t.window ELSE ({sorted_window}) END"
    )
    # OFFSET 0 keeps the planner from pulling the CASE, and the size, up into every later use of
    # them: each would merge again, or read the stored (compressed) window again.
    kept = f"SELECT m.window, jsonb_array_length(m.window) AS size FROM (SELECT {merged} AS window OFFSET 0) AS m OFFSET 0"
    # window_figures: over the last 20 and 50 entries (of a window that is never empty here).
    def last(count: int) -> str:
        return f"x.position > s1.size - {count}"

    def pnl(count: int) -> str:
        return f"(sum((x.e ->> 3)::bigint) FILTER (WHERE {last(count)}))::float8 / (least(s1.size, {count}) * 1e10::float8)"

    def wins(count: int) -> str:
        return f"(count(*) FILTER (WHERE {last(count)} AND (x.e ->> 4)::boolean))::float8 / least(s1.size, {count})"

    longest = max(RECENT_WINDOWS)
    microseconds = "timestamptz 'epoch' + interval '1 microsecond' * "
    figures_of_window = (
        f"SELECT {pnl(RECENT_WINDOWS[0])} AS pnl_short, {pnl(longest)} AS pnl_long, "
        f"{wins(RECENT_WINDOWS[0])} AS wins_short, {wins(longest)} AS wins_long, least(s1.size, {longest}) AS count, "
        f"{microseconds}max((x.e ->> 1)::bigint) FILTER (WHERE {last(longest)}) AS last_entry, "
        f"{microseconds}max((x.e ->> 0)::bigint) AS last_exit "
        "FROM jsonb_array_elements(s1.window) WITH ORDINALITY AS x(e, position)"
    )
    figures = {
        "window": "s1.window",
        "pnl_pct_20": "s2.pnl_short",
        "pnl_pct_50": "s2.pnl_long",
        "win_rate_20": "s2.wins_short",
        "win_rate_50": "s2.wins_long",
        "window_outcomes": "s2.count",
        "last_entry_time": "s2.last_entry",
        "last_exit_time": "s2.last_exit",
    }
    return sums, [("s1", kept), ("s2", figures_of_window)], figures


_SQL = {
    "StrategyPerformanceAggregate": _strategy_performance(),
    "SignalQualityAggregate": _signal_quality(),
    "MarketRegimeAggregate": _market_regime(),
    "PositionSizingAggregate": _position_sizing(),
    "FeatureImportanceAggregate": _feature_importance(),
    "RecentPerformanceAggregate": _recent_performance(),
    # Counts and a sum only: the dashboard computes its figures from them.
    "DailyOutcomesAggregate": (_added("outcomes", "wins", "shadow"), [], {}),
    "ModelScoreCalibrationAggregate": (_added("outcomes", "successes", "sum_ml_score"), [], {}),
}
# The outcome's facts and the settings the figures use, as one row every upsert can read.
# The parameters: $1 the record, $2 the outcome's facts and the settings the figures use, then
# each aggregate's fresh rows, all as JSON (read into the tables' own column types).
_FACTS = (
    "SELECT strategy_type, market_regime, volatility_regime, win, pnl_pct, midpoint, prior_strength, "
    "kelly_fraction, min_size, max_size FROM jsonb_to_record($2) AS x(strategy_type text, market_regime text, "
    "volatility_regime text, win int, pnl_pct float8, midpoint float8, prior_strength float8, kelly_fraction float8, "
    "min_size float8, max_size float8)"
)


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def _upsert(aggregate: Aggregate, name: str, parameter: int) -> str:
    """The aggregate's INSERT ... ON CONFLICT DO UPDATE of its fresh rows, if the record went in."""
    sums, stages, figures = _SQL[type(aggregate).__name__]
    model, quote = aggregate.model, connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _columns(model))
    # A figure may rewrite a sum's column (the regime's JSON takes its win rate after its tallies).
    carried = [column for column in sums if column not in figures]
    targets = [*carried, *figures, "last_updated"]
    combined = ", ".join(f"{expression} AS {column}" for column, expression in sums.items())
    refreshed = ", ".join([*(f"n.{column}" for column in carried), *figures.values(), "excluded.last_updated"])
    laterals = "".join(f", {_stage_sql(alias, stage)}" for alias, stage in stages)
    keys = ", ".join(quote(model._meta.get_field(field).column) for field in aggregate.key_fields)
    table = quote(model._meta.db_table)
    return (
        f"{name} AS (INSERT INTO {table} AS t ({columns}) "
        f"SELECT {columns} FROM jsonb_populate_recordset(NULL::{table}, ${parameter}) WHERE EXISTS (SELECT FROM record) "
        f"ON CONFLICT ({keys}) DO UPDATE SET ({', '.join(map(quote, targets))}) = "
        f"(SELECT {refreshed} FROM (SELECT {combined} FROM f) AS n, f{laterals}))"
    )


def _stage_sql(alias: str, stage) -> str:
    select = stage if isinstance(stage, str) else "SELECT " + ", ".join(f"{expr} AS {name}" for name, expr in stage.items())
    return f"LATERAL ({select}) AS {alias}"


@lru_cache(maxsize=1)
def _statement() -> tuple[str, str]:
    """The statement's name (by its text, so a changed fold is never run under an old name) and its PREPARE."""
    table = connection.ops.quote_name(TrainingRecord._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in _columns(TrainingRecord))
    parts = [
        f"record AS (INSERT INTO {table} ({columns}) SELECT {columns} FROM jsonb_populate_record(NULL::{table}, $1) "
        "ON CONFLICT (trade_id) DO NOTHING RETURNING id)",
        f"f AS ({_FACTS})",
        *(_upsert(aggregate, f"aggregate_{index}", index + 3) for index, aggregate in enumerate(AGGREGATES)),
    ]
    body = f"WITH {', '.join(parts)} SELECT id FROM record"
    name = f"learning_store_outcome_{hashlib.sha256(body.encode()).hexdigest()[:12]}"
    types = ", ".join(["jsonb"] * (2 + len(AGGREGATES)))
    return name, f"PREPARE {name} ({types}) AS {body}"


# Connections (psycopg's, so a reconnect starts afresh) on which the statement is prepared.
_prepared: weakref.WeakSet = weakref.WeakSet()


def _json_value(value):
    if isinstance(value, Decimal):
        return str(value)  # read by PostgreSQL as numeric, digit for digit
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    return value


@lru_cache(maxsize=None)
def _layout(model: type[models.Model]) -> tuple[tuple[tuple[str, str], ...], tuple[models.Field, ...], tuple[tuple[str, object], ...]]:
    """A table's (column, attribute) pairs, its auto_now fields, and each attribute's default maker."""
    fields = _columns(model)
    return (
        tuple((field.column, field.attname) for field in fields),
        tuple(field for field in fields if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)),
        tuple((field.attname, field.get_default) for field in fields),
    )


def _json_row(model: type[models.Model], obj) -> dict:
    columns, stamped, _ = _layout(model)
    for field in stamped:
        field.pre_save(obj, add=True)
    return {column: _json_value(getattr(obj, attname)) for column, attname in columns}


def _fresh_row(aggregate: Aggregate, key: tuple) -> SimpleNamespace:
    """aggregate.new_row(key) as the fold sees it (each field's default, the key set), without a model
    instance's set-up, which took most of a store's time in Python."""
    row = SimpleNamespace(**{attname: default() for attname, default in _layout(aggregate.model)[2]})
    for name, value in zip(aggregate.key_fields, key, strict=True):
        setattr(row, name, value)
    return row


class FloatOutOfRange(Exception):
    """A float the fold computes is beyond float8's range in SQL (see store_one_postgresql)."""


def covers_every_aggregate() -> bool:
    """Whether every aggregate has its SQL here (a table added to AGGREGATES alone goes the Python way)."""
    return all(type(aggregate).__name__ in _SQL for aggregate in AGGREGATES)


def store_one_postgresql(record: TrainingRecord, *, now: datetime) -> bool:
    """Insert `record` and add it to every aggregate in one statement; False if its trade_id was stored before.

    Outside a transaction the statement is its own transaction, and commits durably.
    Raises FloatOutOfRange, having written nothing, where SQL and Python floats part ways: PostgreSQL
    refuses a product or quotient that underflows to 0 or overflows (Python gives 0.0 or inf), and
    JSON has no inf. That takes features beyond about 1e±154; the caller stores such an outcome by
    the Python fold.
    """
    facts = OutcomeFacts.from_record(record)
    (sizing_key,) = PositionSizingAggregate().keys(facts)
    facts_json = {
        "strategy_type": facts.strategy_type, "market_regime": facts.market_regime,
        "volatility_regime": facts.volatility_regime, "win": int(facts.success), "pnl_pct": facts.pnl_pct,
        "midpoint": label_midpoint(sizing_key[0]),  # the position-sizing row's prior: its bucket's midpoint
        "prior_strength": float(settings.LEARNING_PRIOR_STRENGTH), "kelly_fraction": float(settings.LEARNING_KELLY_FRACTION),
        "min_size": float(settings.LEARNING_MIN_POSITION_SIZE), "max_size": float(settings.LEARNING_MAX_POSITION_SIZE),
    }  # fmt: skip
    try:
        params = _parameters(record, facts, facts_json, now)
    except ValueError as error:  # json.dumps(allow_nan=False) of an infinite sum
        raise FloatOutOfRange(str(error)) from None
    name, prepare = _statement()
    execute = f"EXECUTE {name} ({', '.join(['%s::jsonb'] * len(params))})"
    connection.ensure_connection()
    try:
        with connection.cursor() as cursor:
            if connection.connection not in _prepared:
                cursor.execute(prepare)
                _prepared.add(connection.connection)
            cursor.execute(execute, params)
            stored = cursor.fetchone()
    except DataError as error:
        if "value out of range" in str(error):
            raise FloatOutOfRange(str(error)) from None
        raise
    if stored is None:
        return False
    record.pk = stored[0]
    record._state.adding, record._state.db = False, connection.alias
    return True


def _parameters(record: TrainingRecord, facts: OutcomeFacts, facts_json: dict, now: datetime) -> list[str]:
    params = [json.dumps(_json_row(TrainingRecord, record), allow_nan=False), json.dumps(facts_json, allow_nan=False)]
    for aggregate in AGGREGATES:
        rows = []
        for key in sorted(aggregate.keys(facts)):  # a fixed order, so concurrent stores lock rows alike
            row = _fresh_row(aggregate, key)
            aggregate.apply_all(row, [facts], key)
            aggregate.refresh(row)
            row.last_updated = now
            rows.append(row)
        params.append(json.dumps([_json_row(aggregate.model, row) for row in rows], allow_nan=False))
    return params
