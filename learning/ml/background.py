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

Importing scikit-learn costs a worker about two seconds of CPU, more than half of a replay's online
learning. `Worker.pair()` pays it once for two workers: one process imports what online
learning needs, forks the online worker (before any thread or OpenMP pool exists), then
imports the rest and serves batch jobs itself.
"""
import contextlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_HEADER = struct.Struct("!Q")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
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
                self._error, self._value = self._worker.receive()
            except EOFError:
                raise RuntimeError("the training worker stopped before finishing its job") from None
            self._done = True
            self._worker.busy = None
        if self._error is not None:
            raise self._error
        return self._value


class Worker:
    """One worker process, started on first use (or by `pair`); one job at a time."""

    def __init__(self):
        self.process: subprocess.Popen | None = None  # the process, when this worker started it
        self.busy: Job | None = None
        self._requests = self._replies = None
        self.pid: int | None = None  # said by the worker once it has imported what its jobs need
        self._sibling: Worker | None = None  # the worker forked from this one's process

    @classmethod
    def pair(cls) -> tuple["Worker", "Worker"]:
        """Two workers started now that import scikit-learn once: (online, batch), see the module's docstring."""
        online, batch = cls(), cls()
        requests_read, requests_write = os.pipe()
        replies_read, replies_write = os.pipe()
        batch._start(requests_read, replies_write)
        os.close(requests_read)
        os.close(replies_write)
        online._requests, online._replies = os.fdopen(requests_write, "wb"), os.fdopen(replies_read, "rb")
        batch._sibling = online
        return online, batch

    def start(self) -> None:
        """Start the process now (its imports take a second), while the caller has other work to do."""
        if self._requests is None:
            self._start()

    def _start(self, *sibling_fds: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "learning.ml.background", *map(str, sibling_fds)],
            cwd=_PROJECT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=sibling_fds,
            # One thread per worker: it has a core at best beside the replay. Set before numpy loads
            # its BLAS, so no thread exists when the online worker of a pair is forked.
            env={**os.environ, **{name: "1" for name in _THREAD_VARIABLES}},
        )
        self._requests, self._replies = self.process.stdin, self.process.stdout

    def submit(self, job: Callable, /, *args, **kwargs) -> Job:
        if self.busy is not None:
            self.busy.result()  # one at a time: the previous job's result is kept by its Job
        self.start()
        _send(self._requests, (job, args, kwargs))
        self.busy = Job(self)
        return self.busy

    def ready(self) -> bool:
        """Whether the worker is started and has imported what its jobs need (so a job starts at once)."""
        if self.pid is None:
            if self._replies is None or not select.select([self._replies], [], [], 0)[0]:
                return False
            try:
                self._read_pid()
            except EOFError:
                raise RuntimeError("the training worker stopped before it was ready") from None
        return True

    def receive(self):
        if self.pid is None:
            self._read_pid()
        return _receive(self._replies)

    def _read_pid(self) -> None:
        self.pid = _receive(self._replies)  # a worker first says who it is, once ready

    def close(self) -> None:
        """End the worker: at once if a job's result was never taken (nobody wants it), else at end of input.

        A pair's batch worker ends its online worker first: its process waits for the one it forked.
        """
        if self._sibling is not None:
            self._sibling.close()
        if self._requests is None:
            return
        if self.busy is not None:
            if self.process is not None:
                self.process.kill()
            else:  # forked by its sibling's process
                with contextlib.suppress(EOFError, ProcessLookupError):  # it may have ended already
                    if self.pid is None:
                        self._read_pid()
                    os.kill(self.pid, signal.SIGKILL)
        self._requests.close()
        if self.process is not None:
            self.process.wait()
        self._replies.close()
        self.process, self.busy, self._requests, self._replies = None, None, None, None


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
            try:
                _send(replies, reply)
            except BrokenPipeError:  # the caller closed without taking it
                return


def _fork_online_worker(requests_fd: int, replies_fd: int) -> int:
    """Fork the online worker of a pair (see Worker.pair), serving the pipes it was given; returns its pid."""
    child = os.fork()
    if child == 0:
        # Keep none of the batch worker's pipes, or its caller would not see it end.
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(2, 1)
        replies = os.fdopen(replies_fd, "wb")
        _send(replies, os.getpid())
        _serve(os.fdopen(requests_fd, "rb"), replies)
        os._exit(0)
    os.close(requests_fd)
    os.close(replies_fd)
    return child


if __name__ == "__main__":
    import learning.ml.online  # noqa: F401  (what an online job needs)

    online_worker = _fork_online_worker(*map(int, sys.argv[1:])) if len(sys.argv) == 3 else None
    import learning.ml.batch  # noqa: F401  (the imports a batch job needs, paid before the first one)

    _send(sys.stdout.buffer, os.getpid())
    _serve(sys.stdin.buffer, sys.stdout.buffer)
    if online_worker is not None:
        # Closed before this one (Worker.close), it is ending; reaped here, its CPU time counts
        # among its caller's children's, as for any worker.
        os.waitpid(online_worker, 0)
