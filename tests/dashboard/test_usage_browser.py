"""The Usage page in a real browser: the charts, the period picker and the CSV download."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from analytics.rollups import usage_rollup_run
from tests.analytics.factories import failure_at, record_at
from tests.tenants.factories import ApiKeyFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_usage_page_charts_period_switch_and_csv_download(page, sign_in):
    membership = MembershipFactory(role="member", tenant__time_zone="Europe/Berlin")
    tenant = membership.tenant
    key = ApiKeyFactory.create(tenant=tenant, name="website")
    today = timezone.localtime(timezone.now(), tenant.tzinfo).date()
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=tenant.tzinfo)
    record_at(tenant, noon, characters=1200, audio_seconds=75.0, api_key=key)
    record_at(tenant, noon - dt.timedelta(days=1), characters=300, audio_seconds=20.0,
              voice_id="kokoro:af_heart", engine="kokoro")
    usage_rollup_run(tenant_id=tenant.pk)
    record_at(tenant, noon - dt.timedelta(days=20), characters=4000, audio_seconds=240.0)  # Not rolled up yet.
    failure_at(tenant, noon)
    sign_in(page, membership.user)

    page.goto("/app/usage/")

    characters = page.get_by_role("img", name="Characters per day")
    expect(characters).to_be_visible()
    expect(page.get_by_role("img", name="Audio seconds per day")).to_be_visible()
    expect(page.locator("#chart-characters .chart-bars rect")).to_have_count(today.day)
    expect(page.locator(f'#chart-characters rect[data-day="{today.isoformat()}"]')).to_have_attribute(
        "data-value", "1200")
    expect(page.locator("#breakdown-key")).to_contain_text("website")
    expect(page.locator("#total-errors")).to_have_text("1")

    page.get_by_role("link", name="Last 30 days").click()

    expect(page.get_by_role("link", name="Last 30 days")).to_have_attribute("aria-current", "true")
    expect(page.locator("#chart-characters .chart-bars rect")).to_have_count(30)
    twenty_days_ago = (today - dt.timedelta(days=20)).isoformat()
    expect(page.locator(f'#chart-characters rect[data-day="{twenty_days_ago}"]')).to_have_attribute(
        "data-value", "4000")
    expect(page.locator("#total-characters-billed")).to_have_text("5,500")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))

    assert download.suggested_filename.startswith(f"parla-usage-{tenant.slug}-")
    assert rows[0][0] == "day"
    by_day = {row[0]: row for row in rows[1:]}
    assert by_day[today.isoformat()][3] == "1200"
    assert by_day[twenty_days_ago][3] == "4000"
    assert page.js_errors == []


def test_usage_charts_follow_the_dark_theme(page, sign_in):
    membership = MembershipFactory(role="member")
    record_at(membership.tenant, timezone.now(), characters=500, audio_seconds=30.0)
    sign_in(page, membership.user)
    page.emulate_media(color_scheme="light")
    page.goto("/app/usage/")
    bar = page.locator("#chart-characters .chart-bars rect[data-value='500']")
    light = bar.evaluate("element => getComputedStyle(element).fill")

    page.emulate_media(color_scheme="dark")

    dark = bar.evaluate("element => getComputedStyle(element).fill")
    card = page.locator("#chart-characters-figure").evaluate(
        "element => getComputedStyle(element.closest('.card')).backgroundColor")
    tick = page.locator("#chart-characters .chart-tick").first.evaluate("element => getComputedStyle(element).fill")
    assert light != dark
    assert dark != card and tick != card
    assert page.js_errors == []


def test_monthly_statement_prints_without_the_dashboard_around_it(page, sign_in):
    membership = MembershipFactory(role="member", tenant__name="Statement Co")
    now = timezone.now()
    record_at(membership.tenant, now, characters=2500, audio_seconds=100.0)
    sign_in(page, membership.user)
    page.goto("/app/usage/")

    page.get_by_role("link", name="Monthly statement").click()

    month = timezone.localtime(now, membership.tenant.tzinfo)
    expect(page.get_by_role("heading", level=1)).to_have_text(month.strftime("%B %Y"))
    expect(page.locator("#statement-billed")).to_have_text("2,500")
    expect(page.locator(".sidebar")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator(".sidebar")).to_be_hidden()
    expect(page.locator(".statement-actions")).to_be_hidden()
    expect(page.locator("#statement-days")).to_be_visible()
    assert "Statement Co" in page.locator(".statement-header").inner_text()
    assert page.js_errors == []
