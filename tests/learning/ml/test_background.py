"""The training worker: jobs run in a process of their own and come back whole, errors included."""
import os

import numpy as np
import pytest

from learning.ml.background import Worker
from learning.ml.batch import train_batch_artifact, train_batch_model
from learning.ml.serialization import load_estimator
from tests.learning.ml.synthetic import synthetic_trades


@pytest.fixture
def worker():
    worker = Worker()
    yield worker
    worker.close()


def test_a_job_runs_in_another_process_and_returns_what_it_would_return_here(worker):
    assert worker.submit(os.getpid).result() != os.getpid()
    X, y, times = synthetic_trades(400, seed=3)
    here = train_batch_model(X, y, times)
    there, artifact = worker.submit(train_batch_artifact, X, y, times).result()
    assert there.metrics == here.metrics and there.feature_importance == here.feature_importance
    np.testing.assert_array_equal(there.model.predict_proba(X), here.model.predict_proba(X))
    loaded = load_estimator(artifact.blob, sha256=artifact.sha256, sklearn_version=artifact.sklearn_version)
    np.testing.assert_array_equal(loaded["estimator"].decision_function(X), here.model.estimator.decision_function(X))


def test_a_failing_job_raises_its_own_error_where_the_result_is_taken_and_the_worker_goes_on(worker):
    X, y, times = synthetic_trades(30, seed=3)
    job = worker.submit(train_batch_model, X, y, times)
    with pytest.raises(ValueError, match="30 trades; at least 70 are needed"):
        job.result()
    assert worker.submit(sum, [1, 2, 3]).result() == 6


def test_one_job_at_a_time_each_keeping_its_own_result(worker):
    first = worker.submit(sum, [1, 2])
    second = worker.submit(sum, [3, 4])  # waits for the first, whose result is kept
    assert (second.result(), first.result()) == (7, 3)


def test_closing_ends_the_process(worker):
    worker.start()
    process = worker.process
    worker.close()
    assert process.returncode == 0


def test_closing_with_a_result_nobody_took_does_not_wait_for_it(worker):
    import time

    worker.submit(time.sleep, 60)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 30
