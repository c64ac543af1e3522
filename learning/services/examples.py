"""Training examples: labelled feature vectors sent through the API, validated and stored for the next online update."""
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from learning.ml.schema import FeatureSchemaError, current_feature_schema
from learning.models import TrainingExample
from learning.services.training_data import schema_error_messages

SYMBOL_MAX_LENGTH = TrainingExample._meta.get_field("symbol").max_length
SOURCE_MAX_LENGTH = TrainingExample._meta.get_field("source").max_length


@dataclass(frozen=True, kw_only=True)
class ExampleInput:
    """A labelled feature vector sent to `/ml/online/add_training_data`."""

    features: Mapping[str, float]
    target: bool
    symbol: str
    source: str = "api"


def _example_errors(example) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(example, ExampleInput):
        return {"example": "Must be an example with features, target and symbol."}
    if not isinstance(example.features, Mapping):
        errors["features"] = "Must be an object of feature name to number."
    else:
        try:
            current_feature_schema().vector(example.features)
        except FeatureSchemaError as error:
            errors.update(schema_error_messages(error, prefix="features."))
    if not isinstance(example.target, bool):
        errors["target"] = "Must be true (a net profit) or false."
    for name, limit in (("symbol", SYMBOL_MAX_LENGTH), ("source", SOURCE_MAX_LENGTH)):
        value = getattr(example, name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = "Must be a non-empty string."
        elif len(value) > limit:
            errors[name] = f"Must be at most {limit} characters."
    return errors


@transaction.atomic
def training_examples_add(*, examples: Sequence[ExampleInput]) -> int:
    """Store labelled examples for the next online update, all or nothing; returns how many.

    Errors name the field (`features.rsi_14`, `target`, `symbol`), prefixed with the example's
    index when more than one is sent.
    """
    limit = settings.LEARNING_MAX_EXAMPLES_PER_REQUEST
    if not examples:
        raise ValidationError({"examples": "Send at least one example."})
    if len(examples) > limit:
        raise ValidationError({"examples": f"At most {limit} examples per request; got {len(examples)}."})
    errors: dict[str, str] = {}
    for index, example in enumerate(examples):
        prefix = f"{index}." if len(examples) > 1 else ""
        errors.update({f"{prefix}{name}": message for name, message in _example_errors(example).items()})
    if errors:
        raise ValidationError(errors)
    TrainingExample.objects.bulk_create(
        [
            TrainingExample(
                features={name: float(example.features[name]) for name in current_feature_schema().names},
                target=example.target,
                symbol=example.symbol.strip(),
                source=example.source.strip(),
            )
            for example in examples
        ]
    )
    return len(examples)
