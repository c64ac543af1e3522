"""Storing trade outcomes: validate, insert once, and update every aggregate in one transaction."""
import logging
import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.utils import DataError
from django.utils import timezone

from learning.models import (
    ExitReason,
    FillSource,
    MarketRegime,
    Side,
    SystemType,
    TrainingRecord,
    VolatilityRegime,
)
from learning.services.aggregates import OutcomeFacts, aggregates_apply
from learning.services.outcome_statement import FloatOutOfRange, covers_every_aggregate, store_one_postgresql
from learning.types import StoreResult, TradeOutcome
from tradelearn.bulk import bulk_insert

logger = logging.getLogger(__name__)

# A concurrent store of the same trade_id, or a deadlock between two stores, is resolved by
# trying the whole transaction again; the second attempt sees the other store's commit.
_ATTEMPTS = 4

_CHOICES = {
    "system_type": SystemType,
    "side": Side,
    "market_regime": MarketRegime,
    "volatility_regime": VolatilityRegime,
    "exit_reason": ExitReason,
    "fill_source": FillSource,
}
_ALLOWED = {name: frozenset(choices.values) for name, choices in _CHOICES.items()}  # Choices.values is rebuilt on every read
_TEXT_LIMITS = {"trade_id": 64, "symbol": 32, "strategy_type": 64}
_PRICE_INTEGER_DIGITS = 18  # DecimalField(max_digits=28, decimal_places=10)
_MONEY_INTEGER_DIGITS = 14
_PLACES = Decimal("1e-10")


def _decimal(value, name: str, errors: dict, *, positive: bool = False, integer_digits: int) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        errors[name] = "Must be a number."
        return None
    try:
        number = value if type(value) is Decimal else Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors[name] = "Must be a number."
        return None
    if not number.is_finite():
        errors[name] = "Must be a finite number."
    elif positive and number <= 0:
        errors[name] = "Must be greater than zero."
    elif number.adjusted() >= integer_digits:
        errors[name] = f"Must be below 10^{integer_digits}."
    else:
        return number.quantize(_PLACES)
    return None


def _probability(value, name: str, errors: dict) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        errors[name] = "Must be a number."
    elif not math.isfinite(float(value)):
        errors[name] = "Must be a finite number."
    elif not 0.0 <= float(value) <= 1.0:
        errors[name] = "Must lie in [0, 1]."
    else:
        return float(value)
    return None


def _validated_record(outcome: TradeOutcome) -> TrainingRecord:
    """Check every field; raise one ValidationError naming each bad field, or build the record."""
    errors: dict[str, str] = {}
    for name, limit in _TEXT_LIMITS.items():
        value = getattr(outcome, name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = "Must be a non-empty string."
        elif len(value) > limit:
            errors[name] = f"Must be at most {limit} characters."
    for name, choices in _CHOICES.items():
        value = getattr(outcome, name)
        if not (isinstance(value, str) and value in _ALLOWED[name]):
            errors[name] = f"Unknown value {value!r}; expected one of {', '.join(choices.values)}."

    confidence = _probability(outcome.confidence_score, "confidence_score", errors)
    ml_score = None if outcome.ml_score is None else _probability(outcome.ml_score, "ml_score", errors)
    entry_price = _decimal(outcome.entry_price, "entry_price", errors, positive=True, integer_digits=_PRICE_INTEGER_DIGITS)
    exit_price = _decimal(outcome.exit_price, "exit_price", errors, positive=True, integer_digits=_PRICE_INTEGER_DIGITS)
    pnl_pct = _decimal(outcome.pnl_pct, "pnl_pct", errors, integer_digits=10)
    net_pnl = _decimal(outcome.net_pnl, "net_pnl", errors, integer_digits=_MONEY_INTEGER_DIGITS)
    fees = _decimal(outcome.fees, "fees", errors, integer_digits=_MONEY_INTEGER_DIGITS)
    if fees is not None and fees < 0:
        errors["fees"] = "Must not be negative."

    times_ok = True
    for name in ("entry_time", "exit_time"):
        value = getattr(outcome, name)
        if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
            errors[name] = "Must be a timezone-aware datetime."
            times_ok = False
    if times_ok and outcome.exit_time < outcome.entry_time:
        errors["exit_time"] = "Must not be before entry_time."

    duration = outcome.duration_minutes
    if duration is None and times_ok:
        duration = max(0, int((outcome.exit_time - outcome.entry_time).total_seconds() // 60))
    elif duration is not None and (isinstance(duration, bool) or not isinstance(duration, int) or duration < 0):
        errors["duration_minutes"] = "Must be a whole number of minutes, not negative."

    success = outcome.success
    if net_pnl is not None:
        profitable = net_pnl > 0
        if success is None:
            success = profitable
        elif not isinstance(success, bool):
            errors["success"] = "Must be true or false."
        elif success != profitable:
            errors["success"] = f"Must agree with net_pnl: a trade succeeds exactly when net P&L after fees > 0 (net_pnl={net_pnl})."

    features = outcome.features
    if not isinstance(features, dict):
        errors["features"] = "Must be an object of feature name to number."
    elif not _plain_features(features):
        for name, value in features.items():
            if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
                errors[f"features.{name}"] = "Must be a number."
            elif not math.isfinite(value):
                errors[f"features.{name}"] = "Must be a finite number."
    if not isinstance(outcome.model_versions, dict):
        errors["model_versions"] = "Must be an object of model kind to version."
    if not isinstance(outcome.is_shadow, bool):
        errors["is_shadow"] = "Must be true or false."

    if errors:
        raise ValidationError(errors)
    return TrainingRecord(
        trade_id=outcome.trade_id,
        symbol=outcome.symbol,
        strategy_type=outcome.strategy_type,
        system_type=outcome.system_type,
        side=outcome.side,
        is_shadow=outcome.is_shadow,
        fill_source=outcome.fill_source,
        confidence_score=confidence,
        ml_score=ml_score,
        entry_price=entry_price,
        exit_price=exit_price,
        pnl_pct=pnl_pct,
        net_pnl=net_pnl,
        fees=fees,
        duration_minutes=duration,
        market_regime=outcome.market_regime,
        volatility_regime=outcome.volatility_regime,
        exit_reason=outcome.exit_reason,
        success=success,
        features=dict(features),
        model_versions=dict(outcome.model_versions),
        entry_time=outcome.entry_time,
        exit_time=outcome.exit_time,
    )


def _plain_features(features: dict) -> bool:
    """Whether every name is a string and every value a finite float: the usual case, checked in bulk."""
    return (
        set(map(type, features)) <= {str}
        and set(map(type, features.values())) <= {float}
        and all(map(math.isfinite, features.values()))
    )


def validate_trade_outcome(outcome: TradeOutcome) -> TrainingRecord:
    """Raise ValidationError naming every bad field of an outcome; else the (unsaved) record it makes."""
    return _validated_record(outcome)


def _validated_records(outcomes: Sequence[TradeOutcome]) -> list[TrainingRecord]:
    if len(outcomes) == 1:
        return [_validated_record(outcomes[0])]
    records, errors = [], {}
    for index, outcome in enumerate(outcomes):
        try:
            records.append(_validated_record(outcome))
        except ValidationError as error:
            errors.update({f"{index}.{field}": messages for field, messages in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return records


def store_trade_outcomes(*, outcomes: Sequence[TradeOutcome]) -> StoreResult:
    """Store closed trades once each, with their aggregate updates, all or nothing.

    Every outcome is validated first: one bad field anywhere raises ValidationError and
    nothing is written. A trade_id already stored (earlier, concurrently, or twice in this
    batch) is not stored again and changes no aggregate; it is reported in `duplicates`.
    """
    records = _validated_records(outcomes)
    # One outcome on PostgreSQL is one statement (see outcome_statement), which is atomic by
    # itself: outside a transaction it needs no BEGIN and COMMIT round trips of its own.
    one_statement = len(records) == 1 and connection.vendor == "postgresql" and covers_every_aggregate()
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            if one_statement and not connection.in_atomic_block:
                return _insert_one(records[0])
            # A savepoint when the caller is in a transaction (an engine closing a trade), so a
            # conflict here rolls back only this store and can be retried.
            with transaction.atomic():
                if one_statement:
                    return _insert_one(records[0])
                return _insert_new(records, check_existing=attempt > 1)
        except FloatOutOfRange:
            # Nothing was written (the statement failed alone, or with this store's savepoint).
            one_statement = False
            continue
        except (IntegrityError, OperationalError) as error:
            if isinstance(error, OperationalError) and not _is_transient(error):
                raise
            if attempt == _ATTEMPTS:
                raise
            logger.info("Retrying store of %d outcomes after %s", len(records), type(error).__name__)
    raise AssertionError("unreachable")


def store_trade_outcome(*, outcome: TradeOutcome) -> StoreResult:
    """Store one closed trade; `result.duplicate` tells the caller it had been stored already."""
    return store_trade_outcomes(outcomes=[outcome])


def _is_transient(error: OperationalError) -> bool:
    text = str(error).lower()
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text


def _insert_one(record: TrainingRecord) -> StoreResult:
    try:
        stored = store_one_postgresql(record, now=timezone.now())
    except DataError as error:
        raise ValidationError(f"A value does not fit its column: {error}") from None
    return StoreResult(stored=1) if stored else StoreResult(stored=0, duplicates=(record.trade_id,))


def _insert_new(records: list[TrainingRecord], *, check_existing: bool) -> StoreResult:
    # The first attempt skips the look-up: a duplicate makes the insert fail and the retry checks.
    existing = set()
    if check_existing:
        existing = set(
            TrainingRecord.objects.filter(trade_id__in=[r.trade_id for r in records]).values_list("trade_id", flat=True)
        )
    fresh, duplicates, seen = [], [], set(existing)
    for record in records:
        if record.trade_id in seen:
            duplicates.append(record.trade_id)
        else:
            seen.add(record.trade_id)
            fresh.append(record)
    if fresh:
        try:
            bulk_insert(TrainingRecord, fresh)
        except DataError as error:
            raise ValidationError(f"A value does not fit its column: {error}") from None
        aggregates_apply(facts_list=[OutcomeFacts.from_record(record) for record in fresh])
    return StoreResult(stored=len(fresh), duplicates=tuple(duplicates))
