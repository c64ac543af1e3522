"""Dashboard and Audit pages: login required, every section and chart rendered, numbers as stored, queries bounded."""
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dashboard.templatetags.dashboard_format import money, rate
from learning.models import TrainingRecord
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_figures

pytestmark = pytest.mark.django_db
SECTIONS = ("learning", "calibration", "equity", "open-trades", "decisions", "models", "regimes", "features")
CHARTS = ("learning", "calibration", "equity", "models", "regimes", "features")


def row_cells(html: str, marker: str) -> list[str]:
    """The text of each cell of the table row that starts with `marker`."""
    row = html[html.index(marker) :]
    row = row[: row.index("</tr>")]
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_anonymous_visitors_are_sent_to_the_login(client):
    for name in ("dashboard:index", "dashboard:audit"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_empty_database_renders_every_section_without_charts(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="viewer", password="x"))
    html = client.get(reverse("dashboard:index")).content.decode()
    assert all(f'id="{section}"' in html for section in SECTIONS)
    assert "<svg" not in html and "No outcomes yet." in html and "No paper accounts yet." in html


def test_dashboard_shows_every_section_chart_and_the_stored_figures(dashboard_data, admin_client):
    response = admin_client.get(reverse("dashboard:index"))
    assert response.status_code == 200
    html = response.content.decode()
    for section in SECTIONS:
        assert f'<section class="panel" id="{section}">' in html
    for chart in CHARTS:
        figure = html[html.index(f'data-chart="{chart}"') :]
        assert figure.index("<svg") < figure.index("</figure>")
    assert html.count("<svg") == len(CHARTS)

    for account in PaperAccount.objects.all():
        figures = account_figures(account=account)
        cells = row_cells(html, f'<tr data-account="{account.name}">')
        assert cells[2:7] == [
            money(account.starting_balance), money(account.current_balance), money(figures.realised_pnl),
            money(figures.unrealised_pnl), money(figures.equity),
        ]  # fmt: skip
        assert cells[7:9] == [str(figures.closed_trades), rate(figures.win_rate)]
    for system in ("paper_trading", "profit_scraping"):
        records = TrainingRecord.objects.filter(system_type=system)
        wins = records.filter(success=True).count()
        assert row_cells(html, f'<tr data-system="{system}">')[1:] == [
            str(records.count()), str(records.filter(is_shadow=True).count()), str(wins), rate(wins / records.count()),
        ]  # fmt: skip
    assert f'<strong id="decisions-taken">{SignalDecision.objects.filter(taken=True).count()}</strong>' in html
    for trade in PaperTrade.objects.filter(status="open"):
        assert f"#{trade.pk}</a>" in html


def test_audit_links_the_learning_tables_trades_decisions_levels_models_and_schedules(admin_client):
    html = admin_client.get(reverse("dashboard:audit")).content.decode()
    for changelist in (
        "learning_trainingrecord", "learning_strategyperformance", "learning_signalquality", "learning_marketregimestats",
        "learning_positionsizing", "learning_featureimportance", "learning_modelversion", "trading_papertrade",
        "trading_signaldecision", "scraping_pricelevel", "django_celery_beat_periodictask",
    ):  # fmt: skip
        assert f'href="{reverse(f"admin:{changelist}_changelist")}"' in html


def _clone_history(copies: int) -> None:
    """Store every trade, decision and training record `copies` more times (with fresh keys)."""
    trades, decisions, records = list(PaperTrade.objects.all()), list(SignalDecision.objects.all()), list(TrainingRecord.objects.all())
    for copy in range(copies):
        for trade in trades:
            trade.pk, trade.decision = None, None
        PaperTrade.objects.bulk_create(trades)
        for decision in decisions:
            decision.pk, decision.strategy_type = None, f"copy{copy}-{decision.strategy_type}"[:64]
        SignalDecision.objects.bulk_create(decisions)
        for record in records:
            record.pk, record.trade_id = None, f"copy{copy}/{record.trade_id}"[:64]
        TrainingRecord.objects.bulk_create(records)


def test_the_number_of_queries_does_not_grow_with_the_trades_stored(dashboard_data, admin_client):
    url = reverse("dashboard:index")
    with CaptureQueriesContext(connection) as before:
        assert admin_client.get(url).status_code == 200
    trades, records = PaperTrade.objects.count(), TrainingRecord.objects.count()
    _clone_history(copies=2)
    assert PaperTrade.objects.count() == 3 * trades and TrainingRecord.objects.count() == 3 * records
    cache.clear()
    with CaptureQueriesContext(connection) as after:
        assert admin_client.get(url).status_code == 200
    # About 20 for the page, and a dozen for the health header (one per check, a query per traded symbol).
    assert len(after) == len(before) <= 34


def test_dashboard_shows_the_learners_running_skill_per_system(dashboard_data, admin_client):
    from learning.selectors import model_skill_by_system

    html = admin_client.get(reverse("dashboard:index")).content.decode()
    table = html[html.index('id="model-skill"') :]
    for system, skill in model_skill_by_system().items():
        cells = row_cells(table, f'<tr data-system="{system}">')
        assert cells[:2] == [system, str(skill.outcomes)]
        assert cells[5] == "yes" if skill.trusted else cells[5].startswith("no: the model")
