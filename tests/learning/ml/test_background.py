"""The training worker: jobs run in a process of their own on one BLAS thread, come back whole (errors included), and closing never waits."""
import os
import resource
import time

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


def _alive(pid: int) -> bool:
    """Whether a process is running (not gone, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_ready(worker: Worker) -> None:
    deadline = time.monotonic() + 300
    while not worker.ready():
        assert time.monotonic() < deadline, "the worker never got ready"
        time.sleep(0.05)


def _burn_cpu(seconds: float) -> float:
    """Spin for `seconds` of CPU time; returns the process's CPU time so far."""
    while time.process_time() < seconds:
        pass
    return time.process_time()


def test_a_job_runs_in_another_process_and_returns_what_it_would_return_here(worker):
    assert worker.submit(os.getpid).result() == worker.pid != os.getpid()
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


def test_jobs_run_one_at_a_time_in_order_each_keeping_its_own_result(worker):
    first = worker.submit(time.monotonic)
    second = worker.submit(time.monotonic)
    assert second.result() > first.result()


def test_the_worker_keeps_what_a_job_leaves_for_the_next(worker):
    # One process for the worker's whole life: what a job imports or leaves behind is there for the next.
    assert len({worker.submit(os.getpid).result() for _ in range(3)}) == 1


def test_a_worker_runs_every_blas_and_openmp_pool_on_one_thread(worker):
    from threadpoolctl import threadpool_info

    pools = worker.submit(threadpool_info).result()
    assert {pool["user_api"] for pool in pools} >= {"blas", "openmp"}  # numpy's BLAS and scikit-learn's OpenMP
    assert all(pool["num_threads"] == 1 for pool in pools)


def _not_imported(names: list[str]) -> list[str]:
    import sys

    return [name for name in names if name not in sys.modules]


def test_a_worker_is_ready_once_it_has_imported_what_its_jobs_need(worker):
    assert not worker.ready()  # scikit-learn takes a second or two to import
    pid = worker.pid  # the process is up within a fraction of a second; its imports take longer
    wait_ready(worker)
    assert worker.submit(_not_imported, ["sklearn.ensemble", "sklearn.neural_network", "skops.io"]).result() == []
    assert worker.submit(os.getpid).result() == pid


def test_a_worker_that_dies_is_seen_to_stop(worker):
    with pytest.raises(RuntimeError, match="terminated"):
        worker.submit(os._exit, 3).result()


def test_closing_with_a_result_nobody_took_does_not_wait_for_it(worker):
    pid = worker.pid
    worker.submit(time.sleep, 60)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 30 and not _alive(pid)


def test_closing_a_worker_still_starting_ends_it_quietly(capfd):
    Worker().close()  # a replay shorter than the worker's imports
    assert "Traceback" not in capfd.readouterr().err


def test_a_workers_cpu_time_is_counted_among_this_processs_childrens():
    worker = Worker()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = worker.submit(_burn_cpu, worker.submit(time.process_time).result() + 0.3).result()
    worker.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # As benchmarks read the training workers' CPU time (benchmarks/common.py cpu_seconds).
    assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime >= worker_cpu - 0.05
