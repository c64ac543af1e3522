"""Serializers of the learning API: input shapes checked here, business rules in the services."""
import math

from rest_framework import serializers

from learning.ml.schema import feature_value_errors
from learning.models import ExitReason, FillSource, MarketRegime, RecentPerformance, Side, SystemType, TrainingRecord, VolatilityRegime
from tradelearn.api.fields import FiniteFloatField

MAX_BATCH = 1000

PRICE_FIELD = {"max_digits": 28, "decimal_places": 10}
MONEY_FIELD = {"max_digits": 24, "decimal_places": 10}


class FeaturesField(serializers.DictField):
    """Feature name → number, each within its documented valid range (learning/ml/schema.py): an
    impossible value (RSI 1e308, side 7) is refused naming the feature, never fed to a model."""

    child = FiniteFloatField()

    def to_internal_value(self, data):
        if type(data) is dict and all(type(value) is float for value in data.values()) and all(map(math.isfinite, data.values())):
            # What the child field makes of finite floats (JSON keys are strings), without running it
            # once per feature: that was most of a prediction request's time.
            features = {str(name): value for name, value in data.items()}
        else:
            features = super().to_internal_value(data)
        errors = feature_value_errors(features)
        if errors:
            raise serializers.ValidationError({name: [f"{message}."] for name, message in errors.items()})
        return features


class TradeOutcomeInputSerializer(serializers.Serializer):
    trade_id = serializers.CharField(max_length=64)
    symbol = serializers.CharField(max_length=32)
    strategy_type = serializers.CharField(max_length=64)
    system_type = serializers.ChoiceField(choices=SystemType.choices)
    side = serializers.ChoiceField(choices=Side.choices)
    confidence_score = FiniteFloatField(min_value=0.0, max_value=1.0)
    ml_score = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True)
    entry_price = serializers.DecimalField(**PRICE_FIELD)
    exit_price = serializers.DecimalField(**PRICE_FIELD)
    pnl_pct = serializers.DecimalField(max_digits=20, decimal_places=10)
    net_pnl = serializers.DecimalField(**MONEY_FIELD)
    fees = serializers.DecimalField(**MONEY_FIELD, min_value=0)
    market_regime = serializers.ChoiceField(choices=MarketRegime.choices)
    volatility_regime = serializers.ChoiceField(choices=VolatilityRegime.choices)
    exit_reason = serializers.ChoiceField(choices=ExitReason.choices)
    entry_time = serializers.DateTimeField()
    exit_time = serializers.DateTimeField()
    success = serializers.BooleanField(required=False, allow_null=True, default=None)
    duration_minutes = serializers.IntegerField(min_value=0, required=False, allow_null=True, default=None)
    features = FeaturesField(required=False, default=dict)
    model_versions = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False, default=dict)
    is_shadow = serializers.BooleanField(required=False, default=False)
    fill_source = serializers.ChoiceField(
        choices=FillSource.choices, required=False, default=FillSource.PAPER, help_text="exchange: the prices and fees are an exchange's reported fills."
    )


class TrainingRecordOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingRecord
        fields = (
            "id", "trade_id", "symbol", "strategy_type", "system_type", "side", "is_shadow", "fill_source", "confidence_score",
            "ml_score", "entry_price", "exit_price", "pnl_pct", "net_pnl", "fees", "duration_minutes",
            "market_regime", "volatility_regime", "exit_reason", "success", "features", "model_versions",
            "entry_time", "exit_time", "created_at",
        )  # fmt: skip


class StoreResultOutputSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    duplicates = serializers.ListField(child=serializers.CharField())


class SignalContextInputSerializer(serializers.Serializer):
    strategy_type = serializers.CharField(max_length=64)
    system_type = serializers.ChoiceField(choices=SystemType.choices)
    confidence_score = FiniteFloatField(min_value=0.0, max_value=1.0)
    market_regime = serializers.ChoiceField(choices=MarketRegime.choices)
    volatility_regime = serializers.ChoiceField(choices=VolatilityRegime.choices)
    symbol = serializers.CharField(max_length=32, required=False, default="")
    ml_score = FiniteFloatField(
        min_value=0.0, max_value=1.0, required=False, allow_null=True, default=None,
        help_text="A trusted model's probability of a net profit: when given, it is the win rate the expected P&L uses.",
    )  # fmt: skip
    # Bounded (1,000 %) so the expected P&L computed from them stays finite: 1e308 made it -inf,
    # which JSON cannot carry, and the response a 500 (found by tests/reliability/test_api_fuzz.py).
    take_profit_pct = FiniteFloatField(min_value=0.0, max_value=10.0, required=False, allow_null=True, default=None)
    stop_loss_pct = FiniteFloatField(min_value=0.0, max_value=10.0, required=False, allow_null=True, default=None)


class SignalRecommendationOutputSerializer(serializers.Serializer):
    should_take_trade = serializers.BooleanField()
    confidence_adjustment = FiniteFloatField()
    calibrated_confidence = FiniteFloatField()
    recommended_position_size = FiniteFloatField()
    expected_win_rate = FiniteFloatField()
    expected_pnl_pct = FiniteFloatField()
    sample_size = serializers.IntegerField()
    transfer_sample_size = FiniteFloatField()
    reasoning = serializers.CharField()


class FeaturesInputSerializer(serializers.Serializer):
    features = FeaturesField()


class TrainingExampleInputSerializer(serializers.Serializer):
    features = FeaturesField()
    target = serializers.BooleanField()
    symbol = serializers.CharField(max_length=32)


class HybridPredictionOutputSerializer(serializers.Serializer):
    probability = FiniteFloatField()
    model_probabilities = serializers.DictField(child=FiniteFloatField())
    confidence = FiniteFloatField()
    versions = serializers.DictField(child=serializers.CharField(allow_null=True))
    weights = serializers.DictField(child=FiniteFloatField(), required=False)


def one_or_many(serializer_class, data, *, limit: int = MAX_BATCH) -> tuple[list[dict], bool]:
    """Validate a JSON object or a list of them (at most `limit`); returns the items and whether it was a list."""
    many = isinstance(data, list)
    if many and not data:
        raise serializers.ValidationError({"non_field_errors": ["Send at least one item."]})
    if many and len(data) > limit:
        raise serializers.ValidationError({"non_field_errors": [f"Send at most {limit} items per request (got {len(data)})."]})
    serializer = serializer_class(data=data, many=many)
    serializer.is_valid(raise_exception=True)
    return (serializer.validated_data if many else [serializer.validated_data]), many


class RecentPerformanceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RecentPerformance
        fields = (
            "system_type", "symbol", "window_outcomes", "pnl_pct_20", "pnl_pct_50", "win_rate_20", "win_rate_50",
            "total_outcomes", "last_entry_time", "last_exit_time", "last_updated",
        )  # fmt: skip


class RecentRecordInputSerializer(serializers.Serializer):
    system_type = serializers.ChoiceField(choices=SystemType.choices)
    symbol = serializers.CharField(max_length=32)
    at = serializers.DateTimeField(help_text="The open time of the candle being decided on (UTC).")
