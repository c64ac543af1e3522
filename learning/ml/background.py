"""Model training in worker processes beside a replay: a standard process pool, results taken where the caller says.

A replay trades on one core; fitting its models there too leaves the machine's other core idle
and makes the replay several times slower. A `Worker` is a one-process executor (loky's, which
joblib ships with scikit-learn): jobs run in the order submitted, one at a time, in a process of
its own, and come back as `concurrent.futures` futures. The caller takes a result at a point
fixed in the replay's own terms (a number of closed trades later), waiting there if the worker is
behind, so what a replay decides never depends on how fast the machine is.

loky starts the process fresh (fork and exec): it inherits no database connection, no threads
and no OpenMP state of the caller, does not re-run the caller's main module, and is the caller's
child, so its CPU time counts with the caller's children's (benchmarks read it there). It runs
BLAS and OpenMP on one thread: it has a core at best beside the replay, and one thread computes
exactly what the caller computes on one (learning.services.session runs jobs here that way too).
A worker is killed when closed: nothing it could still hand back is wanted then.
"""
import contextlib
import importlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future

from joblib.externals.loky import BrokenProcessPool, ProcessPoolExecutor

# Read by OpenBLAS, MKL and OpenMP when they load: set in the worker's environment from its start.
_ONE_THREAD = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1")
# What the jobs need (learning.ml imports scikit-learn where a model is built), imported before
# the worker says it is ready, so the first job does not pay a second or two of imports.
_JOB_MODULES = (
    "learning.ml.online",
    "learning.ml.batch",
    "learning.ml.serialization",
    "sklearn.ensemble",
    "sklearn.isotonic",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.neural_network",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "skops.io",
)
_thread_limits = None  # kept for the worker's lifetime


def job_modules_import() -> None:
    """Import what training jobs need, so that the first job does not pay for it (and their thread pools are loaded)."""
    for name in _JOB_MODULES:
        importlib.import_module(name)


def _prepare() -> None:
    """A worker's first job: the imports its jobs need, and one BLAS and OpenMP thread for certain."""
    global _thread_limits
    job_modules_import()
    from threadpoolctl import threadpool_limits

    # The environment already says one thread; this holds for any pool that does not read it.
    _thread_limits = threadpool_limits(limits=1)


class Worker:
    """One training process, started now (its imports take a second or two); jobs run there one at a time."""

    def __init__(self):
        # No idle timeout: a replay's worker lives as long as the replay, whatever the gaps between its retrains.
        self._pool = ProcessPoolExecutor(max_workers=1, timeout=None, env=_ONE_THREAD)
        self._started = self._pool.submit(os.getpid)  # done within a fraction of a second
        self._prepared = self._pool.submit(_prepare)

    def ready(self) -> bool:
        """Whether the worker is up and has imported what its jobs need (so a job starts at once)."""
        if not self._prepared.done():
            return False
        try:
            self._prepared.result()
        except BrokenProcessPool:
            raise RuntimeError("the training worker stopped before it was ready") from None
        return True

    @property
    def pid(self) -> int:
        """The worker's process id (waiting for the process to start)."""
        try:
            return self._started.result()
        except BrokenProcessPool:
            raise RuntimeError("the training worker stopped before it started") from None

    def submit(self, job: Callable, /, *args, **kwargs) -> Future:
        """Run `job(*args, **kwargs)` in the worker after the jobs before it; its future holds the result or the error."""
        return self._pool.submit(job, *args, **kwargs)

    def close(self) -> None:
        """End the worker at once, starting, busy or idle: whatever it would still hand back, nobody takes."""
        with contextlib.suppress(RuntimeError, ProcessLookupError):  # it may have stopped already
            os.kill(self.pid, signal.SIGKILL)
        self._pool.shutdown(wait=True)
