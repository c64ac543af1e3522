"""What one evaluation run leaves in its database, as plain JSON-ready rows for the parent to score."""
from django.conf import settings
from django.db.models import Count, Q, Sum

from learning.models import TrainingRecord
from trading.models import PaperAccount, PaperTrade, SignalDecision

# Settings that shape a run's decisions, recorded with its rows so a report says what it measured.
RECORDED_SETTINGS = (
    "LEARNING_PRIOR_STRENGTH",
    "LEARNING_TRANSFER_WEIGHT",
    "LEARNING_KELLY_FRACTION",
    "LEARNING_MIN_POSITION_SIZE",
    "LEARNING_MAX_POSITION_SIZE",
    "LEARNING_MIN_EXPECTED_PNL_PCT",
    "LEARNING_BATCH_MODEL_KIND",
    "LEARNING_HYBRID_BATCH_WEIGHT",
    "LEARNING_HYBRID_ONLINE_WEIGHT",
    "LEARNING_HYBRID_WEIGHTING",
    "TRADING_SIGNAL_THRESHOLD",
    "TRADING_CONFIDENCE_SPAN",
    "TRADING_MODEL_WEIGHT",
    "TRADING_STOP_ATR_MULTIPLE",
    "TRADING_TARGET_ATR_MULTIPLE",
    "TRADING_BASELINE_POSITION_SIZE",
    "REPLAY_ONLINE_UPDATE_EVERY",
    "REPLAY_RETRAIN_EVERY",
)


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def _float(value) -> float | None:
    return None if value is None else float(value)


def run_export() -> dict:
    """Accounts, every decision (with the recommendation's expected win rate) and every closed trade, real or shadow."""
    accounts = {account.pk: account for account in PaperAccount.objects.order_by("pk")}
    decisions = [
        {
            "id": decision.pk,
            "system": accounts[decision.account_id].system_type,
            "symbol": decision.symbol,
            "candle_time": _iso(decision.candle_time),
            "side": decision.side,
            "taken": decision.taken,
            "technical_score": decision.technical_score,
            "combined_confidence": decision.combined_confidence,
            "model_probability": decision.model_probability,
            "expected_win_rate": decision.recommendation.get("expected_win_rate"),
            "position_size": decision.recommendation.get("plan", {}).get("size"),
            "features": decision.features,
            "reason": decision.reason,
        }
        for decision in SignalDecision.objects.order_by("candle_time", "pk")
    ]
    trades = [
        {
            "id": trade.pk,
            "decision_id": trade.decision_id,
            "system": accounts[trade.account_id].system_type,
            "symbol": trade.symbol,
            "side": trade.side,
            "is_shadow": trade.is_shadow,
            "entry_time": _iso(trade.entry_time),
            "exit_time": _iso(trade.exit_time),
            "notional": float(trade.notional),
            "net_pnl": float(trade.net_pnl),
            "pnl_pct": float(trade.pnl_pct),
            "exit_reason": trade.exit_reason,
        }
        for trade in PaperTrade.objects.filter(status=PaperTrade.Status.CLOSED).order_by("exit_time", "pk")
    ]
    return {
        "settings": {name: getattr(settings, name) for name in RECORDED_SETTINGS},
        "accounts": [
            {
                "name": account.name,
                "system": account.system_type,
                "starting_balance": float(account.starting_balance),
                "final_balance": float(account.current_balance),
            }
            for account in accounts.values()
        ],
        "decisions": decisions,
        "trades": trades,
        "open_trades": PaperTrade.objects.filter(status=PaperTrade.Status.OPEN).count(),
        # What learning was told, to check against the trades (they differ only with shuffled labels).
        "learning_store": {
            key: float(value or 0)
            for key, value in TrainingRecord.objects.aggregate(
                records=Count("pk"), wins=Count("pk", filter=Q(success=True)), net_pnl=Sum("net_pnl")
            ).items()
        },
    }
