"""Dashboard page render time on PostgreSQL with 100,000 training records and 100,000 trades (and their decisions) stored."""
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ROOT, percentiles_ms, postgres_url, setup_django, timed  # noqa: E402

RECORDS = 100_000
TRADES = 100_000
OPEN_TRADES = 6
MODEL_VERSIONS = 40
REQUESTS = 20
BATCH = 5_000
START = datetime(2022, 1, 15, tzinfo=UTC)
SPAN_HOURS = 2 * 365 * 24
FEATURES = ("rsi_14", "atr_pct", "roc_4", "adx_14", "volume_ratio")
REGIMES = ("trending_up", "trending_down", "ranging")
VOLATILITIES = ("low", "medium", "high")
STRATEGIES = ("trend_momentum", "level_bounce")


def _outcome(rng: random.Random, entry_time: datetime) -> dict:
    """One closed long or short whose money adds up: net P&L = gross − fees on both sides."""
    entry = Decimal(rng.randint(15_000, 60_000))
    move = Decimal(rng.randint(-300, 300)) / 10_000
    exit_price = (entry * (1 + move)).quantize(Decimal("0.01"))
    side = rng.choice(("long", "short"))
    fees = (Decimal("0.0004") * 1000 * (1 + exit_price / entry)).quantize(Decimal("1e-8"))
    net = ((1 if side == "long" else -1) * 1000 * (exit_price / entry - 1) - fees).quantize(Decimal("1e-8"))
    return {
        "symbol": rng.choice(("BTCUSDT", "ETHUSDT")), "side": side, "entry_price": entry, "exit_price": exit_price,
        "fees": fees, "net_pnl": net, "pnl_pct": (net / 1000).quantize(Decimal("1e-10")),
        "market_regime": rng.choice(REGIMES), "volatility_regime": rng.choice(VOLATILITIES),
        "exit_reason": rng.choice(("take_profit", "stop_loss", "time_exit")),
        "entry_time": entry_time, "exit_time": entry_time + timedelta(hours=rng.randint(1, 48)),
        "features": {name: rng.random() for name in FEATURES},
    }  # fmt: skip


def store_history(rng: random.Random) -> None:
    """Bulk-create the records, accounts, decisions, trades, candles and model versions the dashboard reads."""
    from django.conf import settings

    from learning.models import ModelVersion, TrainingRecord
    from learning.services import aggregates_rebuild
    from trading.models import PaperTrade, SignalDecision
    from trading.services.accounts import account_create
    from trading.services.candles import candles_import
    from trading.services.summaries import account_summaries_rebuild

    records = []
    for number in range(RECORDS):
        facts = _outcome(rng, START + timedelta(hours=rng.randrange(SPAN_HOURS)))
        system = rng.choice(("paper_trading", "profit_scraping"))
        records.append(TrainingRecord(
            trade_id=f"bench-{number}", strategy_type=rng.choice(STRATEGIES),
            system_type=system, is_shadow=rng.random() < 0.4, confidence_score=rng.random(), ml_score=rng.random(),
            duration_minutes=int((facts["exit_time"] - facts["entry_time"]).total_seconds() // 60),
            success=facts["net_pnl"] > 0, **facts,
        ))  # fmt: skip
    TrainingRecord.objects.bulk_create(records, batch_size=BATCH)
    aggregates_rebuild()

    accounts = [
        account_create(name=f"bench-{system}", system_type=system, starting_balance=Decimal(10_000))
        for system in ("paper_trading", "profit_scraping")
    ]
    # A decision per account, symbol and strategy on sampled hours, a trade for each (the decision key stays unique).
    moments = sorted(START + timedelta(hours=hour) for hour in rng.sample(range(SPAN_HOURS), TRADES // len(STRATEGIES) // 4))
    decisions = [
        SignalDecision(
            account=account, symbol=symbol, timeframe="1h", candle_time=moment, strategy_type=strategy,
            side=rng.choice(("long", "short")), technical_score=rng.random(), model_probability=rng.random(),
            combined_confidence=rng.random(), recommendation={"reasoning": "benchmark"}, market_regime=rng.choice(REGIMES),
            volatility_regime=rng.choice(VOLATILITIES), taken=rng.random() < 0.6,
        )
        for moment in moments for account in accounts for symbol in ("BTCUSDT", "ETHUSDT") for strategy in STRATEGIES
    ]  # fmt: skip
    SignalDecision.objects.bulk_create(decisions, batch_size=BATCH)
    trades = []
    for index, decision in enumerate(decisions):
        facts = _outcome(rng, decision.candle_time + timedelta(hours=1))
        is_open = index >= len(decisions) - OPEN_TRADES
        trades.append(PaperTrade(
            account=decision.account, decision=decision, is_shadow=not decision.taken, symbol=decision.symbol,
            timeframe="1h", side=facts["side"], status="open" if is_open else "closed", strategy_type=decision.strategy_type,
            entry_time=facts["entry_time"], entry_price=facts["entry_price"], quantity=Decimal("0.02"),
            notional=Decimal(1000), max_holding_minutes=2880, signal_confidence=decision.combined_confidence,
            market_regime=decision.market_regime, volatility_regime=decision.volatility_regime,
            **({} if is_open else {key: facts[key] for key in ("exit_time", "exit_price", "net_pnl", "pnl_pct", "fees", "exit_reason")}),
        ))  # fmt: skip
    PaperTrade.objects.bulk_create(trades, batch_size=BATCH)
    account_summaries_rebuild()  # bulk_create bypasses the books that keep the per-account summaries

    for path in sorted((ROOT / "data" / "candles").glob("*.csv")):
        candles_import(path=path, exchange=settings.TRADING_EXCHANGE)
    ModelVersion.objects.bulk_create(
        ModelVersion(
            kind=kind, sequence=sequence, version=f"{kind}-{sequence:04d}", artifact=b"", sha256="0" * 64,
            sklearn_version="bench", feature_schema={"version": 1, "names": list(FEATURES)}, samples_seen=sequence * 500,
            metrics={"n": 500, "log_loss": 0.69 - sequence / 1000, "brier": 0.25, "accuracy": 0.55, "roc_auc": 0.56, "ece": 0.03},
            active=sequence == MODEL_VERSIONS // 2,
        )
        for kind in ("batch", "online") for sequence in range(1, MODEL_VERSIONS // 2 + 1)
    )  # fmt: skip


def main() -> None:
    setup_django(postgres_url("tradelearn_bench_dashboard"))
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from learning.models import TrainingRecord
    from trading.models import PaperTrade

    with timed() as stored:
        store_history(random.Random(1))
    # The planner's statistics, as autovacuum keeps them on a database that grew over months: read
    # right after a bulk load, without them, it guesses 200 rows a table and sorts where an index serves.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"stored {TrainingRecord.objects.count():,} training records and {PaperTrade.objects.count():,} trades "
        f"(with decisions, aggregates, candles) in {stored['seconds']:.1f} s"
    )

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.create_superuser(username="bench", email="", password=None))

    def render(*, cold_charts: bool) -> tuple[float, int, int]:
        if cold_charts:
            cache.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get("/")
            seconds = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return seconds, len(queries), len(response.content)

    first, queries, size = render(cold_charts=True)
    print(f"first request (imports, fonts, charts drawn): {first * 1000:.0f} ms; {queries} queries, {size / 1024:,.0f} KiB")
    for label, cold in (("charts drawn on every request", True), ("charts from the cache", False)):
        durations = [render(cold_charts=cold)[0] for _ in range(REQUESTS)]
        p50, p99 = percentiles_ms(durations)
        print(f"dashboard page, {label} ({REQUESTS} requests): p50 {p50:.0f} ms, p99 {p99:.0f} ms")


if __name__ == "__main__":
    main()
