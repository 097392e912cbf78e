"""The Usage page, its CSV and the monthly statement, rendered by Django's test client."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from unittest import mock

import pytest

from tests.analytics.factories import record_at, utc
from tests.analytics.test_reports import seed
from tests.tenants.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 20, 12)


@pytest.fixture
def member(client):
    membership = MembershipFactory(role="member", tenant__time_zone="Europe/Berlin",
                                   tenant__plan__price_per_million_characters=Decimal("2000"),
                                   tenant__plan__currency="EUR")
    client.force_login(membership.user)
    return membership


@pytest.fixture
def march_20():
    """The pages' "today" (the tenant's), fixed at 20 March 2026."""
    with mock.patch("analytics.selectors.timezone.now", return_value=NOW):
        yield


def _bars(html: str, chart_id: str) -> dict[str, str]:
    svg = re.search(rf'<svg class="chart" id="{chart_id}".*?</svg>', html, re.S).group(0)
    return dict(re.findall(r'data-day="([\d-]+)" data-value="([\d.]+)"', svg))


def test_usage_page_draws_the_charts_with_the_right_numbers(client, member, march_20):
    seed(member.tenant, rolled="partial")

    response = client.get("/app/usage/")

    assert response.status_code == 200
    html = response.content.decode()
    characters = _bars(html, "chart-characters")
    audio = _bars(html, "chart-audio")
    assert len(characters) == len(audio) == 20  # 1 to 20 March, empty days included.
    assert characters["2026-03-11"] == "350" and characters["2026-03-10"] == "0"
    assert audio["2026-03-11"] == "7.0"
    assert re.search(r'id="chart-characters"[^>]*role="img"\s+aria-labelledby="chart-characters-title" '
                     r'aria-describedby="chart-characters-desc"', html)
    assert '<title id="chart-characters-title">Characters per day</title>' in html
    assert "350 characters in total; the busiest day was 11 March with 350 characters." in html
    assert '<table class="visually-hidden" id="chart-characters-data">' in html
    assert "<th scope=\"row\">2026-03-11</th><td>350</td>" in html
    assert "Day (Europe/Berlin)" in html


def test_usage_page_shows_totals_quota_breakdowns_and_links(client, member, march_20):
    seed(member.tenant, rolled="all")

    html = client.get("/app/usage/").content.decode()

    assert re.search(r'id="total-characters-billed">300<', html)
    assert re.search(r'id="total-errors">1<', html)
    assert re.search(r'id="cost-estimate">0.60 EUR<', html)
    assert 'role="meter"' in html
    for breakdown in ("voice", "engine", "key"):
        assert f'id="breakdown-{breakdown}"' in html
    assert "piper:en_US-joe-medium" in html and "kokoro" in html and "Dashboard (no API key)" in html
    assert 'href="/app/usage/export.csv?from=2026-03-01&amp;to=2026-03-20&amp;group_by=day"' in html
    assert 'href="/app/usage/statement/2026-03/"' in html and 'href="/app/usage/statement/2026-02/"' in html


@pytest.mark.parametrize("query,first,last", [
    ("period=month", "2026-03-01", "2026-03-20"),
    ("period=30d", "2026-02-19", "2026-03-20"),
    ("period=custom&from=2026-03-09&to=2026-03-12", "2026-03-09", "2026-03-12"),
    ("from=2026-03-10&to=2026-03-11", "2026-03-10", "2026-03-11"),
])
def test_usage_page_period_picker(client, member, march_20, query, first, last):
    seed(member.tenant)

    html = client.get(f"/app/usage/?{query}").content.decode()

    days = sorted(_bars(html, "chart-characters"))
    assert (days[0], days[-1]) == (first, last)


@pytest.mark.parametrize("query,message", [
    ("period=custom&from=2026-03-12&to=2026-03-09", "The first day must not be after the last day."),
    ("period=custom&from=2024-01-01&to=2026-03-09", "Choose at most 400 days."),
    ("period=custom&from=nonsense&to=2026-03-09", "Enter a date."),
    ("period=custom&from=2026-03-01", "Choose both a first and a last day."),
    ("period=custom&from=1900-01-01&to=1900-01-02", "Choose days between"),
    ("period=fortnight", "Select a valid choice."),
])
def test_usage_page_explains_a_bad_period_on_the_form(client, member, march_20, query, message):
    response = client.get(f"/app/usage/?{query}")

    assert response.status_code == 200
    assert message in response.content.decode()


def test_usage_page_needs_a_signed_in_member(client):
    response = client.get("/app/usage/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_usage_page_shows_only_the_members_tenant(client, member, march_20):
    other = TenantFactory()
    record_at(other, utc(2026, 3, 11, 12), voice_id="piper:other-tenant-voice", characters=777)

    html = client.get("/app/usage/").content.decode()

    assert "other-tenant-voice" not in html
    assert re.search(r'id="total-requests">0<', html)


def test_usage_csv_download(client, member, march_20):
    seed(member.tenant, rolled="partial")

    response = client.get("/app/usage/export.csv?from=2026-03-01&to=2026-03-31&group_by=voice")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="parla-usage-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["voice_id", "label", "requests"]
    assert [row[0] for row in rows[1:]] == ["piper:en_US-joe-medium", "kokoro:af_heart"]


def test_usage_csv_bad_range_is_a_400(client, member):
    response = client.get("/app/usage/export.csv?period=custom&from=2026-03-12&to=2026-03-01")

    assert response.status_code == 400
    assert "first day must not be after" in response.content.decode()


def test_monthly_statement_lists_totals_days_voices_and_cost(client, member, march_20):
    seed(member.tenant, rolled="partial")

    response = client.get("/app/usage/statement/2026-03/")

    assert response.status_code == 200
    html = response.content.decode()
    assert member.tenant.name in html and "March 2026" in html and "1 March 2026 – 31 March 2026" in html
    assert re.search(r'id="statement-billed">300<', html)
    assert re.search(r'id="statement-cost">0.60 EUR', html)
    assert "<th scope=\"row\">2026-03-11</th>" in html
    assert '<th scope="row" class="mono">kokoro:af_heart</th>' in html
    assert "month not over yet" in html
    assert "statement-page" in html  # The print stylesheet's hook.


def test_monthly_statement_csv(client, member, march_20):
    seed(member.tenant, rolled="all")

    response = client.get("/app/usage/statement/2026-03.csv")

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="parla-statement-{member.tenant.slug}-2026-03.csv"')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["tenant", member.tenant.name, member.tenant.slug]
    assert rows[1] == ["period", "2026-03-01", "2026-03-31", "Europe/Berlin"]
    assert ["day", "2026-03-11", "3", "350", "300", "7.0", "1.6", "1", "1"] in rows
    assert ["voice", "kokoro:af_heart", "1", "50", "0", "1.0", "0.1", "1", "1"] in rows
    assert ["total", "", "3", "350", "300", "7.0", "1.6", "1", "1"] in rows
    assert rows[-1][:3] == ["cost_estimate", "EUR", "0.60"]


@pytest.mark.parametrize("url", ["/app/usage/statement/2026-13/", "/app/usage/statement/1999-12/",
                                 "/app/usage/statement/2026-00.csv", "/app/usage/statement/march/"])
def test_monthly_statement_of_a_month_that_is_not_one_is_404(client, member, url):
    assert client.get(url).status_code == 404


def test_statement_of_a_past_month_is_complete(client, member, march_20):
    html = client.get("/app/usage/statement/2026-02/").content.decode()

    assert "month not over yet" not in html
    assert "No usage in this month." in html
    assert dt.date(2026, 2, 1).strftime("%B %Y") in html
