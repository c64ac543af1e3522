"""Fixtures for profit scraping tests: the bundled real BTC/ETH hourly candles, and replays over them."""
from datetime import UTC, datetime
from decimal import Decimal

from operations.replay import replay
from scraping.engine import ProfitScrapingEngine
from trading.engine import TradingEngine
from trading.models import PaperAccount
from trading.services.accounts import account_create

# Three weeks of June 2022: BTC broke down from 30k to 18k and ranged, so levels are both
# respected and broken; short enough for two cores.
START, END = datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 6, 21, 23, tzinfo=UTC)


def run_replay(frames, *, engine_classes=(ProfitScrapingEngine,), prefix="replay", use_learning=False, start=START, end=END):
    """Replay `frames` with one fresh account per engine class (model updates off); returns the accounts."""
    engines: list[TradingEngine] = []
    for engine_class in engine_classes:
        account = account_create(
            name=f"{prefix}-{engine_class.system_type}", system_type=engine_class.system_type, starting_balance=Decimal("10000")
        )
        engines.append(engine_class(account=account, use_learning=use_learning, use_model=False))
    replay(engines=engines, frames=frames, timeframe="1h", start=start, end=end, learning=False, progress=False)
    return [engine.account for engine in engines]


def trades_of(account: PaperAccount) -> list[tuple]:
    return list(
        account.trades.order_by("entry_time", "symbol", "is_shadow").values_list(
            "symbol", "side", "is_shadow", "entry_time", "entry_price", "exit_time", "exit_price", "exit_reason", "net_pnl"
        )
    )
