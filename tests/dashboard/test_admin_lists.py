"""Admin lists and pages: real trades by default with shadow ones a click away, numbers to their precision,
model metrics as a table, and a decision's reasoning from the same source as the dashboard."""
import re
from decimal import Decimal

import pytest

from learning.models import ModelVersion, TrainingRecord
from tradelearn.admin_display import metrics_table, percent, plain, score
from trading.models import PaperTrade, SignalDecision

pytestmark = pytest.mark.django_db


def result_list(html: str) -> str:
    start = html.index('<table id="result_list">')
    return html[start : html.index("</table>", start)]


def ids_listed(html: str, model: str) -> set[int]:
    return {int(found) for found in re.findall(rf'href="/admin/{model}/(\d+)/change/', html)}


def test_shadow_trades_are_hidden_until_one_click_shows_them(dashboard_data, admin_client):
    shadow = set(PaperTrade.objects.filter(is_shadow=True).values_list("pk", flat=True))
    assert shadow
    default = admin_client.get("/admin/trading/papertrade/").content.decode()
    assert not ids_listed(default, "trading/papertrade") & shadow
    assert '<a href="?trades=shadow">Shadow trades</a>' in default
    shown = admin_client.get("/admin/trading/papertrade/", {"trades": "shadow"}).content.decode()
    assert ids_listed(shown, "trading/papertrade") and ids_listed(shown, "trading/papertrade") <= shadow
    records = admin_client.get("/admin/learning/trainingrecord/").content.decode()
    assert f"{TrainingRecord.objects.filter(is_shadow=False).count()} results" in records


def test_numbers_are_shown_to_their_precision(dashboard_data, admin_client):
    assert plain(Decimal("2284.2630560000")) == "2,284.263056" and plain(Decimal("0E-10")) == "0"
    assert score(0.5727182562961404) == "0.573" and percent(Decimal("-0.0143")) == "-1.43%"
    html = admin_client.get("/admin/trading/papertrade/").content.decode()
    trade = PaperTrade.objects.filter(is_shadow=False, status="closed").order_by("-pk").first()
    row = html[html.index(f'href="/admin/trading/papertrade/{trade.pk}/change/"') :]
    row = row[: row.index("</tr>")]
    assert f">{plain(trade.entry_price)}<" in row and f">{trade.net_pnl:,.2f}<" in row
    assert not re.search(r"\d\.\d{11,}", result_list(html)), "a price padded or a float shown to 16 digits"
    records = admin_client.get("/admin/learning/trainingrecord/", {"trades": "all"}).content.decode()
    assert not re.search(r"\d\.\d{4,}", result_list(records))  # scores to 3 decimals, money to the cent


def test_model_metrics_are_a_table(dashboard_data, admin_client):
    for version in ModelVersion.objects.filter(active=True):
        html = admin_client.get(f"/admin/learning/modelversion/{version.pk}/change/").content.decode()
        assert '<table class="metrics">' in html
        assert "&quot;log_loss&quot;" not in html and '"log_loss"' not in html, html[html.find("log_loss") - 200 : html.find("log_loss") + 50]
    # An online version's metrics as stored: one set per learner and the ensemble's.
    table = metrics_table({"sgd": {"n": 500, "log_loss": 0.7120913057175837}, "ensemble": {"n": 500, "log_loss": 0.699099048509217}})
    assert "<th>sgd</th>" in table and "<th>ensemble</th>" in table and "<th>log loss</th>" in table
    assert '<td style="text-align:right">0.6991</td>' in table and "0.699099" not in table
    assert "<th>model</th>" in metrics_table({"log_loss": 0.7225346184609475, "n": 40})


def test_a_decision_shows_the_reasoning_the_dashboard_shows(dashboard_data, admin_client):
    decision = SignalDecision.objects.filter(trade__is_shadow=False, reason="").first()
    reasoning = decision.recommendation["reasoning"]
    trade_page = admin_client.get(f"/admin/trading/papertrade/{decision.trade.pk}/change/").content.decode()
    assert reasoning in trade_page and "no reason recorded" not in trade_page
    listed = admin_client.get("/admin/trading/signaldecision/").content.decode()
    assert "baseline: technical signals only" in listed


def test_a_refused_decision_says_why_in_one_line_and_in_full_on_its_page(dashboard_data, admin_client):
    refused = SignalDecision.objects.filter(taken=True, trade__is_shadow=True).first()
    listed = admin_client.get("/admin/trading/signaldecision/", {"taken__exact": "1"}).content.decode()
    assert refused.reason in listed  # the list's one line: why it was not opened
    page = admin_client.get(f"/admin/trading/signaldecision/{refused.pk}/change/").content.decode()
    assert refused.recommendation["reasoning"] in page and refused.reason in page
