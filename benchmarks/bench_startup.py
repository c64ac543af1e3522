"""Start-up of a command that does nothing heavy: `manage.py check` and `help`, whole process, wall time."""
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, sqlite_url  # noqa: E402

RUNS = 5


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall_and_cpu_seconds(args: list[str], env: dict) -> tuple[list[float], list[float]]:
    """Wall and CPU time of each of RUNS fresh `manage.py` processes (a first one warms the file cache).

    CPU time is printed too: on a shared machine the wall time also counts waiting for a core.
    """
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
    walls, cpus = [], []
    for _ in range(RUNS):
        cpu, start = _children_cpu(), time.perf_counter()
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        cpus.append(_children_cpu() - cpu)
    return walls, cpus


def main() -> None:
    env = {**os.environ, "DATABASE_URL": sqlite_url("bench_startup"), "DJANGO_SETTINGS_MODULE": "tradelearn.settings.local"}
    load = os.getloadavg()[0]
    for args in (["check"], ["help"]):
        walls, cpus = wall_and_cpu_seconds(args, env)
        print(
            f"manage.py {' '.join(args):5} whole process: median {statistics.median(walls):.2f} s, "
            f"best {min(walls):.2f} s of {RUNS} (CPU median {statistics.median(cpus):.2f} s; load average {load:.2f})",
            flush=True,
        )
    print("target: ≤ 1.5 s (heavy libraries imported where used, not at app, admin or URL-conf load)")


if __name__ == "__main__":
    main()
