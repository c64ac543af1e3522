"""Replays as a user waits for them: whole `manage.py replay` processes, start-up and final writes included.

Each replay runs in a fresh process on a fresh SQLite file (copied from one migrated here first), one
after the other. Printed per run: wall time, candles per second of the whole process, where the time
went (start-up, features, events, learning in process, the learning workers' CPU, writes, as the
command reports them) and peak RSS; then the same replay over 16 symbols (the four files each under
four names) against the four-symbol one, and with BENCH_FREQTRADE=1 freqtrade's whole process on the
same candles (../shared/tools/freqtrade_same_candles.sh installs freqtrade 2026.9 in its own venv under
the temporary folder; it is never a dependency of this project).

Settings: BENCH_WHOLE_FROM / BENCH_WHOLE_TO (2020-01-01..2024-01-01), BENCH_WHOLE_RUNS (a comma list of
learning, baseline, scraping, linearity; all by default), BENCH_CODE (another checkout to time the
same way, e.g. the main commit before a change), BENCH_SHARED_DIR (../shared: its data/candles and tools/).
"""
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, SHARED_CANDLES  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
SHARED = Path(os.environ.get("BENCH_SHARED_DIR", SHARED_CANDLES.parent.parent))  # the steering folder beside the checkout
FREQTRADE = SHARED / "tools" / "freqtrade_same_candles.sh"
_REPLAYED = re.compile(r"Replayed ([\d,]+) candles in ([\d.]+) s")
_VISITED = re.compile(r"([\d,]+) of them visited")
_SPLIT = re.compile(
    r"start-up ([\d.?]+) s, learning session start ([\d.]+) s, features ([\d.]+) s, events ([\d.]+) s, learning in process ([\d.]+) s, writes ([\d.]+) s; "
    r"CPU: this process ([\d.]+) s, learning workers ([\d.]+) s; peak RSS (\d+) MB \(largest worker (\d+) MB\)"
)


class Runner:
    """Runs `manage.py replay` of one checkout as a user would, each time on a fresh copy of one migrated SQLite file."""

    def __init__(self, code: Path, scratch: Path):
        self.code, self.scratch = code, scratch
        self.python = str(code / ".venv" / "bin" / "python") if (code / ".venv" / "bin" / "python").exists() else sys.executable
        self.template = scratch / "migrated.sqlite3"
        subprocess.run([self.python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=code, env=self._env(self.template), check=True)

    def _env(self, database: Path) -> dict:
        return {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "tradelearn.settings.local"}

    def replay(self, *args: str) -> dict:
        database = self.scratch / "replay.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.template, database)
        started, cpu = time.perf_counter(), children_cpu()
        done = subprocess.run(
            [self.python, "manage.py", "replay", *args, "--no-progress"], cwd=self.code, env=self._env(database),
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - started, children_cpu() - cpu
        replayed, visited = _REPLAYED.search(done.stdout), _VISITED.search(done.stdout)
        run = {"wall": wall, "total_cpu": cpu, "candles": int(replayed.group(1).replace(",", "")), "loop": float(replayed.group(2))}
        run["visited"] = int(visited.group(1).replace(",", "")) if visited else None
        split = _SPLIT.search(done.stdout)
        if split:
            names = ("startup", "session", "features", "events", "learning", "writes", "cpu", "workers", "rss", "worker_rss")
            run.update({name: float(value) if value != "?" else None for name, value in zip(names, split.groups())})
        return run


def children_cpu() -> float:
    """CPU seconds of this process's finished children, theirs included (a replay's learning workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def describe(label: str, run: dict) -> str:
    visited = "" if run["visited"] is None else f", {run['visited']:,} visited"
    line = (
        f"{label}: {run['wall']:.1f} s whole process = {run['candles'] / run['wall']:,.0f} candles/s ({run['candles']:,} candles{visited}); "
        f"CPU {run['total_cpu']:.1f} s, learning workers included"
    )
    if "events" not in run:  # a checkout whose command does not report its split
        return f"{line}; replay loop {run['loop']:.1f} s"
    startup = "?" if run["startup"] is None else f"{run['startup']:.1f}"
    rest = run["wall"] - (run["startup"] or 0.0) - run["loop"]
    return (
        f"{line}\n    time: start-up {startup} s, learning session start {run['session']:.1f} s, features {run['features']:.1f} s, events {run['events']:.1f} s, "
        f"learning in process {run['learning']:.1f} s, writes {run['writes']:.1f} s, summary and exit {rest:.1f} s; "
        f"learning workers {run['workers']:.1f} CPU-s beside it (this process {run['cpu']:.1f} CPU-s); "
        f"peak RSS {max(run['rss'], run['worker_rss']):.0f} MB"
    )


def sixteen_symbols(directory: Path, into: Path) -> list[str]:
    """The four files, each under four names (BTCUSDT, BTCAUSDT, ...): four times the work of the four symbols."""
    names = []
    for symbol in SYMBOLS:
        for extra in ("", "A", "B", "C"):
            name = symbol[:-4] + extra + "USDT"
            (into / f"{name}-1h.csv").symlink_to((directory / f"{symbol}-1h.csv").resolve())
            names.append(name)
    return names


def freqtrade_whole_seconds() -> float | None:
    """freqtrade's whole backtesting process on the same candles (one run), or None if it could not be run."""
    done = subprocess.run(["bash", str(FREQTRADE)], env={**os.environ, "RUNS": "1"}, capture_output=True, text=True)
    found = re.search(r"freqtrade_anchor candles=(\d+) .*total_s=([\d.]+)", done.stdout)
    if done.returncode or not found:
        print(f"freqtrade: could not run ({(done.stderr or done.stdout).strip().splitlines()[-1:]})", flush=True)
        return None
    print(f"freqtrade 2026.9 backtesting, same candles: {float(found.group(2)):.1f} s whole process ({int(found.group(1)):,} candles)", flush=True)
    return float(found.group(2))


def main() -> None:
    directory = SHARED / "data" / "candles"
    directory = directory if (directory / "SOLUSDT-1h.csv").is_file() else ROOT / "data" / "candles"
    symbols = [symbol for symbol in SYMBOLS if (directory / f"{symbol}-1h.csv").is_file()]
    start, end = os.environ.get("BENCH_WHOLE_FROM", "2020-01-01"), os.environ.get("BENCH_WHOLE_TO", "2024-01-01")
    wanted = set(os.environ.get("BENCH_WHOLE_RUNS", "learning,baseline,scraping,linearity").split(","))
    code = Path(os.environ.get("BENCH_CODE", ROOT)).resolve()
    common = ["--candles-dir", str(directory), "--timeframe", "1h"]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; code {code}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-whole-") as scratch:
        runner = Runner(code, Path(scratch))
        span = ["--from", start, "--to", end]
        results = {}
        if "learning" in wanted:
            results["learning"] = run = runner.replay("--symbols", ",".join(symbols), *span, *common)
            print(describe(f"replay paper {len(symbols)} symbols 1h {start}..{end}, learning on", run), flush=True)
        if "baseline" in wanted:
            run = runner.replay("--symbols", ",".join(symbols), *span, *common, "--no-learning")
            print(describe(f"replay paper {len(symbols)} symbols 1h {start}..{end}, no learning", run), flush=True)
            print("    target: ≥ 40,000 candles/s whole process", flush=True)
        if "scraping" in wanted:
            run = runner.replay("--engines", "scraping", "--symbols", "BTCUSDT,ETHUSDT", "--from", "2022-01-01", "--to", "2022-12-31", *common)
            print(describe("replay scraping BTCUSDT,ETHUSDT 1h 2022, learning on", run), flush=True)
            print("    target: ≥ 10,000 candles/s", flush=True)
        if "linearity" in wanted and len(symbols) == len(SYMBOLS):
            four = results.get("learning") or runner.replay("--symbols", ",".join(symbols), *span, *common)
            many = Path(scratch) / "sixteen"
            many.mkdir()
            run = runner.replay("--symbols", ",".join(sixteen_symbols(directory, many)), *span, "--candles-dir", str(many), "--timeframe", "1h")
            print(describe(f"replay paper 16 symbols (the four files under four names each), learning on", run), flush=True)
            print(f"    16 symbols / 4 symbols: {run['wall'] / four['wall']:.2f}× the time (target ≤ 4.2×)", flush=True)
    if os.environ.get("BENCH_FREQTRADE") == "1":
        seconds = freqtrade_whole_seconds()
        if seconds and "learning" in results:
            print(f"    tradelearn with learning on: {seconds / results['learning']['wall']:.2f}× faster than freqtrade's whole process (target ≥ 2.5×)")
    print("targets: learning on ≥ 2.5× freqtrade's whole process; no learning ≥ 40,000 candles/s; peak RSS ≤ 500 MB")


if __name__ == "__main__":
    main()
