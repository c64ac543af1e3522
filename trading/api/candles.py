"""REST view of stored candles: read-only, filtered, oldest first with a time-ordered cursor."""
import django_filters
from django.core.exceptions import ValidationError
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination

from trading.marketdata.naming import normalize_symbol, timeframe_ms
from trading.models import Candle


def _validate_timeframe(value: str) -> None:
    try:
        timeframe_ms(value)
    except ValueError as error:
        # The reason quotes the client's text; as a param, a "%" in it is not read as a format
        # directive by django-filter (`message % params`), which raised a TypeError: a 500.
        raise ValidationError("%(reason)s", params={"reason": f"{str(error).capitalize()}."}) from None


class CandleFilter(django_filters.FilterSet):
    symbol = django_filters.CharFilter(method="filter_symbol", help_text="BTCUSDT, or a ccxt symbol such as BTC/USDT:USDT.")
    timeframe = django_filters.CharFilter(validators=[_validate_timeframe], help_text="e.g. 1h, 15m, 1d.")
    exchange = django_filters.CharFilter()
    open_time = django_filters.IsoDateTimeFromToRangeFilter(help_text="open_time_after / open_time_before (ISO 8601, inclusive).")

    class Meta:
        model = Candle
        fields = ["symbol", "timeframe", "exchange", "open_time"]

    def filter_symbol(self, queryset, name, value):
        return queryset.filter(symbol=normalize_symbol(value))


class CandleOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candle
        fields = ["exchange", "symbol", "timeframe", "open_time", "open", "high", "low", "close", "volume"]


class CandleCursorPagination(CursorPagination):
    # Oldest first, as candles are read; ties in open_time (several series) are broken by id.
    ordering = ("open_time", "id")
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 1000


class CandleListApi(generics.ListAPIView):
    """Stored candles with filters; cursor-paginated in time order."""

    queryset = Candle.objects.all()
    serializer_class = CandleOutputSerializer
    filterset_class = CandleFilter
    pagination_class = CandleCursorPagination
