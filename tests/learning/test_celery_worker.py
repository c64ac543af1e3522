"""Integration: celery beat schedules the retrain and online update, a real worker on Redis runs them."""
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from learning.models import ModelVersion, OnlineLearningState
from tests.learning.learnable import fresh_model_state, store_learnable  # noqa: F401  (autouse)

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def start(args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([CELERY, "-A", "tradelearn", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition, *, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out; worker and beat log:\n{log_path.read_text()[-4000:]}")


def test_beat_schedules_a_retrain_and_an_online_update_that_a_real_worker_runs(subprocess_env, redis_url):
    store_learnable(120)
    # A queue of its own keeps this test apart from other workers using the same Redis.
    queue = f"tradelearn-test-{uuid.uuid4().hex[:12]}"
    every_second = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    for name, task in (("retrain", "learning.tasks.batch_retrain_task"), ("online", "learning.tasks.online_update_task")):
        PeriodicTask.objects.create(name=f"test {name}", task=task, interval=every_second, queue=queue, one_off=True)
    env = {**subprocess_env, "CELERY_BROKER_URL": redis_url}
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "celery.log"
        with open(log_path, "w") as log:
            worker = start(
                ["worker", "--pool=solo", "-Q", queue, "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
                env, log,
            )  # fmt: skip
            beat = start(["beat", "-l", "info", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "-s", str(Path(scratch) / "beat")], env, log)
            try:
                wait_for(
                    lambda: ModelVersion.objects.filter(kind="batch", active=True).exists()
                    and OnlineLearningState.objects.filter(samples_learned=120).exists(),
                    timeout=180,
                    log_path=log_path,
                )
            finally:
                stop(beat)
                stop(worker)
                redis.Redis.from_url(redis_url).delete(queue)
        worker_log = log_path.read_text()
    batch = ModelVersion.objects.get(kind="batch", active=True)
    assert batch.version == "batch-0001" and batch.samples_seen == 120
    assert ModelVersion.objects.get(kind="online", active=True).samples_seen == 120
    assert "learning.tasks.batch_retrain_task" in worker_log and "succeeded" in worker_log
