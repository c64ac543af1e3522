"""A replay's learning session: the training history it keeps in memory is what batch_retrain reads from the database."""
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from learning.ml.schema import FEATURE_SCHEMA
from learning.services.training_data import training_matrix
from learning.services.outcomes import store_trade_outcomes
from learning.services.session import LearningSession
from tests.factories import TradeOutcomeFactory
from tests.learning.ml.test_background import wait_ready

pytestmark = pytest.mark.django_db


def outcomes(count: int, *, seed: int, first_exit: datetime):
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        fits = index % 7 != 3  # every seventh does not fit the schema: stored, never trained on
        features = {name: float(rng.normal()) for name in FEATURE_SCHEMA.names} if fits else {"rsi_14": 50.0}
        # Exit times interleave with the other batch's, and some repeat, as closes do.
        exit_time = first_exit + timedelta(hours=int(rng.integers(0, 400)))
        made.append(TradeOutcomeFactory(features=features, entry_time=exit_time - timedelta(hours=3), exit_time=exit_time))
    return made


def test_the_sessions_training_history_is_what_batch_retrain_reads(settings):
    start = datetime(2022, 5, 1, tzinfo=UTC)
    store_trade_outcomes(outcomes=outcomes(60, seed=1, first_exit=start))
    session = LearningSession()
    for batch, seed in enumerate((2, 3)):
        for outcome in outcomes(50, seed=seed, first_exit=start + timedelta(hours=100 * batch)):
            session.observe(outcome)
        session.write(trade_ids={})

    for as_of in (start + timedelta(hours=hours) for hours in (50, 180, 333, 10_000)):
        X, y, ids, exit_times, weights = session._history.before(as_of)
        stored = training_matrix(as_of)
        stored_X, stored_y, stored_exit_times, stored_ids, stored_weights = stored.X, stored.y, stored.exit_times, stored.ids, stored.weights
        assert ids == stored_ids and exit_times == stored_exit_times and len(ids) > 0
        np.testing.assert_array_equal(X, stored_X)
        np.testing.assert_array_equal(y, stored_y)
        np.testing.assert_array_equal(weights, stored_weights)
    session.close()


def test_a_job_run_here_uses_one_thread_per_pool_as_a_worker_does():
    from threadpoolctl import threadpool_info

    from learning.services.session import _run_now

    if not any(pool["num_threads"] > 1 for pool in threadpool_info()):
        pytest.skip("every thread pool has one thread here anyway (one core)")
    pools = _run_now(threadpool_info).result()
    assert pools and all(pool["num_threads"] == 1 for pool in pools)


def test_the_online_ensemble_learns_in_the_replays_process_one_update_behind():
    session = LearningSession(background=True)
    try:
        for outcome in outcomes(20, seed=4, first_exit=datetime(2022, 5, 1, tzinfo=UTC)):
            session.observe(outcome)
        learned = session.learn()
        assert learned > 0 and session.ensemble.samples_seen == 0  # taken in at the next update
        for outcome in outcomes(20, seed=5, first_exit=datetime(2022, 6, 1, tzinfo=UTC)):
            session.observe(outcome)
        session.learn()
        assert session.ensemble.samples_seen == learned
        session._take_online()
        assert session.ensemble.samples_seen > learned
    finally:
        session.close()


def test_closing_a_session_mid_retrain_does_not_wait_and_releases_the_lease(capfd):
    import time

    from learning.models import LearningLease
    from learning.services.retrain import RETRAIN_LEASE
    from tests.learning.learnable import store_learnable

    store_learnable(400)
    session = LearningSession(background=True)
    wait_ready(session._batch_worker)  # the retrain goes to the worker
    session._batch_worker.submit(time.sleep, 60)  # a worker still busy when the replay stops
    session.retrain_start(as_of=datetime(2030, 1, 1, tzinfo=UTC))
    assert session.retraining and not session._retrain.job.done()
    started = time.monotonic()
    session.close()
    assert time.monotonic() - started < 10
    lease = LearningLease.objects.get(name=RETRAIN_LEASE)
    assert lease.holder == "" and lease.last_result == {"reason": "replay stopped before adopting it"}
    assert "Traceback" not in capfd.readouterr().err


def test_a_session_closed_before_its_workers_are_ready_ends_quietly(capfd):
    LearningSession(background=True).close()  # what a replay shorter than the workers' imports does
    assert "Traceback" not in capfd.readouterr().err


def test_the_sessions_model_skill_is_what_the_live_path_reads_from_the_store():
    from learning.selectors import model_skill

    start = datetime(2022, 5, 1, tzinfo=UTC)
    rng = np.random.default_rng(5)

    def scored(count: int, first: datetime, *, knows: bool):
        made = []
        for index in range(count):
            won = bool(rng.random() < 0.4)
            score = (0.7 if won else 0.3) if knows else float(rng.random())
            entry = first + timedelta(hours=2 * index)
            made.append(
                TradeOutcomeFactory(
                    system_type="paper_trading", side="long", move_pct=Decimal("0.02") if won else Decimal("-0.02"), ml_score=score,
                    entry_time=entry, exit_time=entry + timedelta(hours=3),
                )
            )  # fmt: skip
        return made

    store_trade_outcomes(outcomes=scored(150, start, knows=False))
    session = LearningSession(learning=False)
    assert session.model_skill("paper_trading") == model_skill(system_type="paper_trading")
    assert not session.model_skill("paper_trading").trusted
    # A model whose probabilities know the outcome earns its say as its outcomes come in.
    for outcome in scored(400, start + timedelta(hours=400), knows=True):
        session.observe(outcome)
    in_memory = session.model_skill("paper_trading")
    session.write(trade_ids={})
    assert in_memory == model_skill(system_type="paper_trading")
    assert in_memory.trusted and in_memory.outcomes == 500
    assert session.model_skill("profit_scraping").outcomes == 0
    session.close()


def test_what_a_session_folds_in_memory_is_what_its_writes_store():
    # write() does not read the learned rows back: the rows the session folded must equal the stored ones.
    from django.forms.models import model_to_dict

    def rows(session: LearningSession) -> dict:
        def plain(row) -> dict:
            return {name: value for name, value in model_to_dict(row).items() if name not in ("id", "created_at", "updated_at", "last_updated")}

        return {
            "quality": {(t, b): plain(row) for t, buckets in session._quality.items() for b, row in buckets.items()},
            "strategy": {key: plain(row) for cell in session._cells.values() for key, row in cell.items()},
            "sizing": {key: plain(row) for key, row in session._sizing.items()},
            "recent": {key: plain(row) for key, row in session._recent.items()},
        }

    start = datetime(2022, 5, 1, tzinfo=UTC)
    store_trade_outcomes(outcomes=outcomes(40, seed=7, first_exit=start))
    session = LearningSession(learning=False)
    for batch, seed in enumerate((8, 9)):
        for outcome in outcomes(60, seed=seed, first_exit=start + timedelta(hours=100 * batch)):
            session.observe(outcome)
        session.write(trade_ids={})
    in_memory, stored = rows(session), rows(LearningSession(learning=False))
    assert in_memory == stored
    assert sum(row["sample_size"] for row in in_memory["quality"].values()) == 160
