"""The per-account summaries (decision counts, closed real trades per exit day): kept by the live books as rows are written, equal to a rebuild."""
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.trading.accounting.helpers import account_summaries, candle, open_at, opened_at
from tests.trading.factories import PaperAccountFactory, SignalDecisionFactory
from trading.books import DatabaseBooks
from trading.services.summaries import account_summaries_rebuild
from trading.services.trades import trade_close

pytestmark = pytest.mark.django_db


def test_the_live_books_count_decisions_opened_refused_and_closed_trades_as_a_rebuild_does():
    account = PaperAccountFactory(max_open_per_symbol=1)
    books = DatabaseBooks(account)
    entry = candle("BTCUSDT", "2022-02-28T22:00")
    decided = entry.open_time - timedelta(hours=1)
    taken, refused, skipped = (
        SignalDecisionFactory.build(account=account, candle_time=decided, strategy_type=strategy, taken=strategy != "skipped")
        for strategy in ("taken", "refused", "skipped")
    )
    for decision in (taken, refused, skipped):
        books.record_decision(decision)
    trade = opened_at(account, "BTCUSDT", "2022-02-28T22:00", decision=taken, strategy_type="taken")
    # One position per symbol: the second taken signal is refused and followed as a shadow trade, as the skipped one is.
    assert not open_at(account, "BTCUSDT", "2022-02-28T22:00", decision=refused, strategy_type="refused").opened
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", decision=refused, strategy_type="refused", is_shadow=True)
    opened_at(account, "BTCUSDT", "2022-02-28T22:00", decision=skipped, strategy_type="skipped", is_shadow=True)
    closed = trade_close(trade=trade, exit_time=entry.open_time + timedelta(hours=3), exit_price=trade.entry_price * 2, exit_reason="manual")

    days, counts = account_summaries()
    assert counts == [(account.pk, 3, 2, 1, 1)]
    assert days == [(account.pk, closed.exit_time.date(), 1, 1, closed.net_pnl)] and closed.net_pnl > Decimal(0)
    account_summaries_rebuild()
    assert account_summaries() == (days, counts)


def test_the_rebuild_command_puts_back_summaries_that_a_raw_write_left_behind():
    from io import StringIO

    from django.core.management import call_command

    from trading.models import AccountDecisionCounts

    account = PaperAccountFactory()
    SignalDecisionFactory(account=account, taken=False)  # the factory writes the row directly: no summary kept
    assert account_summaries()[1] == []
    out = StringIO()
    call_command("rebuild_account_summaries", stdout=out)
    assert account_summaries()[1] == [(account.pk, 1, 0, 0, 0)]
    assert f"decision counts: {AccountDecisionCounts.objects.count()} rows" in out.getvalue()
