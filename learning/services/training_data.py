"""Stored outcomes as the learners read them: schema vectors, the record matrix as of a time, schema errors as messages."""
from datetime import datetime

import numpy as np
from django.core.exceptions import ValidationError

from learning.ml.schema import FeatureSchemaError, current_feature_schema
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


def training_matrix(as_of: datetime | None):
    """All records (closed before `as_of`) that fit the schema, oldest exit first: features, outcomes, exit times, ids, skipped."""
    records = TrainingRecord.objects.order_by("exit_time", "id")
    if as_of is not None:
        records = records.filter(exit_time__lt=as_of)
    vectors, outcomes, exit_times, ids = [], [], [], []
    skipped = 0
    for record_id, features, success, exit_time in records.values_list("id", "features", "success", "exit_time").iterator(chunk_size=2000):
        vector = schema_vector(features or {})
        if vector is None:
            skipped += 1
            continue
        vectors.append(vector)
        outcomes.append(int(success))
        exit_times.append(exit_time)
        ids.append(record_id)
    X = np.vstack(vectors) if vectors else np.empty((0, len(current_feature_schema().names)))
    return X, np.asarray(outcomes, dtype=np.int64), exit_times, ids, skipped
