"""Profit scraping writes: storing each recompute's price levels."""
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction

from scraping.levels import LevelSet
from tradelearn.bulk import bulk_insert
from scraping.models import PriceLevel
from trading.execution import PRICE_QUANTUM


@transaction.atomic
def price_levels_replace(*, symbol: str, timeframe: str, level_sets: Sequence[LevelSet]) -> int:
    """Store recomputes' levels, replacing any set stored for the same last candle; returns how many.

    Levels are a pure function of the candles, so a rerun (a second replay, a redelivered tick)
    computes the same sets: replacing them keeps one copy, whoever wrote them. A replay hands
    over all the sets since its last write at once: one delete and one insert.
    """
    computed = [level_set.computed_at.to_pydatetime() for level_set in level_sets]
    PriceLevel.objects.filter(symbol=symbol, timeframe=timeframe, computed_at__in=computed).delete()
    created = [
        PriceLevel(
            symbol=symbol,
            timeframe=timeframe,
            computed_at=computed_at,
            price=Decimal(repr(row["price"])).quantize(PRICE_QUANTUM),
            kind=row["kind"],
            touches=row["touches"],
            bounces=row["bounces"],
            bounce_rate=row["bounce_rate"],
            last_test_time=row["last_test_time"],
            strength=row["strength"],
            magnets=row["magnets"],
        )
        for level_set, computed_at in zip(level_sets, computed)
        for row in level_set.rows()
    ]
    bulk_insert(PriceLevel, created)
    return len(created)
