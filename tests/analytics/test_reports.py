"""Reports equal sums worked out by hand, in each tenant's own days, whether the ledger rows
are rolled up, pending, or some of each."""

import datetime as dt
from decimal import Decimal

import pytest

from analytics.rollups import usage_rollup_run
from analytics.selectors import usage_daily_series, usage_report
from tenants.models import Tenant
from tests.analytics.factories import failure_at, record_at, utc
from tests.tenants.factories import ApiKeyFactory, TenantFactory

pytestmark = pytest.mark.django_db

A, B = ("piper:en_US-joe-medium", "piper"), ("kokoro:af_heart", "kokoro")
MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def seed(tenant, *, rolled: str = "none") -> dict:
    """Four jobs and one failure around midnight UTC (see the expected sums below)."""
    k1, k2 = ApiKeyFactory.create(tenant=tenant, name="server"), ApiKeyFactory.create(tenant=tenant, name="batch")
    record_at(tenant, utc(2026, 3, 10, 23, 30), voice_id=A[0], engine=A[1], api_key=k1, characters=100,
              audio_seconds=2.0, processing_seconds=0.5)
    record_at(tenant, utc(2026, 3, 11, 6, 30), voice_id=B[0], engine=B[1], characters=50, cached=True,
              audio_seconds=1.0, processing_seconds=0.1)
    if rolled == "partial":
        usage_rollup_run(tenant_id=tenant.pk)
    record_at(tenant, utc(2026, 3, 11, 12), voice_id=A[0], engine=A[1], api_key=k1, characters=200,
              audio_seconds=4.0, processing_seconds=1.0)
    record_at(tenant, utc(2026, 4, 1, 0, 30), voice_id=A[0], engine=A[1], api_key=k2, characters=1000,
              audio_seconds=20.0, processing_seconds=3.0)
    failure_at(tenant, utc(2026, 3, 11, 22, 30), voice_id=B[0], engine=B[1])
    if rolled == "all":
        usage_rollup_run(tenant_id=tenant.pk)
    return {"k1": k1, "k2": k2}


def measures(row) -> tuple:
    return (row.requests, row.characters, row.characters_billed, round(row.audio_seconds, 3),
            round(row.processing_seconds, 3), row.cached_requests, row.errors)


def by_key(report) -> dict:
    return {row.key: measures(row) for row in report.rows}


# (requests, characters, billed, audio, processing, cached, errors) per local day in March.
EXPECTED_DAYS = {
    "Europe/Berlin": {"2026-03-11": (3, 350, 300, 7.0, 1.6, 1, 1)},
    "UTC": {"2026-03-10": (1, 100, 100, 2.0, 0.5, 0, 0), "2026-03-11": (2, 250, 200, 5.0, 1.1, 1, 1)},
    "America/Los_Angeles": {"2026-03-10": (2, 150, 100, 3.0, 0.6, 1, 0), "2026-03-11": (1, 200, 200, 4.0, 1.0, 0, 1),
                            "2026-03-31": (1, 1000, 1000, 20.0, 3.0, 0, 0)},
}


@pytest.mark.parametrize("rolled", ["none", "partial", "all"])
@pytest.mark.parametrize("time_zone", sorted(EXPECTED_DAYS))
def test_usage_report_by_day_matches_hand_computed_sums_in_the_tenants_days(time_zone, rolled):
    tenant = TenantFactory(time_zone=time_zone)
    seed(tenant, rolled=rolled)

    report = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1], group_by="day")

    assert by_key(report) == EXPECTED_DAYS[time_zone]
    expected_total = tuple(round(sum(values), 3) for values in zip(*EXPECTED_DAYS[time_zone].values(), strict=True))
    assert measures(report.totals) == expected_total


@pytest.mark.parametrize("rolled", ["none", "all"])
def test_usage_report_by_month_puts_the_first_of_april_utc_in_march_for_los_angeles(rolled):
    los_angeles, berlin = TenantFactory(time_zone="America/Los_Angeles"), TenantFactory(time_zone="Europe/Berlin")
    seed(los_angeles, rolled=rolled)
    seed(berlin, rolled=rolled)

    la = usage_report(tenant=los_angeles, start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30), group_by="month")
    de = usage_report(tenant=berlin, start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30), group_by="month")

    assert by_key(la) == {"2026-03": (4, 1350, 1300, 27.0, 4.6, 1, 1)}
    assert by_key(de) == {"2026-03": (3, 350, 300, 7.0, 1.6, 1, 1), "2026-04": (1, 1000, 1000, 20.0, 3.0, 0, 0)}


@pytest.mark.parametrize("rolled", ["none", "partial", "all"])
def test_usage_report_by_voice_engine_and_key(rolled):
    tenant = TenantFactory(time_zone="Europe/Berlin")
    keys = seed(tenant, rolled=rolled)

    voices = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1], group_by="voice")
    engines = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1], group_by="engine")
    by_api_key = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1], group_by="key")

    assert [row.key for row in voices.rows] == [A[0], B[0]]  # Most characters first.
    assert by_key(voices) == {A[0]: (2, 300, 300, 6.0, 1.5, 0, 0), B[0]: (1, 50, 0, 1.0, 0.1, 1, 1)}
    assert by_key(engines) == {"piper": (2, 300, 300, 6.0, 1.5, 0, 0), "kokoro": (1, 50, 0, 1.0, 0.1, 1, 1)}
    assert by_key(by_api_key) == {str(keys["k1"].pk): (2, 300, 300, 6.0, 1.5, 0, 0), None: (1, 50, 0, 1.0, 0.1, 1, 1)}
    labels = {row.key: row.label for row in by_api_key.rows}
    assert labels == {str(keys["k1"].pk): f"server ({keys['k1'].prefix}…)", None: "Dashboard (no API key)"}


def test_usage_report_cost_estimate_from_the_plans_price():
    tenant = TenantFactory(time_zone="Europe/Berlin", plan__price_per_million_characters=Decimal("2000"),
                           plan__currency="EUR")
    seed(tenant)

    report = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1])

    assert (report.cost.currency, report.cost.characters_billed, report.cost.amount) == ("EUR", 300, Decimal("0.60"))


def test_usage_report_has_no_cost_without_a_price(tenant):
    assert usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1]).cost is None


def test_usage_report_includes_the_current_quota(tenant):
    from tenants.quotas import quota_reservation_settle, quota_reserve

    held = quota_reserve(tenant=tenant, characters=500)
    used = quota_reserve(tenant=tenant, characters=300)
    quota_reservation_settle(tenant=tenant, reservation_id=used.pk, characters_used=120)

    quota = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1]).quota

    assert (quota.characters_used, quota.characters_reserved) == (120, held.characters)
    assert quota.characters_remaining == tenant.plan.monthly_characters - 620


def test_usage_report_after_a_time_zone_change_uses_the_new_days_before_any_rebuild():
    tenant = TenantFactory(time_zone="UTC")
    seed(tenant, rolled="all")
    Tenant.objects.filter(pk=tenant.pk).update(time_zone="Europe/Berlin")
    tenant.refresh_from_db()

    report = usage_report(tenant=tenant, start=MARCH[0], end=MARCH[1])

    assert by_key(report) == EXPECTED_DAYS["Europe/Berlin"]


def test_usage_report_never_counts_another_tenants_rows():
    mine, theirs = TenantFactory(), TenantFactory()
    seed(theirs, rolled="partial")
    record_at(mine, utc(2026, 3, 5, 9), characters=7)

    report = usage_report(tenant=mine, start=MARCH[0], end=MARCH[1], group_by="voice")

    assert measures(report.totals)[:3] == (1, 7, 7)


def test_usage_daily_series_has_every_day_of_the_range(tenant):
    seed(tenant)

    series = usage_daily_series(usage_report(tenant=tenant, start=dt.date(2026, 3, 9), end=dt.date(2026, 3, 12)))

    assert [(row.key, row.characters) for row in series] == [
        ("2026-03-09", 0), ("2026-03-10", 100), ("2026-03-11", 250), ("2026-03-12", 0)]
