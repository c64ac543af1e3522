"""Model training in a worker process beside a replay, handed back at a point the caller fixes.

A replay trades on one core; fitting its batch models there too leaves the machine's other
core idle and makes the replay several times slower. `Worker` runs one job at a time in a
Python process of its own. The caller submits a job as of some candle and takes its result at
a later point fixed in the replay's own terms (a number of closed trades later), waiting there
if the worker is behind, so what a replay decides never depends on how fast the machine is.

Jobs are plain functions of numpy arrays and models, sent pickled over the process's pipes
(both ends are this code: nothing else is ever unpickled). The worker is started with
`python -m`, not multiprocessing: it inherits no database connection, no threads and no
OpenMP state, and does not re-run the caller's main script.
"""
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_HEADER = struct.Struct("!Q")
_PROJECT = Path(__file__).resolve().parents[2]


def _send(stream, payload) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    return pickle.loads(stream.read(_HEADER.unpack(header)[0]))


class Job:
    """A job handed to the worker; `result()` waits for it and returns its value or raises its error."""

    def __init__(self, worker: "Worker"):
        self._worker, self._done, self._value, self._error = worker, False, None, None

    def result(self):
        if not self._done:
            try:
                self._error, self._value = _receive(self._worker.process.stdout)
            except EOFError:
                raise RuntimeError("the training worker stopped before finishing its job") from None
            self._done = True
            self._worker.busy = None
        if self._error is not None:
            raise self._error
        return self._value


class Worker:
    """One worker process, started on first use; one job at a time."""

    def __init__(self):
        self.process: subprocess.Popen | None = None
        self.busy: Job | None = None

    def start(self) -> None:
        """Start the process now (its imports take a second), while the caller has other work to do."""
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "learning.ml.background"], cwd=_PROJECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )

    def submit(self, job: Callable, /, *args, **kwargs) -> Job:
        if self.busy is not None:
            self.busy.result()  # one at a time: the previous job's result is kept by its Job
        self.start()
        _send(self.process.stdin, (job, args, kwargs))
        self.busy = Job(self)
        return self.busy

    def close(self) -> None:
        """End the worker: at once if a job's result was never taken (nobody wants it), else at end of input."""
        if self.process is not None:
            if self.busy is not None:
                self.process.kill()
            self.process.stdin.close()
            self.process.wait()
            self.process.stdout.close()
            self.process, self.busy = None, None


def _serve(requests, replies) -> None:
    from threadpoolctl import threadpool_limits

    # The worker has one core at best beside the replay: BLAS and OpenMP threads would only contend.
    with threadpool_limits(limits=1):
        while True:
            try:
                job, args, kwargs = _receive(requests)
            except EOFError:
                return
            try:
                reply = (None, job(*args, **kwargs))
            except Exception as error:  # handed to the caller, raised where it takes the result
                reply = (error, None)
            _send(replies, reply)


if __name__ == "__main__":
    import learning.ml.batch  # noqa: F401  (the imports a batch job needs, paid before the first one)

    _serve(sys.stdin.buffer, sys.stdout.buffer)
