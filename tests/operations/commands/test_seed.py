"""seed: imports the bundled candles and replays a short window into the current database; running it again adds nothing."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from learning.models import TrainingRecord
from trading.models import Candle, PaperAccount, PaperTrade, SignalDecision

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Candle, PaperAccount, PaperTrade, SignalDecision, TrainingRecord))


def test_seed_loads_demo_data_once():
    out = io.StringIO()
    call_command("seed", "--from", "2022-06-01", "--to", "2022-06-10", "--no-progress", stdout=out)
    first = counts()
    assert first[0] == 2 * 17520 and PaperAccount.objects.get().name == "demo-paper"
    assert first[2] > 0 and first[3] > 0 and first[4] > 0

    call_command("seed", "--from", "2022-06-01", "--to", "2022-06-10", "--no-progress", stdout=out)
    assert counts() == first
    assert "demo-paper has replayed already" in out.getvalue()


def test_seed_on_a_database_without_tables_migrates_it_first(tmp_path):
    # As a new user runs it: a fresh SQLite file, never migrated.
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="tradelearn.settings.local", DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "seed", "--from", "2022-06-01", "--to", "2022-06-02", "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "applying them first" in result.stdout
    assert "no such table" not in result.stderr and "Traceback" not in result.stderr
    assert "Demo data loaded" in result.stdout
