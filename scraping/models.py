"""Profit scraping data: the support and resistance levels found in candles, as they were at each recompute."""
from django.db import models
from django.db.models import Q

from learning.models import PRICE


class PriceLevel(models.Model):
    """One support or resistance level as computed from the candles up to `computed_at` (inclusive).

    A recompute writes the whole set for its (symbol, timeframe, computed_at) at once, so the
    levels in force at any moment are the rows with the latest computed_at at or before it.
    """

    class Kind(models.TextChoices):
        SUPPORT = "support", "Support"
        RESISTANCE = "resistance", "Resistance"

    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    price = models.DecimalField(**PRICE)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    touches = models.PositiveIntegerField(help_text="Separate tests: runs of candles whose range came within the tolerance.")
    bounces = models.PositiveIntegerField(help_text="Tests after which price moved the bounce distance away in time.")
    bounce_rate = models.FloatField(help_text="Bounces over the tests whose outcome was known at computed_at.")
    last_test_time = models.DateTimeField()
    strength = models.FloatField(help_text="0–1: tests, bounce rate, recency and magnets (see scraping.levels).")
    magnets = models.JSONField(default=list, blank=True, help_text="Magnet levels near this one that strengthened it.")
    computed_at = models.DateTimeField(help_text="Open time of the last candle used.")

    class Meta:
        indexes = [models.Index(fields=["symbol", "timeframe", "computed_at"], name="level_symbol_tf_time_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="level_price_positive"),
            models.CheckConstraint(condition=Q(strength__gte=0, strength__lte=1), name="level_strength_unit"),
        ]
        ordering = ["symbol", "timeframe", "-computed_at", "price"]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.kind} {self.price} @ {self.computed_at:%Y-%m-%d %H:%M}"
