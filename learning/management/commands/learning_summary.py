"""Print what the learning store has learned so far, in the README's words (real trades, shadow trades, outcomes)."""
import json

from django.core.management.base import BaseCommand

from learning.selectors import get_learning_summary


def _signed(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:+.{digits}f}"


def _points(value: float | None) -> str:
    """A difference of two rates in percentage points: 0.118 -> 11.8 percentage points."""
    return "n/a" if value is None else f"{value * 100:+.1f} percentage points"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


class Command(BaseCommand):
    help = "Print the learning summary (per system, cross-system, best strategies, top features)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the whole summary as JSON.")

    def handle(self, *args, **options):
        summary = get_learning_summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2, default=str))
            return
        systems = summary["systems"].values()
        real, shadow = sum(figures["trades"] for figures in systems), sum(figures["shadow"] for figures in systems)
        self.stdout.write(f"Training records: {summary['total_records']} outcomes ({real} real trades, {shadow} shadow trades)")
        for system, figures in summary["systems"].items():
            recent = figures["recent_30_days"]
            won = f" ({recent['win_rate']:.1%} won)" if recent["trades"] else ""
            window = f"last {recent['days']} days to {recent['until']:%Y-%m-%d}" if recent["until"] else f"last {recent['days']} days"
            self.stdout.write(
                f"  {system:16} real trades {figures['trades']:6}  win rate {_rate(figures['win_rate'] if figures['trades'] else None):>6}"
                f"  net P&L {float(figures['net_pnl']):10.2f}  | shadow trades {figures['shadow']:6}"
                f"  win rate {_rate(figures['shadow_win_rate'] if figures['shadow'] else None):>6}"
                f"  | {window}: {recent['trades']} real{won}, {recent['shadow']} shadow"
            )
        cross = summary["cross_system"]
        transfer = cross["transfer_effectiveness"]
        self.stdout.write(
            "Cross-system (learned statistics: real and shadow outcomes):\n"
            f"  win rate paper_trading − profit_scraping: {_points(cross['win_rate_gap'])}\n"
            f"  regime win-rate correlation: {_signed(cross['regime_win_rate_correlation'])}"
            f" (Pearson, −1..+1, over the {cross['shared_regimes']} regimes both systems traded)\n"
            f"  transfer skill paper→scraping {_signed(transfer['paper_to_scraping'])},"
            f" scraping→paper {_signed(transfer['scraping_to_paper'])}"
            " (1 − squared error of one system's regime win rates as a forecast of the other's, over that of"
            " the other's own mean; above 0 the history transfers, below 0 it misleads)"
        )
        self.stdout.write(
            f"Calibration gap: {_points(summary['calibration_gap']).removeprefix('+')}"
            " (trade-weighted mean |realised − promised win rate| over the signal-confidence buckets)"
        )
        self.stdout.write("Best strategy per market/volatility regime (win rate over its outcomes):")
        for row in summary["best_strategy_by_regime"]:
            rate = row["best_strategy_win_rate"]
            self.stdout.write(
                f"  {row['market_regime']:>13}/{row['volatility_regime']:<6} best {row['best_strategy'] or '-':22}"
                f" {'' if rate is None else f'{rate:.1%}'} over {row['trades']} outcomes"
            )
        self.stdout.write("Top features (importance: |correlation| shrunk by sample size; correlation with success: point-biserial, −1..+1):")
        for feature in summary["top_features"][:5]:
            self.stdout.write(
                f"  {feature['feature_name']:18} ({feature['strategy_type']}) importance "
                f"{feature['importance_score']:.3f}, correlation {feature['correlation_with_success']:+.3f}"
            )
