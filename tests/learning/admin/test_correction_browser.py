"""In headless Chromium: a training record's admin page is read-only; its correction asks for a
reason, changes the record, and the audit row shows on the record's page."""
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from learning.models import TrainingRecord, TrainingRecordCorrection
from learning.services import store_trade_outcomes
from tests.dashboard.test_browser import PASSWORD, page  # noqa: F401  (the Chromium page fixture)
from tests.factories import TradeOutcomeFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_record_is_read_only_and_corrected_only_with_a_reason(page, live_server, django_user_model):  # noqa: F811
    store_trade_outcomes(outcomes=TradeOutcomeFactory.build_batch(5, side="long", move_pct=Decimal("0.02")))
    record = TrainingRecord.objects.order_by("id").first()
    django_user_model.objects.create_superuser(username="operator", email="", password=PASSWORD)
    record_url = f"{live_server.url}{reverse('admin:learning_trainingrecord_change', args=[record.pk])}"

    page.goto(f"{live_server.url}/admin/login/?next={reverse('admin:learning_trainingrecord_change', args=[record.pk])}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(record_url)
    # Read-only: the P&L is shown, not editable, and there is no save or delete button.
    expect(page.locator("input[name=net_pnl]")).to_have_count(0)
    expect(page.locator(".field-net_pnl .readonly")).to_contain_text(str(record.net_pnl).rstrip("0"))
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.locator("a.deletelink")).to_have_count(0)

    page.click("text=Correct (audited)…")
    page.fill("input[name=net_pnl]", "-3.5")
    page.fill("input[name=pnl_pct]", "-0.0035")
    page.click("input[type=submit]")
    expect(page.locator(".errornote, .errorlist")).to_contain_text("required")  # no reason, no correction
    assert not TrainingRecordCorrection.objects.exists()

    page.fill("textarea[name=reason]", "Fill booked at the wrong price")
    page.click("input[type=submit]")
    page.wait_for_url(record_url)
    expect(page.locator(".messagelist")).to_contain_text(f"Corrected {record.trade_id}")
    expect(page.locator("#corrections-group")).to_contain_text("Fill booked at the wrong price")
    expect(page.locator("#corrections-group")).to_contain_text("operator")
    record.refresh_from_db()
    assert str(record.net_pnl) == "-3.5000000000" and record.success is False
