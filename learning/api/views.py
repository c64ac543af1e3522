"""The learning API under /api/v1/: trade outcomes, recommendations, insights, recent performance, the summary."""
from dataclasses import asdict

import django_filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from learning.api.serializers import (
    RecentPerformanceOutputSerializer,
    RecentRecordInputSerializer,
    SignalContextInputSerializer,
    SignalRecommendationOutputSerializer,
    StoreResultOutputSerializer,
    TradeOutcomeInputSerializer,
    TrainingRecordOutputSerializer,
    one_or_many,
)
from learning.models import RecentPerformance, SystemType, TrainingRecord
from learning.selectors import get_learning_summary, get_strategy_insights, recent_record_features, strategy_has_outcomes
from learning.services import get_signal_recommendation, store_trade_outcomes
from learning.types import SignalContext, TradeOutcome
from tradelearn.api.pagination import NewestFirstCursorPagination


class TrainingRecordFilter(django_filters.FilterSet):
    exit_time_after = django_filters.IsoDateTimeFilter(field_name="exit_time", lookup_expr="gte")
    exit_time_before = django_filters.IsoDateTimeFilter(field_name="exit_time", lookup_expr="lt")

    class Meta:
        model = TrainingRecord
        fields = ("system_type", "strategy_type", "symbol", "success", "is_shadow", "fill_source", "market_regime", "volatility_regime", "exit_reason")


class TradeOutcomeListCreateApi(generics.ListAPIView):
    """GET lists stored outcomes (newest first, cursor-paginated); POST stores one or a list (≤ 1000)."""

    queryset = TrainingRecord.objects.all()
    serializer_class = TrainingRecordOutputSerializer
    pagination_class = NewestFirstCursorPagination
    filterset_class = TrainingRecordFilter

    @extend_schema(request=TradeOutcomeInputSerializer, responses={201: StoreResultOutputSerializer, 200: StoreResultOutputSerializer})
    def post(self, request):
        items, _ = one_or_many(TradeOutcomeInputSerializer, request.data)
        result = store_trade_outcomes(outcomes=[TradeOutcome(**item) for item in items])
        body = StoreResultOutputSerializer({"stored": result.stored, "duplicates": list(result.duplicates)}).data
        # 200 rather than 201 when nothing new was stored: the request was a pure repeat.
        return Response(body, status=status.HTTP_201_CREATED if result.stored else status.HTTP_200_OK)


class RecommendationApi(APIView):
    """Should a signal be taken, how large, and on how much history that rests."""

    @extend_schema(request=SignalContextInputSerializer, responses=SignalRecommendationOutputSerializer)
    def post(self, request):
        serializer = SignalContextInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        advice = get_signal_recommendation(context=SignalContext(**serializer.validated_data))
        return Response(SignalRecommendationOutputSerializer(asdict(advice)).data)


class StrategyInsightsApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("system_type", str, enum=SystemType.values, required=False)],
        responses={200: dict},
    )
    def get(self, request, strategy_type: str):
        system_type = request.query_params.get("system_type") or None
        if system_type is not None and system_type not in SystemType.values:
            raise ValidationError({"system_type": [f"Unknown value; expected one of {', '.join(SystemType.values)}."]})
        if not strategy_has_outcomes(strategy_type=strategy_type):
            raise NotFound(f"No outcomes of strategy {strategy_type!r} have been learned.")
        return Response(get_strategy_insights(strategy_type=strategy_type, system_type=system_type))


class LearningSummaryApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(get_learning_summary())


class RecentPerformanceListApi(generics.ListAPIView):
    """The rolling windows of recent performance, per system (symbol "*") and per system and symbol."""

    queryset = RecentPerformance.objects.order_by("system_type", "symbol")
    serializer_class = RecentPerformanceOutputSerializer
    filterset_fields = ("system_type", "symbol")


class RecentRecordApi(APIView):
    """The recent-record features a decision of `system_type` on `symbol` at candle `at` would see."""

    @extend_schema(parameters=[RecentRecordInputSerializer], responses={200: dict})
    def get(self, request):
        serializer = RecentRecordInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return Response(recent_record_features(**serializer.validated_data))
