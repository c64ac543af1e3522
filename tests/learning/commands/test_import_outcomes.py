"""import_outcomes: good rows load, bad rows are reported with their line and skipped."""
import csv
import io
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from learning.models import TrainingRecord

pytestmark = pytest.mark.django_db
DEMO = Path(__file__).resolve().parents[3] / "data" / "demo" / "outcomes.csv"


def test_demo_file_loads_once(tmp_path):
    out = io.StringIO()
    call_command("import_outcomes", str(DEMO), stdout=out)
    rows = sum(1 for _ in open(DEMO)) - 1
    assert TrainingRecord.objects.count() == rows
    call_command("import_outcomes", str(DEMO), stdout=out)
    assert TrainingRecord.objects.count() == rows
    assert f"Stored 0 outcomes; {rows} already stored; 0 rejected." in out.getvalue()


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    lines = list(csv.DictReader(open(DEMO)))[:5]
    lines[1]["entry_price"] = "0"
    lines[3]["exit_time"] = "yesterday"
    lines[4]["features"] = "{not json"
    path = tmp_path / "outcomes.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_outcomes", str(path), stdout=out, stderr=err)
    assert TrainingRecord.objects.count() == 2
    messages = err.getvalue()
    assert "outcomes.csv:3: rejected: entry_price" in messages
    assert "outcomes.csv:5: rejected: exit_time" in messages
    assert "outcomes.csv:6: rejected: features" in messages
    assert "Stored 2 outcomes; 0 already stored; 3 rejected." in out.getvalue()


def test_missing_columns_and_unreadable_files_are_clear_errors(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("trade_id,symbol\nx,BTCUSDT\n")
    with pytest.raises(CommandError, match="missing columns .*strategy_type"):
        call_command("import_outcomes", str(path))
    binary = tmp_path / "binary.csv"
    shutil.copy(DEMO, binary)
    with binary.open("ab") as handle:
        handle.write(b"\xff\xfe\xfa garbage\n")
    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("import_outcomes", str(binary), stderr=io.StringIO())
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_outcomes", str(tmp_path / "absent.csv"))
