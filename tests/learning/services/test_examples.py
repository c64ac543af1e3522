"""training_examples_add: schema-checked features, a boolean target and a symbol; all or nothing; bounded."""
import math

import pytest
from django.core.exceptions import ValidationError

from learning.models import StrategyPerformance, TrainingExample, TrainingRecord
from learning.services.examples import ExampleInput, training_examples_add
from tests.learning.learnable import learnable_features

pytestmark = pytest.mark.django_db

ROWS, WINS = learnable_features(3, seed=31)


def example(index: int = 0, **changes) -> ExampleInput:
    fields = {"features": dict(ROWS[index]), "target": bool(WINS[index]), "symbol": "ETHUSDT", **changes}
    return ExampleInput(**fields)


def test_examples_are_stored_unlearned_and_never_become_trades():
    assert training_examples_add(examples=[example(0), example(1), example(2)]) == 3
    stored = TrainingExample.objects.order_by("id")
    assert [row.learned_at for row in stored] == [None] * 3
    assert stored[0].features == ROWS[0] and stored[0].source == "api"
    assert not TrainingRecord.objects.exists() and not StrategyPerformance.objects.exists()


def test_one_bad_example_stores_nothing_and_errors_name_index_and_field():
    bad_features = dict(ROWS[1], rsi_14=math.nan)
    with pytest.raises(ValidationError) as error:
        training_examples_add(examples=[example(0), example(1, features=bad_features, target=1, symbol="")])
    assert error.value.message_dict == {
        "1.features.rsi_14": ["Not a finite number (nan)."],
        "1.target": ["Must be true (a net profit) or false."],
        "1.symbol": ["Must be a non-empty string."],
    }
    assert not TrainingExample.objects.exists()


def test_a_single_example_has_no_index_prefix():
    features = dict(ROWS[0])
    del features["side"]
    with pytest.raises(ValidationError) as error:
        training_examples_add(examples=[example(0, features=features)])
    assert error.value.message_dict == {"features.side": ["Missing."]}


def test_the_batch_size_is_bounded(settings):
    settings.LEARNING_MAX_EXAMPLES_PER_REQUEST = 2
    with pytest.raises(ValidationError) as error:
        training_examples_add(examples=[example(0), example(1), example(2)])
    assert "examples" in error.value.message_dict
    with pytest.raises(ValidationError):
        training_examples_add(examples=[])
    assert not TrainingExample.objects.exists()
