"""Stored outcomes as the learners read them: schema vectors, the record matrix as of a time, schema errors as messages."""
from datetime import datetime
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError

from learning.ml.schema import FeatureSchemaError, current_feature_schema
from learning.ml.weights import average_uniqueness
from learning.models import TrainingRecord


def require_aware(value: datetime | None, name: str) -> None:
    """Refuse a naive (or non-datetime) `as_of`-like argument, naming it."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValidationError({name: "Must be a timezone-aware datetime."})


def schema_vector(features) -> np.ndarray | None:
    """A stored record's features in schema order, or None when they do not fit the schema."""
    try:
        return current_feature_schema().vector(features)
    except FeatureSchemaError:
        return None


def schema_error_messages(error: FeatureSchemaError, *, prefix: str = "") -> dict[str, str]:
    """The schema's complaint per feature, as sentences keyed by the feature's name."""
    return {f"{prefix}{name}": f"{message[0].upper()}{message[1:]}." for name, message in error.errors.items()}


class TrainingMatrix(NamedTuple):
    """Usable records in exit order, as the batch model trains on them."""

    X: np.ndarray
    y: np.ndarray
    exit_times: list[datetime]
    ids: list[int]
    skipped: int  # records whose features do not fit the schema
    entry_times: list[datetime]
    symbols: list[str]
    systems: list[str]

    @property
    def weights(self) -> np.ndarray:
        """Each record's average uniqueness among its system's records overlapping it on its symbol (mean 1)."""
        return average_uniqueness(self.entry_times, self.exit_times, self.symbols, self.systems)


def training_matrix(as_of: datetime | None) -> TrainingMatrix:
    """All records (closed before `as_of`) that fit the schema, oldest exit first."""
    records = TrainingRecord.objects.order_by("exit_time", "id")
    if as_of is not None:
        records = records.filter(exit_time__lt=as_of)
    vectors, outcomes, exit_times, ids, entry_times, symbols, systems = [], [], [], [], [], [], []
    skipped = 0
    rows = records.values_list("id", "features", "success", "exit_time", "entry_time", "symbol", "system_type").iterator(chunk_size=2000)
    for record_id, features, success, exit_time, entry_time, symbol, system in rows:
        vector = schema_vector(features or {})
        if vector is None:
            skipped += 1
            continue
        vectors.append(vector)
        outcomes.append(int(success))
        exit_times.append(exit_time)
        ids.append(record_id)
        entry_times.append(entry_time)
        symbols.append(symbol)
        systems.append(system)
    X = np.vstack(vectors) if vectors else np.empty((0, len(current_feature_schema().names)))
    return TrainingMatrix(X, np.asarray(outcomes, dtype=np.int64), exit_times, ids, skipped, entry_times, symbols, systems)


def exchange_fill_weights(ids: list[int]) -> np.ndarray:
    """Per record of `ids`, its fill factor in the batch fit: LEARNING_EXCHANGE_FILL_WEIGHT for exchange fills, 1 for paper ones."""
    weight = settings.LEARNING_EXCHANGE_FILL_WEIGHT
    exchange_ids = set() if weight == 1.0 else set(TrainingRecord.objects.filter(fill_source="exchange").values_list("id", flat=True))
    return np.array([weight if record_id in exchange_ids else 1.0 for record_id in ids])
