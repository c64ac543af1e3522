"""Print what the learning store has learned so far."""
import json

from django.core.management.base import BaseCommand

from learning.selectors import get_learning_summary


class Command(BaseCommand):
    help = "Print the learning summary (per system, cross-system, best strategies, top features)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the whole summary as JSON.")

    def handle(self, *args, **options):
        summary = get_learning_summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2, default=str))
            return
        self.stdout.write(f"Training records: {summary['total_records']}")
        for system, figures in summary["systems"].items():
            recent = figures["recent_30_days"]
            self.stdout.write(
                f"  {system:16} trades {figures['trades']:6}  win rate {figures['win_rate']:6.1%}"
                f"  shadow {figures['shadow']:5}  net P&L {float(figures['net_pnl']):12.2f}"
                f"  | last 30 days: {recent['trades']} trades, {recent['win_rate']:.1%}"
            )
        cross = summary["cross_system"]
        fmt = lambda value: "n/a" if value is None else f"{value:+.3f}"  # noqa: E731
        self.stdout.write(
            f"Cross-system: win-rate gap {fmt(cross['win_rate_gap'])}, regime win-rate correlation "
            f"{fmt(cross['regime_win_rate_correlation'])} over {cross['shared_regimes']} shared regimes, transfer "
            f"paper→scraping {fmt(cross['transfer_effectiveness']['paper_to_scraping'])}, "
            f"scraping→paper {fmt(cross['transfer_effectiveness']['scraping_to_paper'])}"
        )
        self.stdout.write(f"Calibration gap (trade-weighted |actual − predicted|): {fmt(summary['calibration_gap'])}")
        for row in summary["best_strategy_by_regime"]:
            rate = row["best_strategy_win_rate"]
            self.stdout.write(
                f"  {row['market_regime']:>13}/{row['volatility_regime']:<6} best {row['best_strategy'] or '-':22}"
                f" {'' if rate is None else f'{rate:.1%}'} over {row['trades']} trades"
            )
        for feature in summary["top_features"][:5]:
            self.stdout.write(
                f"  feature {feature['feature_name']:18} ({feature['strategy_type']}) importance "
                f"{feature['importance_score']:.3f}, correlation {feature['correlation_with_success']:+.3f}"
            )
