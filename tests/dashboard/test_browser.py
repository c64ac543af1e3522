"""In headless Chromium: log in through the admin form, check every chart and figure on the dashboard, filter the trade list."""
import re
import tempfile
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from dashboard.templatetags.dashboard_format import money, rate
from learning.models import TrainingRecord
from tests.conftest import service_missing
from tests.dashboard.conftest import build_dashboard_data
from tests.dashboard.test_views import CHARTS, SECTIONS
from trading.models import PaperAccount, PaperTrade, SignalDecision
from trading.services.accounts import account_figures

# Debian's chromium package (make test installs it); Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "browser-test-password"


@pytest.fixture
def page(monkeypatch):
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is missing: install Debian's chromium package (make test does)")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context.set_default_timeout(20_000)
        try:
            yield context.new_page()
        finally:
            # While Playwright's loop runs, Django keeps this test's connections per async context:
            # close them here, or one stays open on the test database when the session drops it.
            connections.close_all()
            context.close()


def test_log_in_read_the_dashboard_and_filter_the_trade_list(live_server, transactional_db, page, tmp_path, django_user_model):
    build_dashboard_data(tmp_path)
    django_user_model.objects.create_superuser(username="auditor", email="", password=PASSWORD)

    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    for section in SECTIONS:
        expect(page.locator(f"section#{section} h2")).to_be_visible()
    for chart in CHARTS:
        expect(page.locator(f'figure[data-chart="{chart}"] > svg')).to_have_count(1)
        assert page.locator(f'figure[data-chart="{chart}"] > svg').bounding_box()["height"] > 100

    for account in PaperAccount.objects.all():
        figures = account_figures(account=account)
        cells = page.locator(f'#accounts tr[data-account="{account.name}"] td').all_inner_texts()
        assert cells[2:9] == [
            money(account.starting_balance), money(account.current_balance), money(figures.realised_pnl),
            money(figures.unrealised_pnl), money(figures.equity), str(figures.closed_trades), rate(figures.win_rate),
        ]  # fmt: skip
    for system in ("paper_trading", "profit_scraping"):
        records = TrainingRecord.objects.filter(system_type=system)
        cells = page.locator(f'#system-totals tr[data-system="{system}"] td').all_inner_texts()
        assert cells[1] == str(records.count()) and cells[3] == str(records.filter(success=True).count())
    expect(page.locator("#decisions-taken")).to_have_text(str(SignalDecision.objects.filter(taken=True).count()))
    expect(page.locator("#decisions-skipped")).to_have_text(str(SignalDecision.objects.filter(taken=False).count()))
    open_trades = PaperTrade.objects.filter(status="open", is_shadow=False).count()
    expect(page.locator("#open-trade-count")).to_have_text(str(open_trades))
    expect(page.locator("#open-trades-table tbody tr")).to_have_count(open_trades)
    expect(page.locator("#versions-table tbody tr.active")).to_have_count(2)
    # At 1440 px every table stays inside the box it is drawn in (the decisions' Trade column had run past its panel).
    page.set_viewport_size({"width": 1440, "height": 900})
    for table in page.locator("table.figures").all():
        box, parent = table.bounding_box(), table.locator("xpath=..").bounding_box()
        if box is not None:  # a folded table has no box
            assert box["x"] + box["width"] <= parent["x"] + parent["width"] + 1, table.get_attribute("id")
    # The monthly figures are folded away (no JavaScript needed); opening them shows a row per system and month.
    page.click("#learning details summary")
    expect(page.locator("#monthly-outcomes tbody tr")).to_have_count(2)

    page.goto(f"{live_server.url}/admin/trading/papertrade/")
    page.click('#changelist-filter [data-filter-title="status"] a:text-is("Closed")')
    page.wait_for_url("**/admin/trading/papertrade/?status__exact=closed")
    closed = PaperTrade.objects.filter(status="closed", is_shadow=False).count()  # shadow trades are hidden until asked for
    assert 0 < closed <= 100  # one page: every filtered trade is listed
    expect(page.locator("#result_list tbody tr")).to_have_count(closed)
    assert set(page.locator("#result_list tbody td.field-status").all_inner_texts()) == {"Closed"}
    # A trade's page shows the decision that opened it, linked.
    page.locator("#result_list tbody tr th a").first.click()
    expect(page.locator(".field-decision_shown a")).to_have_attribute("href", re.compile(r"/admin/trading/signaldecision/\d+/change/"))


def test_login_page_asks_for_nothing_missing_and_admin_lists_fit_1440_px(live_server, transactional_db, page, tmp_path, django_user_model):
    build_dashboard_data(tmp_path)
    django_user_model.objects.create_superuser(username="auditor", email="", password=PASSWORD)
    page.set_viewport_size({"width": 1440, "height": 900})
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.wait_for_load_state("networkidle")
    assert missing == []  # the favicon included
    page.fill("#id_username", "auditor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    key_columns = {
        "/admin/trading/papertrade/": ("symbol", "side", "exit_time", "net_pnl", "success"),
        "/admin/learning/trainingrecord/": ("symbol", "side", "exit_time", "net_pnl", "success"),
    }
    for url, columns in key_columns.items():
        page.goto(f"{live_server.url}{url}")
        container = page.locator(".results").bounding_box()
        for name in columns:
            header = page.locator(f"#result_list thead th.column-{name}").bounding_box()
            # Visible without scrolling right: inside the window and inside the list's own scroll box.
            assert header["x"] + header["width"] <= min(1440, container["x"] + container["width"]), (url, name)
        # Every row one line high: no wrapped times or prices.
        heights = {round(box["height"]) for box in (row.bounding_box() for row in page.locator("#result_list tbody tr").all()[:20])}
        assert max(heights) < 40, heights
    assert missing == []
