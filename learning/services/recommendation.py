"""Should this signal be taken, and how large? Answered by expected net P&L after fees, from the learned statistics.

Thin history must not swing a decision, so every figure is a posterior mean: the win rate of
the signal's context (strategy, system, confidence range, market and volatility regime) is
shrunk toward its calibrated confidence (a Beta prior worth LEARNING_PRIOR_STRENGTH trades),
and the other system's trades in the same conditions (whatever its strategy) count as extra
evidence with weight LEARNING_TRANSFER_WEIGHT, fading as this system's own history grows.
A model probability (`ml_score`), when the caller gives one, replaces that win rate: the caller
gives it only while the model beats the running base rate on this system's recent outcomes.
The payoff (average net win and loss) is always the learned one, shrunk toward the plan's exits.
"""
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection

from learning import stats
from learning.buckets import ALL_BUCKETS, confidence_range, label_midpoint
from learning.models import MarketRegime, PositionSizing, SignalQuality, StrategyPerformance, SystemType, VolatilityRegime
from learning.services.aggregates import position_size
from learning.types import SignalContext, SignalRecommendation

# Used only when the engine gives no planned exits and there is no history to learn them from.
_DEFAULT_MOVE_PCT = 0.01


# Read once: a TextChoices' `values` builds a new list at each access.
_CHOICES = {
    "system_type": tuple(SystemType.values),
    "market_regime": tuple(MarketRegime.values),
    "volatility_regime": tuple(VolatilityRegime.values),
}
_MIDPOINTS = tuple(label_midpoint(label) for label in ALL_BUCKETS)


def _validate(context: SignalContext) -> None:
    errors = {}
    if not isinstance(context.strategy_type, str) or not context.strategy_type:
        errors["strategy_type"] = "Must be a non-empty string."
    for name, choices in _CHOICES.items():
        if getattr(context, name) not in choices:
            errors[name] = f"Unknown value {getattr(context, name)!r}; expected one of {', '.join(choices)}."
    for name in ("confidence_score", "ml_score"):
        value = getattr(context, name)
        if value is None and name == "ml_score":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors[name] = "Must be a finite number."
        elif not 0.0 <= value <= 1.0:
            errors[name] = "Must lie in [0, 1]."
    for name in ("take_profit_pct", "stop_loss_pct"):
        value = getattr(context, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
            errors[name] = "Must be a positive finite number."
    if errors:
        raise ValidationError(errors)


def calibrate_confidence(raw_confidence: float, buckets: dict[str, tuple[int, int]], prior_strength: float) -> float:
    """Map a raw confidence to the success rate signals like it delivered, monotone in the raw value.

    Each bucket's success rate is shrunk toward its midpoint (so no history means no change),
    made non-decreasing across buckets by isotonic regression, then interpolated linearly
    between bucket midpoints (with slope 1 beyond the outer midpoints).
    """
    midpoints = _MIDPOINTS
    curve = _calibration_curve(tuple(buckets.get(label, (0, 0)) for label in ALL_BUCKETS), prior_strength)
    if raw_confidence <= midpoints[0]:
        value = curve[0] + (raw_confidence - midpoints[0])
    elif raw_confidence >= midpoints[-1]:
        value = curve[-1] + (raw_confidence - midpoints[-1])
    else:
        index = next(i for i in range(1, len(midpoints)) if raw_confidence <= midpoints[i])
        left, right = midpoints[index - 1], midpoints[index]
        fraction = (raw_confidence - left) / (right - left)
        value = curve[index - 1] + fraction * (curve[index] - curve[index - 1])
    return min(1.0, max(0.0, value))


@functools.lru_cache(maxsize=1024)
def _calibration_curve(buckets: tuple[tuple[int, int], ...], prior_strength: float) -> tuple[float, ...]:
    """The calibrated success rate at each bucket's midpoint, from (trades, successes) per bucket.

    Kept for the evidence it was computed from: every signal asks for it, and the evidence changes
    only when a trade of that signal type closes.
    """
    shrunk, weights = [], []
    for (trials, successes), midpoint in zip(buckets, _MIDPOINTS):
        shrunk.append(stats.shrink(successes, trials, prior_mean=midpoint, prior_strength=prior_strength) if trials or prior_strength else midpoint)
        weights.append(trials + prior_strength or 1e-9)
    # SciPy's, not scikit-learn's: the same pooling without ~120 µs of argument checks on every new curve;
    # imported here, not at import, so that commands that never recommend start faster.
    from scipy.optimize import isotonic_regression

    return tuple(isotonic_regression(shrunk, weights=weights, increasing=True).x.tolist())


@dataclass(frozen=True)
class Evidence:
    """The learned rows one recommendation rests on."""

    quality: list[tuple[str, int, int]]  # (confidence bucket, trades, successes) of this signal type
    strategy: list[tuple[str, str, int, int, float, float]]  # (system, strategy, trades, wins, Σwin, Σloss) here
    sizing: tuple[float, int] | None  # (optimal size, trades) learned in these conditions


def _evidence(context: SignalContext, cell_range: str) -> Evidence:
    """The three learned tables' rows a recommendation needs, read in one round trip.

    One UNION query rather than three ORM queries: a recommendation is asked for on every
    signal, and its time was mostly the per-query cost.
    """
    quote = connection.ops.quote_name
    conditions = "confidence_range = %s AND market_regime = %s AND volatility_regime = %s"
    sql = f"""
        SELECT 'quality', confidence_bucket, '', sample_size, successes, 0.0, 0.0
          FROM {quote(SignalQuality._meta.db_table)} WHERE signal_type = %s
        UNION ALL
        SELECT 'strategy', system_type, strategy_type, total_trades, winning_trades, sum_win_pnl_pct, sum_loss_pnl_pct
          FROM {quote(StrategyPerformance._meta.db_table)} WHERE {conditions}
        UNION ALL
        SELECT 'sizing', '', '', sample_size, 0, optimal_position_size_pct, 0.0
          FROM {quote(PositionSizing._meta.db_table)} WHERE {conditions}
    """
    cell = [cell_range, context.market_regime, context.volatility_regime]
    with connection.cursor() as cursor:
        cursor.execute(sql, [context.strategy_type, *cell, *cell])
        rows = cursor.fetchall()
    quality = [(label, int(n), int(s)) for kind, label, _, n, s, _, _ in rows if kind == "quality"]
    strategy = [(system, strategy, int(n), int(w), float(a), float(b)) for kind, system, strategy, n, w, a, b in rows if kind == "strategy"]
    sizing = next(((float(size), int(n)) for kind, _, _, n, _, size, _ in rows if kind == "sizing"), None)
    return Evidence(quality=quality, strategy=strategy, sizing=sizing)


EvidenceSource = Callable[[SignalContext, str], Evidence]


def get_signal_recommendation(*, context: SignalContext, evidence: EvidenceSource | None = None) -> SignalRecommendation:
    """Decide take or skip and the size for one signal, explaining how much history backs it.

    The learned rows are read from the database, or from `evidence(context, confidence_range)`
    when given: a replay keeps them in memory between its writes (learning.services.session).
    """
    _validate(context)
    strength = settings.LEARNING_PRIOR_STRENGTH
    cell_range = confidence_range(context.confidence_score)

    evidence = (evidence or _evidence)(context, cell_range)
    calibrated = calibrate_confidence(
        context.confidence_score, {bucket: (n, s) for bucket, n, s in evidence.quality}, strength
    )

    own = dict(trades=0, wins=0, sum_win=0.0, sum_loss=0.0)
    other = dict(own)
    # Our own evidence is this strategy on this system; the other system's is whatever it traded
    # in the same conditions (the two engines run different strategies in the same markets).
    for system, strategy, trades, wins, sum_win, sum_loss in evidence.strategy:
        if system == context.system_type:
            if strategy != context.strategy_type:
                continue
            tally = own
        else:
            tally = other
        tally.update(
            trades=tally["trades"] + trades,
            wins=tally["wins"] + wins,
            sum_win=tally["sum_win"] + sum_win,
            sum_loss=tally["sum_loss"] + sum_loss,
        )

    # The other system's trades count for less, and for less still as our own history grows.
    transfer = settings.LEARNING_TRANSFER_WEIGHT * strength / (strength + own["trades"]) if strength else 0.0
    trades = own["trades"] + transfer * other["trades"]
    wins = own["wins"] + transfer * other["wins"]
    sum_win = own["sum_win"] + transfer * other["sum_win"]
    sum_loss = own["sum_loss"] + transfer * other["sum_loss"]
    statistics_win_rate = stats.shrink(wins, trades, prior_mean=calibrated, prior_strength=strength)
    # A model probability given here has earned its say (the engine's honesty guard): it is the
    # win rate, and the learned statistics supply the payoff.
    win_rate = statistics_win_rate if context.ml_score is None else context.ml_score

    prior_win = context.take_profit_pct or _DEFAULT_MOVE_PCT
    prior_loss = context.stop_loss_pct or _DEFAULT_MOVE_PCT
    losses = trades - wins
    avg_win = stats.shrink(sum_win, wins, prior_mean=prior_win, prior_strength=strength) if wins + strength else prior_win
    avg_loss = stats.shrink(sum_loss, losses, prior_mean=prior_loss, prior_strength=strength) if losses + strength else prior_loss
    expected_pnl = win_rate * avg_win - (1.0 - win_rate) * avg_loss

    context_size = position_size(win_rate=win_rate, payoff_ratio=avg_win / avg_loss if avg_loss > 0 else 0.0)
    sizing = evidence.sizing
    size = context_size
    if sizing and sizing[1]:
        # Lean on the size that worked across strategies in these conditions as it accumulates.
        learned_size, learned_n = sizing
        weight = learned_n / (learned_n + strength) if strength else 1.0
        size = weight * learned_size + (1.0 - weight) * context_size

    take = expected_pnl > settings.LEARNING_MIN_EXPECTED_PNL_PCT and size > 0
    # A strategy never seen (no outcome of it in any confidence bucket, on either system).
    unseen = not any(trades for _, trades, _ in evidence.quality)
    if not take:
        size = 0.0
    elif unseen:
        # Nothing it did backs the priors' promise: trade to learn, at the conservative default size.
        size = settings.LEARNING_MIN_POSITION_SIZE
    elif context_size > 0:
        size = min(max(size, settings.LEARNING_MIN_POSITION_SIZE), settings.LEARNING_MAX_POSITION_SIZE)

    if not take:
        verdict = "skip."
    elif unseen:
        verdict = f"take, size {size:.2%} of equity: the conservative default, as {context.strategy_type} has no history yet."
    else:
        verdict = f"take, size {size:.2%} of equity (fractional Kelly)."
    other_name = SystemType.PROFIT_SCRAPING if context.system_type == SystemType.PAPER_TRADING else SystemType.PAPER_TRADING
    if context.ml_score is None:
        win_source = f"Win rate {win_rate:.1%} rests on"
    else:
        win_source = f"Win rate {win_rate:.1%} is the model's (the learned statistics say {statistics_win_rate:.1%}, from"
    reasoning = (
        f"{win_source} {own['trades']} {context.system_type} trades of {context.strategy_type} "
        f"at confidence {cell_range} in {context.market_regime}/{context.volatility_regime}"
        f" and {other['trades']} {other_name} trades in the same conditions weighted {transfer:.2f} each,"
        f" shrunk toward the calibrated confidence {calibrated:.1%} (prior worth {strength:g} trades){')' if context.ml_score is not None else ''}."
        f" Expected net {expected_pnl:+.2%} per trade (avg win {avg_win:.2%}, avg loss {avg_loss:.2%})"
        f" → {verdict}"
    )
    return SignalRecommendation(
        should_take_trade=take,
        confidence_adjustment=calibrated - context.confidence_score,
        calibrated_confidence=calibrated,
        recommended_position_size=size,
        expected_win_rate=win_rate,
        expected_pnl_pct=expected_pnl,
        sample_size=own["trades"],
        transfer_sample_size=transfer * other["trades"],
        reasoning=reasoning,
    )
