"""`manage.py evaluate` end to end on two months of the bundled BTCUSDT candles, both engines."""
import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.operations.evaluation.conftest import BUNDLED_CANDLES

pytestmark = pytest.mark.slow

HTML_SECTIONS = (
    "targets", "performance", "equity", "per-symbol", "per-quarter", "calibration", "reliability",
    "meta-labelling", "selection", "learning-curve", "transfer", "definitions",
)


def test_evaluate_writes_json_and_html_with_every_section_and_prints_the_summary(tmp_path):
    out = StringIO()
    call_command(
        "evaluate",
        candles_dir=str(BUNDLED_CANDLES),
        symbols="BTCUSDT",
        timeframe="1h",
        start="2022-03-01",
        end="2022-04-30",
        engines="paper,scraping",
        out=str(tmp_path),
        jobs=2,
        stdout=out,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report) == {"window", "runs", "systems", "equity", "learning_curve", "targets", "transfer"}
    # Transfer is off by default, so the comparison switches it on.
    assert list(report["runs"]) == ["baseline", "learning", "transfer_on"]
    assert report["runs"]["transfer_on"]["settings"]["LEARNING_TRANSFER_WEIGHT"] == 0.5
    assert report["runs"]["learning"]["settings"]["LEARNING_TRANSFER_WEIGHT"] == 0.0
    assert set(report["transfer"]["paper_trading"]) == {"learning", "transfer_on"}
    for run, systems in report["systems"].items():
        assert list(systems) == ["paper_trading", "profit_scraping", "all"]
        for figures in systems.values():
            assert list(figures["by_symbol"]) == ["BTCUSDT"] and list(figures["by_quarter"]) == ["2022Q1", "2022Q2"]
            assert {"trades", "win_rate", "profit_factor", "net_pnl_pct", "max_drawdown", "sharpe_daily", "exposure"} <= set(figures["overall"])
        learned = systems["all"]["overall"]
        assert ("expected_win_rate" in learned) is (run != "baseline")
    learning = report["systems"]["learning"]["all"]["overall"]
    assert learning["expected_win_rate"]["n"] > 100 and len(learning["expected_win_rate"]["reliability"]) == 10
    assert learning["meta_labelling"]["skipped"] > 0
    assert [row["quarter"] for row in report["learning_curve"]] == ["2022Q1", "2022Q2"]
    assert [target["name"] for target in report["targets"]] == [
        "paper_auc", "paper_skill", "paper_precision", "paper_pnl", "scraping_pnl", "profit", "profit_every_symbol", "calibration", "learning_curve",
    ]  # fmt: skip
    paper = report["systems"]["learning"]["paper_trading"]["overall"]["selection"]
    assert paper["signals"] > 50 and 0 < paper["auc"] < 1 and paper["precision_lift_se"] > 0
    # Two months are too few for the calibration target: the report must say it was missed and why.
    calibration = next(target for target in report["targets"] if target["name"] == "calibration")
    assert not calibration["met"] and "needs 300" in calibration["detail"]

    html = (tmp_path / "report.html").read_text()
    for section in HTML_SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("<svg") >= 4  # equity, learning curve, a reliability diagram per learning run
    assert "MISSED" in html

    printed = out.getvalue()
    for heading in ("Performance, whole window", "Calibration against realised outcomes", "Take/skip as meta-labelling",
                    "Selection: taken against all signals", "Learning curve", "Transfer:", "Targets: does learning help?"):
        assert heading in printed
    assert re.search(r"\[MISSED\] all: ECE of expected_win_rate .*only \d+ signals with an outcome", printed)
    assert "issue" not in printed.lower() and "issue" not in html.lower()


def test_evaluate_refuses_a_symbol_without_candles(tmp_path):
    with pytest.raises(CommandError, match="no candle file for DOGEUSDT-1h"):
        call_command("evaluate", candles_dir=str(BUNDLED_CANDLES), symbols="DOGEUSDT", start="2022-03-01", end="2022-03-31", out=str(tmp_path))
