import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants.errors import ConcurrencyLimitExceeded, QuotaExceeded
from tenants.models import QuotaReservation, TenantQuota, UsagePeriod
from tenants.quotas import (
    job_admit,
    job_slot_acquire,
    job_slot_release,
    period_bounds,
    quota_reservation_release,
    quota_reservation_settle,
    quota_reservations_release_stale_all_tenants,
    quota_reserve,
)
from tenants.selectors import tenant_usage_summary
from tests.tenants.factories import ApiKeyFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _period(tenant) -> UsagePeriod:
    return UsagePeriod.objects.for_tenant(tenant).get()


def _is_the_stored_row(reservation: QuotaReservation, tenant) -> bool:
    """A reservation built from a statement's RETURNING is the row as the ORM reads it."""
    stored = QuotaReservation.objects.for_tenant(tenant).get(pk=reservation.pk)
    fields = ("tenant_id", "period_id", "characters", "characters_settled", "state", "api_key_id", "created_at")
    same = [getattr(reservation, name) for name in fields] == [getattr(stored, name) for name in fields]
    return same and not reservation._state.adding


def test_quota_reserve_holds_characters():
    tenant = TenantFactory(plan__monthly_characters=10_000)

    reservation = quota_reserve(tenant=tenant, characters=1_500)

    assert reservation.state == QuotaReservation.State.HELD
    assert (_period(tenant).characters_reserved, _period(tenant).characters_used) == (1_500, 0)
    assert tenant_usage_summary(tenant=tenant).characters_remaining == 8_500


def test_quota_reserve_returns_the_stored_reservation_once_the_period_exists():
    # The first hold of a month creates the period row; later ones take one statement on
    # PostgreSQL (the conditional update and the reservation row together).
    tenant = TenantFactory(plan__monthly_characters=10_000)
    key = ApiKeyFactory.create(tenant=tenant)
    first = quota_reserve(tenant=tenant, characters=100)

    with CaptureQueriesContext(connection) as queries:
        second = quota_reserve(tenant=tenant, characters=200, api_key=key)

    assert _is_the_stored_row(second, tenant)
    assert second.period_id == first.period_id
    assert len(queries) == (1 if connection.vendor == "postgresql" else 4)
    assert _period(tenant).characters_reserved == 300


def test_quota_reserve_rejects_when_quota_exhausted():
    tenant = TenantFactory(plan__monthly_characters=1_000)
    quota_reserve(tenant=tenant, characters=900)

    with pytest.raises(QuotaExceeded) as excinfo:
        quota_reserve(tenant=tenant, characters=101)

    assert excinfo.value.code == "quota_exceeded"
    assert excinfo.value.extra["remaining"] == 100
    assert int(excinfo.value.headers()["Retry-After"]) >= 1
    assert _period(tenant).characters_reserved == 900


def test_quota_reserve_allows_exactly_the_limit():
    tenant = TenantFactory(plan__monthly_characters=1_000)

    quota_reserve(tenant=tenant, characters=1_000)

    assert _period(tenant).characters_reserved == 1_000


def test_quota_reservation_settle_refunds_the_unused_part():
    tenant = TenantFactory(plan__monthly_characters=10_000)
    reservation = quota_reserve(tenant=tenant, characters=1_000)

    quota_reservation_settle(tenant=tenant, reservation_id=reservation.pk, characters_used=700)

    assert (_period(tenant).characters_reserved, _period(tenant).characters_used) == (0, 700)


def test_quota_reservation_settle_twice_counts_once():
    tenant = TenantFactory(plan__monthly_characters=10_000)
    reservation = quota_reserve(tenant=tenant, characters=1_000)

    quota_reservation_settle(tenant=tenant, reservation_id=reservation.pk, characters_used=1_000)
    quota_reservation_settle(tenant=tenant, reservation_id=reservation.pk, characters_used=1_000)
    quota_reservation_release(tenant=tenant, reservation_id=reservation.pk)

    assert (_period(tenant).characters_reserved, _period(tenant).characters_used) == (0, 1_000)


def test_quota_reservation_settle_never_bills_more_than_reserved():
    tenant = TenantFactory(plan__monthly_characters=10_000)
    reservation = quota_reserve(tenant=tenant, characters=100)

    quota_reservation_settle(tenant=tenant, reservation_id=reservation.pk, characters_used=5_000)

    assert _period(tenant).characters_used == 100


def test_quota_reservation_release_refunds_everything_on_failure():
    tenant = TenantFactory(plan__monthly_characters=1_000)
    reservation = quota_reserve(tenant=tenant, characters=1_000)

    quota_reservation_release(tenant=tenant, reservation_id=reservation.pk)

    assert (_period(tenant).characters_reserved, _period(tenant).characters_used) == (0, 0)
    quota_reserve(tenant=tenant, characters=1_000)  # The whole allowance is back.


def test_quota_reservation_settle_of_another_tenant_is_not_found():
    mine, theirs = TenantFactory(), TenantFactory()
    reservation = quota_reserve(tenant=theirs, characters=10)

    with pytest.raises(QuotaReservation.DoesNotExist):
        quota_reservation_settle(tenant=mine, reservation_id=reservation.pk, characters_used=10)


def test_quota_reservations_release_stale_frees_dead_holds(settings):
    settings.PARLA_RESERVATION_TTL_SECONDS = 60
    tenant = TenantFactory(plan__monthly_characters=1_000)
    stale = quota_reserve(tenant=tenant, characters=400)
    fresh = quota_reserve(tenant=tenant, characters=100)
    QuotaReservation.objects.for_tenant(tenant).filter(pk=stale.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )

    released = quota_reservations_release_stale_all_tenants()

    assert released == 1
    assert _period(tenant).characters_reserved == 100
    fresh.refresh_from_db()
    assert fresh.state == QuotaReservation.State.HELD


def test_period_bounds_follow_the_tenant_time_zone():
    tenant = TenantFactory(time_zone="Pacific/Auckland")
    # 2026-10-31 12:00 UTC is already 1 November in Auckland (UTC+13).
    moment = dt.datetime(2026, 10, 31, 12, 0, tzinfo=dt.UTC)

    start, end = period_bounds(tenant=tenant, now=moment)

    assert start == dt.date(2026, 11, 1)
    assert end.date() == dt.date(2026, 12, 1) and end.utcoffset() == dt.timedelta(hours=13)


def _in_threads(count: int, fn):
    """Run fn(i) in `count` threads released together; each thread uses its own connection."""
    barrier = threading.Barrier(count)

    def call(i):
        barrier.wait()
        try:
            return fn(i)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@pytest.mark.django_db(transaction=True)
def test_quota_reserve_parallel_requests_never_overspend():
    assert connection.vendor == "postgresql"
    tenant = TenantFactory(plan__monthly_characters=10_000)

    def reserve(_):
        try:
            quota_reserve(tenant=tenant, characters=1_000)
            return True
        except QuotaExceeded:
            return False

    outcomes = _in_threads(20, reserve)

    assert sum(outcomes) == 10
    assert _period(tenant).characters_reserved == 10_000
    assert QuotaReservation.objects.for_tenant(tenant).count() == 10


@pytest.mark.django_db(transaction=True)
def test_quota_reserve_parallel_first_use_of_a_period_creates_one_row():
    tenant = TenantFactory(plan__monthly_characters=3_000)

    outcomes = _in_threads(8, lambda _: _try(lambda: quota_reserve(tenant=tenant, characters=1_000)))

    assert sum(outcomes) == 3
    assert UsagePeriod.objects.for_tenant(tenant).count() == 1


def _try(fn) -> bool:
    try:
        fn()
        return True
    except (QuotaExceeded, ConcurrencyLimitExceeded):
        return False


@pytest.mark.django_db(transaction=True)
def test_job_slot_acquire_parallel_never_exceeds_concurrent_jobs():
    tenant = TenantFactory(plan__concurrent_jobs=3)

    outcomes = _in_threads(12, lambda _: _try(lambda: job_slot_acquire(tenant=tenant)))

    assert sum(outcomes) == 3
    assert tenant_usage_summary(tenant=tenant).jobs_in_flight == 3


def test_job_slot_release_frees_a_slot():
    tenant = TenantFactory(plan__concurrent_jobs=1)
    job_slot_acquire(tenant=tenant)
    with pytest.raises(ConcurrencyLimitExceeded) as excinfo:
        job_slot_acquire(tenant=tenant)

    job_slot_release(tenant=tenant)
    job_slot_release(tenant=tenant)  # An extra release cannot go below zero.

    assert excinfo.value.code == "concurrency_limit_exceeded"
    job_slot_acquire(tenant=tenant)
    assert tenant_usage_summary(tenant=tenant).jobs_in_flight == 1


def _slots(tenant) -> int:
    return tenant_usage_summary(tenant=tenant).jobs_in_flight


def test_job_admit_takes_a_slot_and_holds_quota_in_one_statement_once_the_rows_exist():
    tenant = TenantFactory(plan__monthly_characters=10_000, plan__concurrent_jobs=5)
    key = ApiKeyFactory.create(tenant=tenant)
    first = job_admit(tenant=tenant, characters=100)  # makes the quota and period rows

    with CaptureQueriesContext(connection) as queries:
        second = job_admit(tenant=tenant, characters=200, api_key=key)

    assert _is_the_stored_row(second, tenant)
    assert second.period_id == first.period_id
    if connection.vendor == "postgresql":
        assert len(queries) == 1
    assert (_period(tenant).characters_reserved, _slots(tenant)) == (300, 2)


def test_job_admit_of_a_new_tenant_makes_its_rows():
    tenant = TenantFactory(plan__monthly_characters=1_000, plan__concurrent_jobs=1)
    assert not TenantQuota.objects.for_tenant(tenant).exists()

    reservation = job_admit(tenant=tenant, characters=400)

    assert reservation.characters == 400
    assert (_period(tenant).characters_reserved, _slots(tenant)) == (400, 1)


@pytest.mark.django_db(transaction=True)
def test_job_admit_refuses_a_busy_tenant_before_its_quota_and_changes_nothing():
    tenant = TenantFactory(plan__monthly_characters=1_000, plan__concurrent_jobs=1)
    job_admit(tenant=tenant, characters=1_000)  # the slot and the whole month

    with pytest.raises(ConcurrencyLimitExceeded):  # both are exhausted: the slot is checked first
        job_admit(tenant=tenant, characters=10)

    assert (_period(tenant).characters_reserved, _slots(tenant)) == (1_000, 1)
    assert QuotaReservation.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db(transaction=True)
def test_job_admit_over_quota_gives_its_slot_back():
    # Outside any transaction of the caller's: the slot the statement took is undone with it.
    tenant = TenantFactory(plan__monthly_characters=1_000, plan__concurrent_jobs=3)
    job_admit(tenant=tenant, characters=900)

    with pytest.raises(QuotaExceeded) as excinfo:
        job_admit(tenant=tenant, characters=101)

    assert excinfo.value.extra["remaining"] == 100
    assert (_period(tenant).characters_reserved, _slots(tenant)) == (900, 1)
    assert QuotaReservation.objects.for_tenant(tenant).count() == 1


@pytest.mark.django_db(transaction=True)
def test_job_admit_parallel_never_exceeds_slots_or_quota():
    assert connection.vendor == "postgresql"
    tenant = TenantFactory(plan__monthly_characters=5_000, plan__concurrent_jobs=4)
    job_admit(tenant=tenant, characters=0)  # the rows exist: every request takes the one-statement path
    job_slot_release(tenant=tenant)

    outcomes = _in_threads(16, lambda _: _try(lambda: job_admit(tenant=tenant, characters=1_000)))

    assert sum(outcomes) == 4
    assert (_period(tenant).characters_reserved, _slots(tenant)) == (4_000, 4)
    assert QuotaReservation.objects.for_tenant(tenant).filter(characters=1_000).count() == 4
