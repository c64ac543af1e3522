"""manage.py retrain: the outcome of the retrain printed once."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db(transaction=True)
def test_the_result_is_printed_once(subprocess_env):
    # As a user sees it: on an empty store the reason nothing was trained, once (not also as a log line).
    result = subprocess.run([sys.executable, "manage.py", "retrain"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    assert console.count("too few records") == 1, console
    assert "too few records" in result.stdout
