"""`manage.py research export|study`: the signal dataset of a baseline replay, and walk-forward studies over it."""
import itertools
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from operations.evaluation.runner import BASELINE, EvaluationError, Window, migrated_template, run_one
from operations.research.dataset import read_dataset, signal_dataset, sqlite_database, write_dataset
from operations.research.features import FEATURE_GROUPS
from operations.research.learners import LEARNERS
from operations.research.report import LEGEND, scores_table
from operations.research.study import StudyConfig, run_study


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from error


class Command(BaseCommand):
    help = "Export every signal of a baseline replay with features, plan and outcome; study learners on it walk-forward."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="replay without learning on a fresh database; write one row per signal")
        export.add_argument("--candles-dir", required=True)
        export.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
        export.add_argument("--timeframe", default="1h")
        export.add_argument("--from", dest="start", required=True)
        export.add_argument("--to", dest="end", required=True)
        export.add_argument("--engines", default="paper,scraping")
        export.add_argument("--out", required=True, help="CSV file (.csv.gz compresses)")

        study = actions.add_parser("study", help="walk-forward scores of learners x feature sets on an exported dataset")
        study.add_argument("--dataset", required=True)
        study.add_argument("--learners", default="logistic_cv", help=f"comma-separated, of: {', '.join(LEARNERS)}")
        study.add_argument(
            "--features", default="recent+signal", help=f"comma-separated feature sets, each groups joined by +, of: {', '.join(FEATURE_GROUPS)}"
        )
        study.add_argument("--from", dest="start", required=True, help="first day of decisions scored")
        study.add_argument("--to", dest="end", required=True, help="last day of decisions scored (inclusive)")
        study.add_argument("--retrain", default="MS", help="retrain boundaries, a pandas frequency (MS: monthly, W-MON: weekly)")
        study.add_argument("--embargo-hours", type=float, default=24.0)
        study.add_argument("--min-train", type=int, default=300)
        study.add_argument("--pooled", action="store_true", help="one model for both systems instead of one per system")
        study.add_argument("--unweighted", action="store_true", help="no AFML average-uniqueness sample weights")
        study.add_argument("--control", action="store_true", help="also run each variant on shuffled labels")
        study.add_argument("--bootstrap", type=int, default=200, help="weekly-block bootstrap resamples for standard errors")
        study.add_argument("--append", help="CSV file to append every scored row to (the study's table of variants)")

    def handle(self, *args, **options):
        if options["action"] == "export":
            self._export(options)
        else:
            self._study(options)

    def _export(self, options):
        window = Window(
            candles_dir=Path(options["candles_dir"]),
            symbols=tuple(symbol.strip().upper() for symbol in options["symbols"].split(",") if symbol.strip()),
            timeframe=options["timeframe"],
            start=_day(options["start"]),
            end=_day(options["end"]),
            engines=tuple(engine.strip() for engine in options["engines"].split(",") if engine.strip()),
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="research-") as workdir:
            try:
                run_one(spec=BASELINE, window=window, template=migrated_template(Path(workdir)), workdir=Path(workdir))
            except EvaluationError as error:
                raise CommandError(str(error)) from error
            with sqlite_database(Path(workdir) / f"{BASELINE.name}.sqlite3") as alias:
                frame = signal_dataset(using=alias)
        write_dataset(frame, Path(options["out"]))
        counts = frame.groupby("system")["success"].agg(["size", "mean"]) if len(frame) else pd.DataFrame()
        summary = ", ".join(f"{system} {int(row['size'])} ({row['mean']:.1%} won)" for system, row in counts.iterrows())
        self.stdout.write(f"{len(frame)} signals with an outcome ({summary}) -> {options['out']} in {time.perf_counter() - started:.0f} s")

    def _study(self, options):
        try:
            data = read_dataset(Path(options["dataset"]))
        except (OSError, ValueError) as error:
            raise CommandError(str(error)) from error
        learners = [name.strip() for name in options["learners"].split(",") if name.strip()]
        feature_sets = [tuple(group.strip() for group in text.split("+") if group.strip()) for text in options["features"].split(",")]
        unknown = [name for name in learners if name not in LEARNERS] + [g for groups in feature_sets for g in groups if g not in FEATURE_GROUPS]
        if unknown:
            raise CommandError(f"unknown learner or feature group: {', '.join(unknown)}")
        start = pd.Timestamp(_day(options["start"]), tz="UTC")
        end = pd.Timestamp(_day(options["end"]), tz="UTC") + pd.Timedelta(days=1)
        rows = []
        for learner, groups in itertools.product(learners, feature_sets):
            for shuffle_seed in (None, 1) if options["control"] else (None,):
                config = StudyConfig(
                    learner=learner,
                    groups=groups,
                    start=start,
                    end=end,
                    retrain=options["retrain"],
                    embargo=pd.Timedelta(hours=options["embargo_hours"]),
                    min_train=options["min_train"],
                    per_system=not options["pooled"],
                    uniqueness_weights=not options["unweighted"],
                    shuffle_seed=shuffle_seed,
                    bootstrap=options["bootstrap"],
                )
                started = time.perf_counter()
                result = run_study(data, config)
                scores = result.scores.reset_index(names="system")
                scores.insert(0, "variant", config.name)
                scores["window"] = f"{options['start']}..{options['end']}"
                scores["seconds"] = round(time.perf_counter() - started, 1)
                rows.append(scores)
                self.stderr.write(f"{config.name}: {scores['seconds'].iloc[0]} s")
                if options["append"]:
                    # Row by row, so a long study cut short keeps what it measured.
                    path = Path(options["append"])
                    scores.to_csv(path, mode="a", header=not path.exists(), index=False)
        table = pd.concat(rows, ignore_index=True)
        self.stdout.write(f"Walk-forward study, decisions {options['start']} to {options['end']}, retrain {options['retrain']}, "
                          f"embargo {options['embargo_hours']:g} h ({options['dataset']})")
        self.stdout.write(scores_table(table))
        self.stdout.write(LEGEND)
