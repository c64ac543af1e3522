"""REST view of the stored price levels: read-only, filtered, newest recompute first."""
import django_filters
from rest_framework import generics, serializers

from scraping.models import PriceLevel
from tradelearn.api.pagination import NewestFirstCursorPagination
from trading.marketdata.naming import normalize_symbol


class PriceLevelFilter(django_filters.FilterSet):
    symbol = django_filters.CharFilter(method="filter_symbol", help_text="BTCUSDT, or a ccxt symbol such as BTC/USDT:USDT.")
    timeframe = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=PriceLevel.Kind.choices)
    min_strength = django_filters.NumberFilter(field_name="strength", lookup_expr="gte", help_text="Levels at least this strong (0–1).")
    computed_at = django_filters.IsoDateTimeFromToRangeFilter(help_text="computed_at_after / computed_at_before (ISO 8601, inclusive).")

    class Meta:
        model = PriceLevel
        fields = ["symbol", "timeframe", "kind", "min_strength", "computed_at"]

    def filter_symbol(self, queryset, name, value):
        return queryset.filter(symbol=normalize_symbol(value))


class PriceLevelOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceLevel
        fields = [
            "id", "symbol", "timeframe", "kind", "price", "touches", "bounces", "bounce_rate",
            "last_test_time", "strength", "magnets", "computed_at",
        ]  # fmt: skip


class PriceLevelCursorPagination(NewestFirstCursorPagination):
    ordering = ("-computed_at", "-id")


class PriceLevelListApi(generics.ListAPIView):
    """Support and resistance levels as each recompute stored them; newest first."""

    queryset = PriceLevel.objects.all()
    serializer_class = PriceLevelOutputSerializer
    filterset_class = PriceLevelFilter
    pagination_class = PriceLevelCursorPagination
