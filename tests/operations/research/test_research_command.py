"""`manage.py research study` prints a table per variant and system, and names a bad learner or feature group."""
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.slow


def test_study_prints_each_variant_per_system_and_appends_its_rows(dataset_path, tmp_path, capsys):
    table = tmp_path / "variants.csv"
    call_command(
        "research", "study", f"--dataset={dataset_path}", "--learners=base_rate,logistic", "--features=recent+signal",
        "--from=2022-07-01", "--to=2023-12-31", "--min-train=150", "--bootstrap=20", "--control", f"--append={table}",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "Walk-forward study, decisions 2022-07-01 to 2023-12-31" in out
    for variant in ("base_rate recent+signal per-system", "logistic recent+signal per-system shuffled(1)"):
        assert variant in out
    rows = pd.read_csv(table)
    assert len(rows) == 4 * 3  # two learners, each with its shuffled control, per system and over all
    logistic = rows[rows["variant"] == "logistic recent+signal per-system"].set_index("system")
    assert logistic.loc["all", "signals"] == logistic.loc["paper_trading", "signals"] + logistic.loc["profit_scraping", "signals"]
    assert logistic["auc"].between(0, 1).all() and (logistic["auc_se"] > 0).all()


@pytest.mark.parametrize("option", ["--learners=forest9000", "--features=recent+astrology"])
def test_study_names_an_unknown_learner_or_feature_group(dataset_path, option):
    with pytest.raises(CommandError, match="forest9000|astrology"):
        call_command("research", "study", f"--dataset={dataset_path}", option, "--from=2022-07-01", "--to=2022-12-31")


def test_study_refuses_a_file_that_is_not_a_signal_dataset(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match="not a signal dataset"):
        call_command("research", "study", f"--dataset={path}", "--from=2022-07-01", "--to=2022-12-31")
