"""online_update: learns each record once, in order, respecting as_of, skipping misfits, checkpointing."""
import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from learning.models import ModelVersion, OnlineLearningState, TrainingExample, TrainingRecord
from learning.services.examples import ExampleInput, training_examples_add
from learning.services.online import online_checkpoint, online_update
from learning.services.training_data import training_matrix
from learning.services.versions import load_model
from learning.services import store_trade_outcomes
from tests.factories import TradeOutcomeFactory
from tests.learning.learnable import START, learnable_features, learnable_outcomes, store_learnable

pytestmark = pytest.mark.django_db


def learned_matrix():
    X, y, *_ = training_matrix(None)
    return X, y


def online_versions():
    return list(ModelVersion.objects.filter(kind="online").order_by("sequence"))


def test_learns_only_records_not_learned_yet():
    store_learnable(40)
    first = online_update()
    assert (first.learned, first.samples_seen, first.version) == (40, 40, "online-0001")
    assert set(first.metrics) == {"sgd", "pa", "mlp", "ensemble"}

    again = online_update()
    assert again.learned == 0 and again.samples_seen == 40 and again.version == "online-0001"

    store_learnable(25, seed=1, start=START + timedelta(days=30))
    third = online_update()
    assert (third.learned, third.samples_seen) == (25, 65)
    assert OnlineLearningState.objects.get().samples_learned == 65


def test_shadow_trades_and_both_systems_are_learned():
    store_learnable(10, seed=2, is_shadow=True, system_type="profit_scraping")
    store_learnable(10, seed=3, system_type="paper_trading")
    assert online_update().learned == 20


def test_as_of_learns_only_trades_closed_before_it_then_the_rest_later():
    outcomes = store_learnable(30)
    as_of = outcomes[20].exit_time
    result = online_update(as_of=as_of)
    assert result.learned == 20
    assert ModelVersion.objects.get(active=True, kind="online").trained_through_exit_time < as_of
    assert online_update(as_of=outcomes[-1].exit_time + timedelta(minutes=1)).learned == 10
    assert online_update().learned == 0


def test_records_whose_features_do_not_fit_the_schema_are_skipped_and_counted():
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(5))  # the demo's 3-feature kind of record
    store_learnable(12)
    result = online_update()
    assert (result.learned, result.skipped, result.samples_seen) == (12, 5, 12)
    assert OnlineLearningState.objects.get().records_skipped == 5
    assert online_update().skipped == 0


def test_only_misfits_write_no_version():
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(3))
    result = online_update()
    assert (result.learned, result.skipped, result.version) == (0, 3, None)
    assert not ModelVersion.objects.exists()


def test_added_examples_are_learned_once_and_marked():
    rows, wins = learnable_features(6, seed=4)
    training_examples_add(examples=[ExampleInput(features=f, target=bool(w), symbol="BTCUSDT") for f, w in zip(rows, wins)])
    store_learnable(4)
    assert online_update().learned == 10
    assert not TrainingExample.objects.filter(learned_at__isnull=True).exists()
    assert online_update().learned == 0


def test_max_records_bounds_one_update(settings):
    store_learnable(30)
    assert online_update(max_records=12).learned == 12
    assert online_update(max_records=100).learned == 18


def test_checkpoints_every_n_samples_and_keeps_only_the_latest_interim(settings):
    settings.LEARNING_CHECKPOINT_EVERY = 20
    settings.LEARNING_ONLINE_BATCH_SIZE = 8
    store_learnable(50)
    result = online_update()
    assert result.samples_seen == 50
    versions = online_versions()
    # Milestones at 20 and 40 samples are kept; the end of the update (50) is the interim tip.
    assert [(v.samples_seen, v.is_interim, v.active) for v in versions] == [(20, False, False), (40, False, False), (50, True, True)]
    assert versions[-1].replaced == versions[1]

    store_learnable(5, seed=9, start=START + timedelta(days=30))
    online_update()
    versions = online_versions()
    # The new tip replaced the old one, which is gone; roll-back still leads to the last milestone.
    assert [(v.samples_seen, v.is_interim) for v in versions] == [(20, False), (40, False), (55, True)]
    assert versions[-1].replaced == versions[1]


@pytest.mark.django_db(transaction=True)
def test_a_record_committed_while_an_update_runs_is_learned_by_the_next():
    store_learnable(10)
    stored, release = threading.Event(), threading.Event()
    late = learnable_outcomes(1, seed=5, start=START + timedelta(days=40))

    def store_slowly():
        try:
            with transaction.atomic():
                store_trade_outcomes(outcomes=late)
                stored.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    writer = threading.Thread(target=store_slowly)
    writer.start()
    try:
        assert stored.wait(timeout=60)
        assert online_update().learned == 10  # the late record is not committed yet
    finally:
        release.set()
        writer.join()
    assert TrainingRecord.objects.get(trade_id=late[0].trade_id).learned_at is None
    assert online_update().learned == 1
    assert not TrainingRecord.objects.filter(learned_at__isnull=True).exists()


def test_each_record_is_claimed_once_with_its_learning(settings):
    settings.LEARNING_CHECKPOINT_EVERY = 8
    store_learnable(20)
    online_update(max_records=12)
    learned = TrainingRecord.objects.filter(learned_at__isnull=False)
    # Claimed in id order, chunk by chunk: each chunk stamps the records its checkpoint learned.
    assert sorted(learned.values_list("id", flat=True)) == sorted(TrainingRecord.objects.order_by("id").values_list("id", flat=True)[:12])
    assert learned.values("learned_at").distinct().count() == 2
    assert ModelVersion.objects.get(kind="online", active=True).trained_through_record_id == max(learned.values_list("id", flat=True))


def test_a_checkpoint_of_records_learned_before_says_so_and_claims_nothing(caplog):
    store_learnable(10)
    online_update()
    ensemble = load_model(ModelVersion.objects.get(kind="online", active=True))
    before = ensemble.samples_seen
    ensemble.learn(*learned_matrix(), batch_size=8)
    ids = list(TrainingRecord.objects.values_list("id", flat=True))
    stamps = dict(TrainingRecord.objects.values_list("id", "learned_at"))
    with caplog.at_level(logging.WARNING, logger="learning.services.online"):
        online_checkpoint(ensemble=ensemble, samples_before=before, record_ids=ids)
    assert "10 of the records this checkpoint learned were learned before" in caplog.text
    assert dict(TrainingRecord.objects.values_list("id", "learned_at")) == stamps


def test_as_of_must_be_aware():
    with pytest.raises(Exception, match="as_of"):
        online_update(as_of=START.replace(tzinfo=None))


@pytest.mark.django_db(transaction=True)
def test_concurrent_updates_never_learn_a_record_twice():
    store_learnable(60)
    results, errors = [], []

    def update():
        try:
            for _ in range(3):
                results.append(online_update(max_records=15))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=update) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(result.learned for result in results) == 60
    assert ModelVersion.objects.get(kind="online", active=True).samples_seen == 60
    assert OnlineLearningState.objects.get().samples_learned == 60


def test_the_fast_feature_path_agrees_with_the_schema():
    from learning.ml.schema import FEATURE_SCHEMA
    from learning.services.training_data import schema_vector

    features = learnable_features(1, seed=8)[0][0]
    assert (schema_vector(features) == FEATURE_SCHEMA.vector(features)).all()
    flagged = {**features, "is_profit_scraping": True}
    assert (schema_vector(flagged) == FEATURE_SCHEMA.vector(flagged)).all()
    assert schema_vector({**features, "rsi_14": float("nan")}) is None
    assert schema_vector({**features, "moon_phase": 1.0}) is None
    assert schema_vector({name: value for name, value in features.items() if name != "side"}) is None
