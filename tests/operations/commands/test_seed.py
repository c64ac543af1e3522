"""seed: imports the bundled candles and replays a short window into the current database; running it again adds nothing."""
import io

import pytest
from django.core.management import call_command

from learning.models import TrainingRecord
from trading.models import Candle, PaperAccount, PaperTrade, SignalDecision

pytestmark = pytest.mark.django_db


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
