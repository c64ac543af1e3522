"""Load on loopback: gunicorn (2 workers) and a Celery worker on PostgreSQL and Redis, the API and engine ticks together.

BENCH_LOAD_SECONDS (default 150) bounds the mixed run, BENCH_LOAD_CLIENTS (default 8) its client
threads; BENCH_REDIS_URL (default redis://127.0.0.1:6379/14) is the broker. Afterwards every
trade and outcome is accounted for. Then `POST /ml/hybrid/predict` alone, with wrk if installed.
"""
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, percentiles_ms, postgres_url  # noqa: E402

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "150"))
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "8"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PREDICT_SECONDS = 20
CANDLES = 1400  # 301 warm-up candles, then up to ~1,100 to tick
FIRST_TICK = datetime(2022, 1, 1, tzinfo=UTC) + timedelta(hours=400)
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Client:
    """One keep-alive HTTP connection that records each request's status and latency."""

    def __init__(self, port: int, token: str, stats: dict):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.stats = stats

    def request(self, method: str, path: str, body=None) -> int:
        payload = None if body is None else json.dumps(body)
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=self.headers)
            response = self.connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            status = 0
        elapsed = time.perf_counter() - started
        with self.stats["lock"]:
            self.stats["latencies"].append(elapsed)
            self.stats["statuses"][(method, path.split("?")[0], status)] += 1
        return status


def main() -> int:
    database_url = postgres_url("tradelearn_bench_load")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradelearn.settings.local",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": REDIS_URL,
        "API_THROTTLE_USER": "10000000/minute",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL", "API_THROTTLE_USER", "LOG_LEVEL")})
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    import redis
    from celery import Celery
    from django.contrib.auth import get_user_model
    from django.db.models import Sum
    from rest_framework.authtoken.models import Token

    from learning.ml.schema import FEATURE_SCHEMA, feature_range
    from learning.models import TrainingRecord
    from tests.factories import TradeOutcomeFactory
    from trading.models import Candle, EngineTick, PaperAccount, PaperTrade
    from trading.services.accounts import account_create
    from trading.services.candles import candles_import

    scratch = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with open(ROOT / "data" / "candles" / "BTCUSDT-1h.csv") as source, open(scratch / "BTCUSDT-1h.csv", "w") as target:
        target.writelines(source.readline() for _ in range(CANDLES + 1))
    candles_import(path=scratch / "BTCUSDT-1h.csv", exchange="binanceusdm")
    account = account_create(name="load", system_type="paper_trading", starting_balance=Decimal("10000"))
    token = Token.objects.create(user=get_user_model().objects.create_user("loader")).key
    queue = f"bench-ticks-{uuid.uuid4().hex[:8]}"
    redis.Redis.from_url(REDIS_URL).delete(queue, "celery")

    port = free_port()
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "tradelearn.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "tradelearn", "worker", "--pool=solo", "-Q", f"{queue},celery", "-n", f"{queue}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        # A valid vector (the API refuses impossible values): each feature mid-range, a long signal.
        features = {name: sum(feature_range(name)) / 2 for name in FEATURE_SCHEMA.names} | {"side": 1.0, "is_profit_scraping": 0.0}
        stats = {"lock": threading.Lock(), "latencies": [], "statuses": Counter()}
        stored_ids: list[str] = []
        deadline = time.monotonic() + SECONDS

        def client_loop(index: int) -> None:
            client = Client(port, token, stats)
            rng = random.Random(index)
            sequence = 0
            while time.monotonic() < deadline:
                kind = rng.random()
                if kind < 0.3:
                    sequence += 1
                    trade_id = f"load-{index}-{sequence}"
                    outcome = json.loads(json.dumps(asdict(TradeOutcomeFactory.build(trade_id=trade_id)), default=str))
                    if client.request("POST", "/api/v1/trade-outcomes/", outcome) == 201:
                        with stats["lock"]:
                            stored_ids.append(trade_id)
                elif kind < 0.7:
                    client.request("POST", "/ml/hybrid/predict", {"features": features})
                elif kind < 0.85:
                    client.request("GET", "/ml/hybrid/status")
                else:
                    client.request("GET", f"/api/v1/trades/?account={account.pk}")

        ticks_sent = 0
        sender = Celery("bench", broker=REDIS_URL, set_as_current=False)
        threads = [threading.Thread(target=client_loop, args=(index,)) for index in range(CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        # The engine ticks one more hourly candle every half second while the API is loaded.
        last_tick = FIRST_TICK
        while time.monotonic() < deadline and last_tick < FIRST_TICK + timedelta(hours=CANDLES - 420):
            sender.send_task("trading.tasks.engine_tick_task", args=[account.pk, "BTCUSDT", "1h", "binanceusdm"], kwargs={"now": last_tick.isoformat()}, queue=queue)
            ticks_sent += 1
            last_tick += timedelta(hours=1)
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started

        expected_ticks = Candle.objects.filter(symbol="BTCUSDT", open_time__gte=FIRST_TICK, open_time__lte=last_tick - timedelta(hours=1)).count()
        drained = time.monotonic() + 120
        while EngineTick.objects.filter(account=account).count() < expected_ticks and time.monotonic() < drained:
            time.sleep(0.5)
        sender.close()

        latencies = stats["latencies"]
        errors = sum(count for (_, _, status), count in stats["statuses"].items() if status == 0 or status >= 400)
        p50, p99 = percentiles_ms(latencies)
        print(f"mixed load for {elapsed:.0f} s, {CLIENTS} clients, gunicorn 2 workers + 1 Celery worker (PostgreSQL, Redis):")
        print(f"  {len(latencies):,} requests, {len(latencies) / elapsed:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors} (target 0)")
        for (method, path, status), count in sorted(stats["statuses"].items()):
            print(f"    {method} {path} -> {status}: {count:,}")

        account.refresh_from_db()
        ticked = EngineTick.objects.filter(account=account, completed_at__isnull=False).count()
        api_records = TrainingRecord.objects.filter(trade_id__startswith="load-").count()
        closed = PaperTrade.objects.filter(account=account, status=PaperTrade.Status.CLOSED)
        closed_ids = {f"acct{account.pk}-trade{pk}" for pk in closed.values_list("pk", flat=True)}
        engine_records = set(TrainingRecord.objects.filter(trade_id__startswith=f"acct{account.pk}-").values_list("trade_id", flat=True))
        real = PaperTrade.objects.filter(account=account, is_shadow=False)
        closed_net = real.filter(status=PaperTrade.Status.CLOSED).aggregate(total=Sum("net_pnl"))["total"] or Decimal(0)
        open_fees = real.filter(status=PaperTrade.Status.OPEN).aggregate(total=Sum("fees"))["total"] or Decimal(0)
        balanced = account.current_balance == account.starting_balance + closed_net - open_fees
        accounted = ticked == expected_ticks and api_records == len(stored_ids) == len(set(stored_ids)) and engine_records == closed_ids and balanced
        print(
            f"  accounted for: {ticks_sent} tick tasks sent, {ticked}/{expected_ticks} candles ticked once; "
            f"{api_records:,}/{len(stored_ids):,} API outcomes stored; {len(engine_records)}/{len(closed_ids)} closed trades "
            f"with their outcome ({PaperTrade.objects.filter(account=account).count()} trades); balance adds up: {balanced} "
            f"-> {'OK' if accounted else 'MISMATCH'}"
        )

        print(predict_alone(port, token, features, web_pid=web.pid))
        return 0 if accounted and errors == 0 else 1
    finally:
        stop(web)
        stop(worker)
        redis.Redis.from_url(REDIS_URL).delete(queue)
        shutil.rmtree(scratch, ignore_errors=True)


def _cpu_seconds_of_group(leader: int) -> float:
    """CPU time (user + system) so far of the live processes in `leader`'s process group (gunicorn and its workers)."""
    total = 0.0
    for pid in subprocess.run(["pgrep", "-g", str(leader)], capture_output=True, text=True).stdout.split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def predict_alone(port: int, token: str, features: dict, *, web_pid: int) -> str:
    """`POST /ml/hybrid/predict` alone: wrk when installed, else Python threads on keep-alive connections.

    The load generator runs on the same cores as the server, so each line also says how much CPU the
    server spent per request and how much the generator took: the rate a machine of its own would
    carry follows from the first.
    """
    body = json.dumps({"features": features})
    url = f"http://127.0.0.1:{port}/ml/hybrid/predict"
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(body)}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Token {token}"\n'
            )
        lines = []
        # Latency depends on how many requests wait at once: report a moderate and a heavy load.
        for connections in (8, 16):
            server_before, generator_before = _cpu_seconds_of_group(web_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
            output = subprocess.run(
                ["wrk", "-t2", f"-c{connections}", f"-d{PREDICT_SECONDS}s", "--latency", "-s", script.name, url],
                capture_output=True, text=True, timeout=PREDICT_SECONDS + 60,
            ).stdout  # fmt: skip
            server_cpu = _cpu_seconds_of_group(web_pid) - server_before
            generator = resource.getrusage(resource.RUSAGE_CHILDREN)
            generator_cpu = generator.ru_utime + generator.ru_stime - generator_before.ru_utime - generator_before.ru_stime
            served = re.search(r"(\d+) requests in", output)
            rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
            p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
            non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
            p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
            lines.append(
                f"POST /ml/hybrid/predict alone (wrk, 2 threads, {connections} connections, {PREDICT_SECONDS} s; gunicorn 2 workers): "
                f"{float(rate.group(1)) if rate else float('nan'):,.0f} req/s (target >= 1,000 at 16), p99 {p99_ms:.1f} ms (target <= 25), "
                f"non-2xx {non_2xx.group(1) if non_2xx else 0}; server CPU {server_cpu * 1000 / int(served.group(1)) if served else float('nan'):.2f} ms "
                f"per request, wrk {generator_cpu / PREDICT_SECONDS:.2f} of a core"
            )
        os.unlink(script.name)
        return "\n".join(lines)
    lines = []
    # As with wrk: a moderate and a heavy load, one keep-alive connection per thread.
    for connections in (8, 16):
        stats = {"lock": threading.Lock(), "latencies": [], "statuses": Counter()}
        deadline = time.monotonic() + PREDICT_SECONDS

        def loop() -> None:
            client = Client(port, token, stats)
            while time.monotonic() < deadline:
                client.request("POST", "/ml/hybrid/predict", {"features": features})

        threads = [threading.Thread(target=loop) for _ in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        p50, p99 = percentiles_ms(stats["latencies"])
        not_ok = sum(count for (_, _, status), count in stats["statuses"].items() if status != 200)
        lines.append(
            f"POST /ml/hybrid/predict alone (Python load generator, {connections} threads on as many connections, {PREDICT_SECONDS} s; "
            f"gunicorn 2 workers): {len(stats["latencies"]) / PREDICT_SECONDS:,.0f} req/s (target >= 1,000 at 16), p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms (target <= 25), non-200 {not_ok}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
