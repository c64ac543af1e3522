"""Load trade outcomes from a CSV file into the learning store; bad rows are reported and skipped."""
import csv
import json
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from learning.services.outcomes import store_trade_outcomes, validate_trade_outcome
from learning.types import TradeOutcome

REQUIRED_COLUMNS = (
    "trade_id", "symbol", "strategy_type", "system_type", "side", "confidence_score", "entry_price",
    "exit_price", "pnl_pct", "net_pnl", "fees", "market_regime", "volatility_regime", "exit_reason",
    "entry_time", "exit_time",
)  # fmt: skip
BATCH_SIZE = 500


def _float_or_none(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def outcome_from_row(row: dict) -> TradeOutcome:
    """Parse one CSV row; raises ValidationError naming the column that could not be read."""
    try:
        features = json.loads(row.get("features") or "{}")
    except json.JSONDecodeError as error:
        raise ValidationError({"features": f"Not valid JSON: {error.msg}."}) from None
    values = {}
    for name, parse in (("confidence_score", float), ("ml_score", _float_or_none), ("entry_time", datetime.fromisoformat), ("exit_time", datetime.fromisoformat)):
        try:
            values[name] = parse(row.get(name) or "") if name != "ml_score" else parse(row.get(name))
        except (TypeError, ValueError):
            raise ValidationError({name: f"Cannot read {row.get(name)!r}."}) from None
    return TradeOutcome(
        trade_id=row["trade_id"],
        symbol=row["symbol"],
        strategy_type=row["strategy_type"],
        system_type=row["system_type"],
        side=row["side"],
        entry_price=row["entry_price"],
        exit_price=row["exit_price"],
        pnl_pct=row["pnl_pct"],
        net_pnl=row["net_pnl"],
        fees=row["fees"],
        market_regime=row["market_regime"],
        volatility_regime=row["volatility_regime"],
        exit_reason=row["exit_reason"],
        features=features,
        is_shadow=(row.get("is_shadow") or "").lower() in ("1", "true"),
        **values,
    )


class Command(BaseCommand):
    help = "Store trade outcomes from CSV files (columns named as TradeOutcome's fields; features as JSON)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")

    def handle(self, *args, files, **options):
        stored = duplicates = rejected = 0
        for path in files:
            try:
                handle = open(path, newline="", encoding="utf-8")
            except OSError as error:
                raise CommandError(f"{path}: {error.strerror}") from None
            with handle:
                reader = csv.DictReader(handle)
                missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
                if missing:
                    raise CommandError(f"{path}: missing columns {', '.join(missing)}")
                batch = []
                try:
                    for row in reader:
                        try:
                            outcome = outcome_from_row(row)
                            validate_trade_outcome(outcome)
                        except ValidationError as error:
                            rejected += 1
                            details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
                            self.stderr.write(f"{path}:{reader.line_num}: rejected: {details}")
                            continue
                        batch.append(outcome)
                        if len(batch) >= BATCH_SIZE:
                            result = store_trade_outcomes(outcomes=batch)
                            stored, duplicates, batch = stored + result.stored, duplicates + len(result.duplicates), []
                except (UnicodeDecodeError, csv.Error) as error:
                    raise CommandError(f"{path}:{reader.line_num}: cannot read the file: {error}") from None
                if batch:
                    result = store_trade_outcomes(outcomes=batch)
                    stored, duplicates = stored + result.stored, duplicates + len(result.duplicates)
        self.stdout.write(self.style.SUCCESS(f"Stored {stored} outcomes; {duplicates} already stored; {rejected} rejected."))
