"""Print a fingerprint of a BTC+ETH 2022 replay of both engines: refactors must leave it unchanged.

Usage: .venv/bin/python scripts/replay_fingerprint.py [--keep DB_PATH]
Replays into a fresh SQLite file with the shared (or bundled) candles, then hashes every trade,
decision, training record and model version (timestamps of when rows were written excluded).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", help="SQLite file to write (default: a temporary one)")
    parser.add_argument("--candles-dir", default=str(ROOT.parent / "shared" / "data" / "candles"))
    args = parser.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fingerprint-")) / "replay.sqlite3"
    if path.exists():
        path.unlink()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "DJANGO_SETTINGS_MODULE": "tradelearn.settings.local"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [python, "manage.py", "replay", "--engines", "paper,scraping", "--symbols", "BTCUSDT,ETHUSDT",
         "--from", "2022-01-01", "--to", "2022-12-31", "--candles-dir", args.candles_dir, "--no-progress"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.apps import apps

    def rows(model_label, fields):
        model = apps.get_model(model_label)
        return [tuple(str(value) for value in row) for row in model.objects.order_by("pk").values_list(*fields)]

    parts = {
        "trades": rows("trading.PaperTrade", ["account__name", "is_shadow", "symbol", "side", "entry_time", "entry_price",
                                              "exit_time", "exit_price", "quantity", "net_pnl", "exit_reason"]),
        "decisions": rows("trading.SignalDecision", ["account__name", "symbol", "candle_time", "side", "technical_score",
                                                     "model_probability", "combined_confidence", "taken", "reason", "features"]),
        "records": rows("learning.TrainingRecord", ["trade_id", "success", "net_pnl", "ml_score", "confidence_score"]),
        "versions": rows("learning.ModelVersion", ["kind", "sequence", "version", "active", "trained_through_record_id"]),
    }
    total = hashlib.sha256()
    for name, values in parts.items():
        digest = hashlib.sha256(repr(values).encode()).hexdigest()[:16]
        total.update(digest.encode())
        print(f"{name:10} {len(values):6d} rows  {digest}")
    print(f"fingerprint {total.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
