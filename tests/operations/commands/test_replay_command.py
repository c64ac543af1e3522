"""manage.py replay: both engines over file candles, a summary, and safe re-runs."""
import io

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import BUNDLED_CANDLES as CANDLES
from trading.models import PaperAccount, PaperTrade

pytestmark = pytest.mark.django_db
ARGS = ("--candles-dir", str(CANDLES), "--symbols", "BTCUSDT", "--from", "2022-06-01", "--to", "2022-06-20", "--no-progress")


def replay(*extra: str) -> str:
    out = io.StringIO()
    call_command("replay", *ARGS, *extra, stdout=out)
    return out.getvalue()


def test_replays_both_engines_and_prints_a_summary():
    output = replay("--engines", "paper,scraping", "--no-learning")
    assert "candles/s" in output and "replay-paper" in output and "replay-scraping" in output
    assert PaperTrade.objects.filter(account__name="replay-paper").exists()
    assert {a.system_type for a in PaperAccount.objects.all()} == {"paper_trading", "profit_scraping"}


def test_a_finished_account_is_refused_skipped_or_reset():
    replay("--no-learning")
    trades = PaperTrade.objects.count()
    with pytest.raises(CommandError, match="replayed already"):
        replay("--no-learning")
    assert "left as it is" in replay("--no-learning", "--skip-done")
    assert PaperTrade.objects.count() == trades
    replay("--no-learning", "--reset")
    assert PaperTrade.objects.count() == trades  # the same candles give the same trades again


def test_bad_arguments_are_clear_errors():
    with pytest.raises(CommandError, match="Unknown engines"):
        replay("--engines", "moon")
    with pytest.raises(CommandError, match="not a date"):
        call_command("replay", "--from", "yesterday", "--to", "2022-01-01")
    with pytest.raises(CommandError, match="No 1h candles for BTCUSDT"):
        call_command("replay", "--symbols", "BTCUSDT", "--from", "2022-01-01", "--to", "2022-01-02", stdout=io.StringIO())


def _fresh_sqlite_command(tmp_path):
    """A `manage.py` command line, its working directory and environment, on a migrated SQLite file of its own."""
    import os
    import subprocess
    import sys

    from tests.conftest import BUNDLED_CANDLES

    root = BUNDLED_CANDLES.parents[1]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'replay.sqlite3'}", "DJANGO_SETTINGS_MODULE": "tradelearn.settings.local"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=root, env=env, check=True, timeout=300)
    return manage, root, env


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_shorter_than_its_workers_start_ends_without_a_traceback(tmp_path):
    """Nine days end before the training workers have imported scikit-learn; closing them must print nothing."""
    import subprocess

    from tests.conftest import BUNDLED_CANDLES

    manage, root, env = _fresh_sqlite_command(tmp_path)
    result = subprocess.run(
        [*manage, "replay", "--candles-dir", str(BUNDLED_CANDLES), "--from", "2023-06-01", "--to", "2023-06-10", "--no-progress"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Replayed" in result.stdout
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_replay_without_learning_never_imports_scikit_learn(tmp_path):
    """Nothing of a baseline replay needs a model, so it does not pay scikit-learn's import (~1 s)."""
    import subprocess
    import sys

    from tests.conftest import BUNDLED_CANDLES

    manage, root, env = _fresh_sqlite_command(tmp_path)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *manage[1:], "replay", "--no-learning", "--candles-dir", str(BUNDLED_CANDLES),
         "--from", "2023-06-01", "--to", "2023-07-15", "--no-progress"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "trades" in result.stdout and "Replayed" in result.stdout
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported  # -X importtime really listed the imports
    assert "sklearn" not in imported
