"""What was learned survives a real process restart, and two processes never store a trade twice."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from learning.models import StrategyPerformance, TrainingRecord
from learning.services.aggregates import aggregates_rebuild
from tests.conftest import aggregates_snapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "outcomes.csv"
pytestmark = pytest.mark.slow


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )


def test_outcomes_stored_in_one_process_are_read_by_another(subprocess_env):
    manage(subprocess_env, "import_outcomes", str(DEMO))
    summary = json.loads(manage(subprocess_env, "learning_summary", "--json").stdout)
    rows = sum(1 for _ in open(DEMO)) - 1
    assert summary["total_records"] == rows
    assert summary["table_rows"]["strategy_performance_learning"] == StrategyPerformance.objects.count() > 0
    assert summary["systems"]["paper_trading"]["wins"] == TrainingRecord.objects.filter(success=True).count()


def test_two_processes_storing_the_same_trades_store_each_once(subprocess_env):
    commands = [
        subprocess.Popen(
            [sys.executable, "manage.py", "import_outcomes", str(DEMO)],
            cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=180) for process in commands]
    assert all(process.returncode == 0 for process in commands), outputs
    rows = sum(1 for _ in open(DEMO)) - 1
    assert TrainingRecord.objects.count() == rows
    assert sum(row.total_trades for row in StrategyPerformance.objects.all()) == rows
    incremental = aggregates_snapshot()
    aggregates_rebuild()
    assert aggregates_snapshot() == incremental
