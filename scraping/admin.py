"""Admin for profit scraping: browse and filter the price levels each recompute stored."""
from django.contrib import admin

from scraping.models import PriceLevel


@admin.register(PriceLevel)
class PriceLevelAdmin(admin.ModelAdmin):
    list_display = ("symbol", "timeframe", "kind", "price", "strength", "touches", "bounces", "bounce_rate", "last_test_time", "computed_at")
    list_filter = ("symbol", "timeframe", "kind")
    date_hierarchy = "computed_at"
    ordering = ("-computed_at", "-strength")
    sortable_by = ("price", "strength", "touches", "bounce_rate", "last_test_time", "computed_at")
    search_fields = ("^symbol",)
    # Levels are derived from candles and rewritten at every recompute: edits would be overwritten.
    readonly_fields = tuple(field.name for field in PriceLevel._meta.fields)
    list_per_page = 100
    show_full_result_count = False

    def has_add_permission(self, request):
        return False
