"""REST views of paper accounts: list, create, detail with equity figures, the symbols it trades, pause and resume."""
from decimal import Decimal

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from learning.models import MONEY, SystemType
from trading.models import PaperAccount
from trading.services.accounts import account_create, account_figures, account_pause, account_resume, account_set_symbols


def _symbols_field() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100,
        help_text="Market symbols it trades, among TRADING_MARKETS (e.g. BTC/USDT:USDT); empty or left out: all of them.",
    )  # fmt: skip


class AccountOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaperAccount
        fields = [
            "id", "name", "system_type", "starting_balance", "current_balance", "fee_rate", "slippage_rate",
            "is_paused", "max_open_positions", "max_open_per_symbol", "cooldown_minutes", "daily_loss_limit_pct",
            "max_holding_minutes", "broker", "real_money", "symbols", "traded_markets", "created_at", "updated_at",
        ]  # fmt: skip

    traded_markets = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Its symbols among TRADING_MARKETS; all of them when it lists none."
    )


class AccountFiguresSerializer(serializers.Serializer):
    margin_in_use = serializers.DecimalField(**MONEY)
    free_balance = serializers.DecimalField(**MONEY)
    realised_pnl = serializers.DecimalField(**MONEY)
    unrealised_pnl = serializers.DecimalField(**MONEY, help_text="Open trades marked to the last stored close.")
    equity = serializers.DecimalField(**MONEY)
    return_pct = serializers.DecimalField(max_digits=20, decimal_places=6, help_text="A fraction: 0.01 is 1 %.")
    open_trades = serializers.IntegerField()
    closed_trades = serializers.IntegerField()
    winning_trades = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)


class AccountDetailOutputSerializer(AccountOutputSerializer):
    figures = AccountFiguresSerializer(read_only=True, help_text="Real trades only; shadow trades never count.")

    class Meta(AccountOutputSerializer.Meta):
        fields = [*AccountOutputSerializer.Meta.fields, "figures"]


class AccountListApi(generics.ListAPIView):
    """List accounts; POST creates one (its current balance is its starting balance)."""

    queryset = PaperAccount.objects.order_by("pk")
    serializer_class = AccountOutputSerializer
    filterset_fields = ["system_type", "is_paused"]

    # Its own name: schema components are named after the class, and TradeCloseApi has an InputSerializer.
    class AccountCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=PaperAccount._meta.get_field("name").max_length)
        system_type = serializers.ChoiceField(choices=SystemType.choices, help_text="Which engine trades the account.")
        starting_balance = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
        fee_rate = serializers.DecimalField(max_digits=10, decimal_places=8, min_value=Decimal(0), max_value=Decimal("0.1"), required=False)
        slippage_rate = serializers.DecimalField(max_digits=10, decimal_places=8, min_value=Decimal(0), max_value=Decimal("0.1"), required=False)
        max_open_positions = serializers.IntegerField(min_value=1, max_value=1000, required=False)
        max_open_per_symbol = serializers.IntegerField(min_value=1, max_value=1000, required=False)
        is_paused = serializers.BooleanField(required=False, default=False, help_text="Create it paused.")
        symbols = _symbols_field()

    @extend_schema(request=AccountCreateInputSerializer, responses={201: AccountDetailOutputSerializer})
    def post(self, request):
        serializer = self.AccountCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _detail(account_create(**serializer.validated_data), status_code=status.HTTP_201_CREATED)


def _detail(account: PaperAccount, status_code: int = status.HTTP_200_OK) -> Response:
    account.figures = account_figures(account=account)
    return Response(AccountDetailOutputSerializer(account).data, status=status_code)


class AccountDetailApi(APIView):
    class AccountSymbolsInputSerializer(serializers.Serializer):
        symbols = _symbols_field()

    @extend_schema(responses=AccountDetailOutputSerializer)
    def get(self, request, pk: int):
        return _detail(get_object_or_404(PaperAccount, pk=pk))

    @extend_schema(request=AccountSymbolsInputSerializer, responses=AccountDetailOutputSerializer)
    def patch(self, request, pk: int):
        """Set the markets the account trades (from its next tick on)."""
        serializer = self.AccountSymbolsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = get_object_or_404(PaperAccount, pk=pk)
        return _detail(account_set_symbols(account_id=account.pk, symbols=serializer.validated_data.get("symbols", [])))


class AccountPauseApi(APIView):
    """Pause the account: it keeps managing its open trades to their exits but opens nothing."""

    @extend_schema(request=None, responses=AccountDetailOutputSerializer)
    def post(self, request, pk: int):
        return _detail(account_pause(account_id=get_object_or_404(PaperAccount, pk=pk).pk))


class AccountResumeApi(APIView):
    """Let a paused account open trades again."""

    @extend_schema(request=None, responses=AccountDetailOutputSerializer)
    def post(self, request, pk: int):
        return _detail(account_resume(account_id=get_object_or_404(PaperAccount, pk=pk).pk))
