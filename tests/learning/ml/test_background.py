"""The training worker: jobs run in a process of their own and come back whole, errors included."""
import os
import resource

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


@pytest.fixture
def pair():
    online, batch = Worker.pair()
    yield online, batch
    online.close()
    batch.close()


def _burn_cpu(seconds: float) -> float:
    """Spin for `seconds` of CPU time; returns the process's CPU time so far."""
    import time

    while time.process_time() < seconds:
        pass
    return time.process_time()


def _state(pid: int) -> str | None:
    """A process's state letter (R, S, Z, ...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_a_pair_imports_once_the_online_worker_being_forked_from_the_batch_workers_process(pair):
    online, batch = pair
    batch_pid = batch.submit(os.getpid).result()
    assert online.submit(os.getppid).result() == batch_pid == batch.process.pid
    assert online.submit(os.getpid).result() not in (batch_pid, os.getpid())
    X, y, times = synthetic_trades(400, seed=3)
    there, _ = batch.submit(train_batch_artifact, X, y, times).result()
    assert there.metrics == train_batch_model(X, y, times).metrics
    with pytest.raises(ValueError, match="at least 70 are needed"):
        online.submit(train_batch_model, X[:30], y[:30], times[:30]).result()


def test_a_forked_worker_that_dies_is_seen_to_stop_and_closing_a_pair_ends_both(pair):
    online, batch = pair
    with pytest.raises(RuntimeError, match="stopped before finishing"):
        online.submit(os._exit, 3).result()  # nothing else holds its replies open
    online, batch = Worker.pair()
    online_pid = online.submit(os.getpid).result()
    process = batch.process
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    online_cpu = online.submit(_burn_cpu, 0.3).result()
    batch.close()  # ends the online worker too
    assert process.returncode == 0 and _state(online_pid) is None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The online worker's CPU time is counted among this process's children's, as benchmarks read it.
    assert children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime >= online_cpu


def test_closing_a_forked_worker_with_a_result_nobody_took_ends_it_at_once(pair):
    import time

    online, _ = pair
    online_pid = online.submit(os.getpid).result()
    online.submit(time.sleep, 60)
    started = time.monotonic()
    online.close()
    assert time.monotonic() - started < 5
    for _ in range(50):
        if _state(online_pid) in (None, "Z"):
            break
        time.sleep(0.1)
    assert _state(online_pid) in (None, "Z")  # dead; the batch worker reaps it when it ends


def test_a_worker_is_ready_once_it_has_imported_what_its_jobs_need(pair):
    import time

    online, batch = pair
    assert not batch.ready()  # scikit-learn takes a second or two to import
    deadline = time.monotonic() + 60
    while not (online.ready() and batch.ready()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batch.pid == batch.process.pid == batch.submit(os.getpid).result()
    assert online.submit(os.getpid).result() == online.pid


def test_a_worker_that_stops_before_it_is_ready_says_so():
    online, batch = Worker.pair()
    batch.process.kill()  # takes the online worker with it if it was not forked yet
    batch.process.wait()
    online.close()  # nothing to wait for
    with pytest.raises(RuntimeError, match="stopped before it was ready"):
        while not batch.ready():
            pass
    batch.close()
