"""The evaluation report's words: its own targets, and no row of n/a for a quarter without trades."""
from operations.evaluation.report import breakdown_table, learning_curve_table, targets_text

EMPTY = {"trades": 0, "win_rate": None, "profit_factor": None, "net_pnl_pct": 0.0, "max_drawdown": 0.0, "sharpe_daily": None, "exposure": 0.0, "losing": 0}
TRADED = {"trades": 12, "win_rate": 0.5, "profit_factor": 1.2, "net_pnl_pct": 0.01, "max_drawdown": 0.02, "sharpe_daily": 0.3, "exposure": 0.4, "losing": 6}
LEARNED = {"ece": 0.03, "brier_skill_hybrid": 0.001, "precision": 0.5, "base_rate": 0.45}


def test_a_quarter_without_trades_is_not_a_row():
    report = {
        "systems": {"baseline": {"all": {"by_quarter": {"2023Q1": TRADED, "2023Q2": EMPTY}}},
                    "learning": {"all": {"by_quarter": {"2023Q1": TRADED, "2023Q2": EMPTY}}}},
        "learning_curve": [
            {"quarter": "2023Q1", "baseline": TRADED, "learning": {**TRADED, **LEARNED}},
            {"quarter": "2023Q2", "baseline": EMPTY, "learning": {**EMPTY, "ece": None, "brier_skill_hybrid": None, "precision": None, "base_rate": None}},
        ],
    }  # fmt: skip
    curve = learning_curve_table(report)
    assert [row[0] for row in curve.rows] == ["2023Q1"]
    quarters = breakdown_table(report, "by_quarter")
    assert {row[2] for row in quarters.rows} == {"2023Q1"} and "n/a" not in quarters.text()


def test_a_run_without_trades_in_a_quarter_says_so():
    report = {"systems": {"baseline": {}, "learning": {}}, "learning_curve": [{"quarter": "2023Q1", "baseline": TRADED, "learning": {**EMPTY, **LEARNED}}]}
    assert learning_curve_table(report).rows[0][:3] == ("2023Q1", "1.20", "no trades")


def test_the_targets_are_named_as_the_reports_own():
    targets = [
        {"name": "paper_skill", "scope": "paper_trading", "target": "Brier skill of the hybrid probability ≥ 0", "met": True, "detail": "+0.0028"},
        {"name": "profit", "scope": "all", "target": "learning profit factor ≥ baseline's + 0.10", "met": False, "detail": "0.98 vs 0.87"},
    ]
    text = targets_text({"targets": targets})
    assert text.startswith("Targets: does learning help?")
    assert "[MET] paper_trading: Brier skill" in text and "[MISSED] all: learning profit factor" in text
    assert "issue" not in text.lower()
