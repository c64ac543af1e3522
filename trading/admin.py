"""Admin for trading data: browse, filter, audit and edit every table."""
from django.contrib import admin

from trading.models import Candle


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = ("symbol", "timeframe", "exchange", "open_time", "open", "high", "low", "close", "volume")
    list_filter = ("exchange", "timeframe", "symbol")
    date_hierarchy = "open_time"
    search_fields = ("^symbol",)
    ordering = ("-open_time",)
    list_per_page = 100
    # Millions of rows: counting them all on every page would be the slowest part of the page.
    show_full_result_count = False
