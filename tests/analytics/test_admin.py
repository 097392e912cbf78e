"""Operators' usage report in the admin, and the Tenant page's current period."""

import csv
import io

import pytest
from django.utils import timezone

from tests.analytics.factories import failure_at, record_at, utc
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

REPORT = "/admin/analytics/usagerecord/report/"


@pytest.fixture
def seeded():
    big, small = TenantFactory(name="Big Co"), TenantFactory(name="Small Co")
    for seconds in (1.0, 2.0, 3.0, 4.0, 10.0):
        record_at(big, utc(2026, 3, 5, 12), characters=1000, audio_seconds=60.0, processing_seconds=seconds)
    record_at(big, utc(2026, 3, 6, 12), characters=1000, cached=True, audio_seconds=60.0, processing_seconds=0.01)
    record_at(small, utc(2026, 3, 7, 12), engine="kokoro", voice_id="kokoro:af_heart", characters=10,
              audio_seconds=500.0, processing_seconds=8.0)
    failure_at(small, utc(2026, 3, 7, 13))
    failure_at(small, utc(2026, 3, 7, 14))
    record_at(small, utc(2026, 4, 2, 12), characters=99_999)  # Outside the range asked for.
    return big, small


def test_admin_usage_report_shows_top_tenants_errors_cache_and_timings(admin_client, seeded):
    response = admin_client.get(REPORT, {"start": "2026-03-01", "end": "2026-03-31"})

    assert response.status_code == 200
    report = response.context["report"]
    assert [line.tenant_name for line in response.context["top_characters"]] == ["Big Co", "Small Co"]
    assert [line.tenant_name for line in response.context["top_audio"]] == ["Small Co", "Big Co"]
    assert [(line.tenant_name, line.errors) for line in response.context["top_errors"]] == [("Small Co", 2)]
    assert (report.requests, report.cached_requests, report.errors) == (7, 1, 2)
    timings = {timing.engine: (timing.requests, timing.median_seconds, timing.p95_seconds) for timing in report.engines}
    assert timings == {"piper": (5, 3.0, 8.8), "kokoro": (1, 8.0, 8.0)}
    html = response.content.decode()
    assert "Top tenants by characters billed" in html and "Processing time per engine" in html
    assert 'id="report-cache-hit-rate">14 %<' in html


def test_admin_usage_report_exports_csv(admin_client, seeded):
    response = admin_client.get(REPORT, {"start": "2026-03-01", "end": "2026-03-31", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["tenant", "slug", "requests", "characters_billed", "audio_seconds", "cached_requests",
                       "cache_hit_rate", "errors"]
    big, small = seeded
    assert rows[1] == ["Big Co", big.slug, "6", "5000", "360.0", "1", "0.1667", "0"]
    assert rows[2] == ["Small Co", small.slug, "1", "10", "500.0", "0", "0.0", "2"]
    assert ["piper", "5", "3.0", "8.8"] in rows


def test_admin_usage_report_defaults_to_this_month_and_validates_dates(admin_client):
    default = admin_client.get(REPORT)
    backwards = admin_client.get(REPORT, {"start": "2026-03-31", "end": "2026-03-01"})

    assert default.status_code == 200
    assert default.context["report"].since.date() == timezone.now().date().replace(day=1)
    assert backwards.status_code == 200
    assert backwards.context["report"] is None
    assert "The first day must not be after the last day." in backwards.content.decode()


def test_admin_usage_report_is_for_staff_only(client, seeded):
    response = client.get(REPORT)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_usage_record_changelist_links_the_report(admin_client, seeded):
    html = admin_client.get("/admin/analytics/usagerecord/").content.decode()

    assert f'href="{REPORT}"' in html


def test_tenant_admin_page_shows_the_current_period_at_a_glance(admin_client):
    from tenants.quotas import quota_reservation_settle, quota_reserve

    tenant = TenantFactory()
    reservation = quota_reserve(tenant=tenant, characters=400)
    quota_reservation_settle(tenant=tenant, reservation_id=reservation.pk, characters_used=400)
    quota_reserve(tenant=tenant, characters=50)
    record_at(tenant, timezone.now(), characters=400, audio_seconds=12.5)
    failure_at(tenant, timezone.now())

    html = admin_client.get(f"/admin/tenants/tenant/{tenant.pk}/change/").content.decode()

    remaining = tenant.plan.monthly_characters - 450
    assert "Current period at a glance" in html
    assert (f"400 characters used, 50 held, {remaining:,} remaining; 1 jobs, 12.5 s of audio, 1 failed") in html


@pytest.mark.parametrize("url", ["/admin/analytics/usagefailure/", "/admin/analytics/usagedaily/"])
def test_ledger_admin_pages_load(admin_client, seeded, url):
    assert admin_client.get(url).status_code == 200
