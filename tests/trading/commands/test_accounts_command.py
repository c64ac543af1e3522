"""manage.py accounts: create, list, pause, resume and ensure-live, with clear errors."""
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from trading.models import PaperAccount

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("accounts", *args, stdout=out)
    return out.getvalue()


def test_create_list_pause_resume():
    assert "Created swing (paper_trading) with 2500" in run("create", "swing", "--engine", "paper_trading", "--balance", "2500")
    account = PaperAccount.objects.get(name="swing")
    assert account.current_balance == Decimal("2500")
    assert "swing (paper_trading): paused" in run("pause", "swing")
    assert PaperAccount.objects.get(pk=account.pk).is_paused
    assert "active" in run("resume", str(account.pk))
    assert not PaperAccount.objects.get(pk=account.pk).is_paused
    listing = run("list")
    assert "swing" in listing and "balance 2500.00" in listing and "active" in listing


def test_ensure_live_creates_one_account_per_engine_once(settings):
    settings.TRADING_STARTING_BALANCE = "5000"
    first = run("ensure-live")
    assert first.count("Created") == 2
    assert sorted(PaperAccount.objects.values_list("name", "system_type", "starting_balance")) == [
        ("live-paper_trading", "paper_trading", Decimal("5000")),
        ("live-profit_scraping", "profit_scraping", Decimal("5000")),
    ]
    run("pause", "live-paper_trading")
    again = run("ensure-live")
    assert "Created" not in again and "(paused)" in again
    assert PaperAccount.objects.count() == 2


def test_errors_name_what_is_wrong():
    with pytest.raises(CommandError, match="No account named 'nobody'"):
        run("pause", "nobody")
    with pytest.raises(CommandError, match="--balance 'lots' is not a number"):
        run("create", "x", "--engine", "paper_trading", "--balance", "lots")
    with pytest.raises(CommandError, match="starting_balance: Must be greater than zero"):
        run("create", "x", "--engine", "paper_trading", "--balance", "0")


def test_symbols_are_shown_set_checked_and_reset(settings):
    settings.TRADING_MARKETS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert "trading ETH/USDT:USDT" in run("create", "eth", "--engine", "paper_trading", "--symbols", "ETH/USDT:USDT")
    assert run("symbols", "eth") == "eth trades ETH/USDT:USDT\n"
    assert run("symbols", "eth", "BTCUSDT", "ETH/USDT:USDT") == "eth trades BTC/USDT:USDT, ETH/USDT:USDT\n"
    with pytest.raises(CommandError, match="symbols: SOL/USDT:USDT not among TRADING_MARKETS"):
        run("symbols", "eth", "SOL/USDT:USDT")
    assert run("symbols", "eth", "--all") == "eth trades BTC/USDT:USDT, ETH/USDT:USDT (all of TRADING_MARKETS)\n"
    assert PaperAccount.objects.get(name="eth").symbols == []
    assert "on the exchange" in run("create", "testnet", "--engine", "paper_trading", "--broker", "exchange")
    assert PaperAccount.objects.get(name="testnet").broker == "exchange"
