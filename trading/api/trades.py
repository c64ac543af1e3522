"""REST views of paper trades (list, detail, manual close) and of the signal decisions behind them."""
from decimal import Decimal

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from learning.models import PRICE
from tradelearn.api.schema import ErrorSerializer
from tradelearn.api.pagination import NewestFirstCursorPagination
from trading import execution
from trading.models import PaperTrade, SignalDecision
from trading.services.trades import TradeNotOpen, trade_close_manual, trade_position


class TradeAlreadyClosed(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The trade is already closed."
    default_code = "trade_closed"


class TradeFilter(django_filters.FilterSet):
    entry_time = django_filters.IsoDateTimeFromToRangeFilter(help_text="entry_time_after / entry_time_before (ISO 8601).")
    exit_time = django_filters.IsoDateTimeFromToRangeFilter(help_text="exit_time_after / exit_time_before (ISO 8601).")

    class Meta:
        model = PaperTrade
        fields = ["account", "symbol", "timeframe", "status", "side", "exit_reason", "is_shadow", "fill_source", "strategy_type"]


class TradeOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaperTrade
        fields = [
            "id", "account", "decision", "is_shadow", "fill_source", "symbol", "timeframe", "side", "status", "strategy_type",
            "entry_time", "entry_price", "exit_time", "exit_price", "quantity", "notional", "leverage",
            "stop_loss_price", "take_profit_price", "trailing_stop_pct", "breakeven_trigger_pct", "best_price",
            "max_holding_minutes", "fees", "net_pnl", "pnl_pct", "exit_reason", "signal_confidence", "ml_score",
            "market_regime", "volatility_regime",
        ]  # fmt: skip


class TradeDetailOutputSerializer(TradeOutputSerializer):
    active_stop_price = serializers.DecimalField(
        **PRICE, allow_null=True, read_only=True, help_text="The stop in force (initial, breakeven or trailing) while open."
    )
    active_stop_kind = serializers.CharField(allow_null=True, read_only=True)

    class Meta(TradeOutputSerializer.Meta):
        fields = [*TradeOutputSerializer.Meta.fields, "signal_features", "model_versions", "active_stop_price", "active_stop_kind"]


def _with_active_stop(trade: PaperTrade) -> PaperTrade:
    # Breakeven and trailing stops are derived from best_price, not stored: show the one in force.
    stop = None
    if trade.status == PaperTrade.Status.OPEN:
        stop = execution.active_stop(trade_position(trade=trade, account=trade.account))
    trade.active_stop_price = stop.price if stop else None
    trade.active_stop_kind = stop.kind.value if stop else None
    return trade


class TradeListApi(generics.ListAPIView):
    """Paper trades, newest first, with filters; cursor-paginated."""

    queryset = PaperTrade.objects.all()
    serializer_class = TradeOutputSerializer
    filterset_class = TradeFilter
    pagination_class = NewestFirstCursorPagination


class TradeDetailApi(APIView):
    @extend_schema(responses=TradeDetailOutputSerializer)
    def get(self, request, pk: int):
        trade = get_object_or_404(PaperTrade.objects.select_related("account"), pk=pk)
        return Response(TradeDetailOutputSerializer(_with_active_stop(trade)).data)


class TradeCloseApi(APIView):
    """Close an open trade by hand, as a market order at `price` (the fill pays the account's slippage)."""

    class InputSerializer(serializers.Serializer):
        price = serializers.DecimalField(**PRICE, min_value=Decimal("1e-10"), help_text="Market price to close at.")
        time = serializers.DateTimeField(required=False, help_text="When it closed; defaults to now.")

    @extend_schema(
        request=InputSerializer,
        responses={
            200: TradeDetailOutputSerializer,
            409: OpenApiResponse(ErrorSerializer, description="The trade is already closed."),
        },
    )
    def post(self, request, pk: int):
        trade = get_object_or_404(PaperTrade, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            trade = trade_close_manual(trade_id=trade.pk, **serializer.validated_data)
        except TradeNotOpen as error:
            raise TradeAlreadyClosed(str(error)) from error
        return Response(TradeDetailOutputSerializer(_with_active_stop(trade)).data)


class DecisionFilter(django_filters.FilterSet):
    candle_time = django_filters.IsoDateTimeFromToRangeFilter(help_text="candle_time_after / candle_time_before (ISO 8601).")

    class Meta:
        model = SignalDecision
        fields = ["account", "symbol", "timeframe", "side", "strategy_type", "taken", "market_regime", "volatility_regime"]


class DecisionOutputSerializer(serializers.ModelSerializer):
    trade = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = SignalDecision
        fields = [
            "id", "account", "symbol", "timeframe", "candle_time", "strategy_type", "side", "features",
            "technical_score", "model_probability", "combined_confidence", "model_versions", "recommendation",
            "market_regime", "volatility_regime", "taken", "reason", "trade", "created_at",
        ]  # fmt: skip


class DecisionListApi(generics.ListAPIView):
    """Every signal the engines evaluated, taken or skipped, newest first; cursor-paginated."""

    queryset = SignalDecision.objects.select_related("trade")
    serializer_class = DecisionOutputSerializer
    filterset_class = DecisionFilter
    pagination_class = NewestFirstCursorPagination
