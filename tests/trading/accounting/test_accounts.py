"""Account services: create with the starting balance, pause and resume under a row lock."""
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from tests.trading.accounting.helpers import assert_account_balanced
from trading.models import PaperAccount
from trading.services.accounts import account_create, account_figures, account_pause, account_resume

pytestmark = pytest.mark.django_db


def test_create_starts_at_the_starting_balance_with_default_limits():
    account = account_create(name="scraper", system_type="profit_scraping", starting_balance=Decimal("5000"), cooldown_minutes=30)
    assert account.current_balance == Decimal("5000")
    assert (account.fee_rate, account.slippage_rate, account.cooldown_minutes) == (Decimal("0.0004"), Decimal("0.0002"), 30)
    assert_account_balanced(account)
    figures = account_figures(account=account)
    assert (figures.equity, figures.free_balance, figures.return_pct, figures.open_trades) == (Decimal("5000"), Decimal("5000"), 0, 0)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"starting_balance": Decimal("0")}, "starting_balance"),
        ({"system_type": "hedge_fund"}, "system_type"),
        ({"name": ""}, "name"),
    ],
)
def test_create_refuses_bad_values(overrides, field):
    arguments = {"name": "paper", "system_type": "paper_trading", "starting_balance": Decimal("1000"), **overrides}
    with pytest.raises(ValidationError) as error:
        account_create(**arguments)
    assert field in error.value.message_dict
    assert not PaperAccount.objects.exists()


def test_pause_and_resume_are_idempotent():
    account = account_create(name="paper", system_type="paper_trading", starting_balance=Decimal("1000"))
    assert account_pause(account_id=account.pk).is_paused
    assert account_pause(account_id=account.pk).is_paused
    assert not account_resume(account_id=account.pk).is_paused
    account.refresh_from_db()
    assert not account.is_paused
