"""Per-account summaries the dashboard reads instead of grouping every trade and decision: kept as rows are written, rebuilt from them."""
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal

from django.apps import apps as installed_apps
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from tradelearn.bulk import bulk_update_rows
from trading.models import AccountDay, AccountDecisionCounts, PaperTrade, SignalDecision

CLOSED_REAL = Q(is_shadow=False, status=PaperTrade.Status.CLOSED)
_COUNTS = ("signals", "taken", "opened", "refused")


def _decision_counts(decisions: Iterable[SignalDecision], trades: Iterable[PaperTrade]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
    for decision in decisions:
        counts[decision.account_id]["signals"] += 1
        counts[decision.account_id]["taken"] += decision.taken
    for trade in trades:
        if trade.decision_id is not None and trade.decision.taken:
            counts[trade.account_id]["refused" if trade.is_shadow else "opened"] += 1
    return counts


def _closed_days(trades: Iterable[PaperTrade]) -> dict[tuple[int, object], tuple[int, int, Decimal]]:
    days: dict[tuple[int, object], tuple[int, int, Decimal]] = {}
    for trade in trades:
        if trade.is_shadow or trade.status != PaperTrade.Status.CLOSED:
            continue
        key = (trade.account_id, trade.exit_time.astimezone(UTC).date())
        closed, wins, pnl = days.get(key, (0, 0, Decimal(0)))
        days[key] = (closed + 1, wins + (trade.net_pnl > 0), pnl + trade.net_pnl)
    return days


def _add(model, key_fields: tuple[str, ...], additions: dict[tuple, dict[str, int | Decimal]]) -> None:
    """Add `additions` (per key, per field) to the summary rows of those keys, creating the missing ones at zero.

    Three queries however many keys (a replay's write spans many days): rows created if missing
    (ignoring a concurrent creator's), locked in key order, added to and written back.
    """
    if not additions:
        return
    model.objects.bulk_create([model(**dict(zip(key_fields, key))) for key in additions], ignore_conflicts=True)
    matching = Q()
    for key in additions:
        matching |= Q(**dict(zip(key_fields, key)))
    rows = list(model.objects.select_for_update().filter(matching).order_by("pk"))
    for row in rows:
        for name, value in additions[tuple(getattr(row, field) for field in key_fields)].items():
            setattr(row, name, getattr(row, name) + value)
    bulk_update_rows(model, rows, list(next(iter(additions.values()))))


@transaction.atomic
def account_summaries_add(
    *, decisions: Iterable[SignalDecision] = (), opened_trades: Iterable[PaperTrade] = (), closed_trades: Iterable[PaperTrade] = ()
) -> None:
    """Count newly written decisions, trades opened on a decision, and trades closed (real ones count in their exit day)."""
    counts = _decision_counts(decisions, opened_trades)
    _add(AccountDecisionCounts, ("account_id",), {(account_id,): tally for account_id, tally in counts.items()})
    days = _closed_days(closed_trades)
    _add(AccountDay, ("account_id", "day"), {
        key: {"closed_trades": closed, "winning_trades": wins, "net_pnl": pnl} for key, (closed, wins, pnl) in days.items()
    })  # fmt: skip


@transaction.atomic
def account_summaries_rebuild(*, apps=installed_apps) -> None:
    """Both summaries recomputed from every trade and decision (after a bulk load, or to check the incremental ones).

    `apps` is a migration's historical registry when the migration that adds the summaries fills them.
    """
    AccountDay, AccountDecisionCounts = apps.get_model("trading", "AccountDay"), apps.get_model("trading", "AccountDecisionCounts")
    PaperTrade, SignalDecision = apps.get_model("trading", "PaperTrade"), apps.get_model("trading", "SignalDecision")
    AccountDay.objects.all().delete()
    AccountDecisionCounts.objects.all().delete()
    days = (
        PaperTrade.objects.filter(CLOSED_REAL)
        .annotate(day=TruncDate("exit_time", tzinfo=UTC))
        .values("account_id", "day")
        .annotate(closed_trades=Count("id"), winning_trades=Count("id", filter=Q(net_pnl__gt=0)), net_pnl=Sum("net_pnl"))
        .order_by("account_id", "day")
    )
    AccountDay.objects.bulk_create(AccountDay(**row) for row in days)
    taken = Q(taken=True)
    counts = (
        SignalDecision.objects.values("account_id")
        .annotate(
            signals=Count("id"),
            taken_count=Count("id", filter=taken),
            opened=Count("id", filter=taken & Q(trade__is_shadow=False)),
            refused=Count("id", filter=taken & Q(trade__is_shadow=True)),
        )
        .order_by("account_id")
    )
    AccountDecisionCounts.objects.bulk_create(
        AccountDecisionCounts(account_id=row["account_id"], signals=row["signals"], taken=row["taken_count"], opened=row["opened"], refused=row["refused"])
        for row in counts
    )
