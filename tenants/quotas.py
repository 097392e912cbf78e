"""Quota services: characters reserved before work starts and settled after.

Every reservation is a conditional UPDATE (`used + reserved + n <= limit`) on the tenant's
period row. PostgreSQL re-checks the condition against the latest row version when two
updates race, and SQLite serialises writers, so concurrent requests can never overspend.
"""

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.utils import timezone

from tenants.errors import ConcurrencyLimitExceeded, QuotaExceeded
from tenants.models import ApiKey, QuotaReservation, Tenant, TenantQuota, UsagePeriod

logger = logging.getLogger(__name__)


def period_bounds(*, tenant: Tenant, now: dt.datetime | None = None) -> tuple[dt.date, dt.datetime]:
    """First day of the tenant's current month and the moment the next month starts."""
    local_now = timezone.localtime(now or timezone.now(), tenant.tzinfo)
    start = local_now.date().replace(day=1)
    next_month = (start + dt.timedelta(days=32)).replace(day=1)
    period_end = dt.datetime.combine(next_month, dt.time.min, tzinfo=tenant.tzinfo)
    return start, period_end


def usage_period_current(*, tenant: Tenant, now: dt.datetime | None = None) -> UsagePeriod:
    start, _ = period_bounds(tenant=tenant, now=now)
    period = UsagePeriod.objects.for_tenant(tenant).filter(period_start=start).first()
    if period is not None:
        return period
    try:
        with transaction.atomic():
            return UsagePeriod.objects.create(tenant=tenant, period_start=start)
    except IntegrityError:  # Another request created it first.
        return UsagePeriod.objects.for_tenant(tenant).get(period_start=start)


def _seconds_until(moment: dt.datetime) -> float:
    return max(1.0, (moment - timezone.now()).total_seconds())


def _hold_ctes(condition: str = "") -> str:
    """The CTEs `period` (the conditional update; `condition`: one more for it) and
    `reservation` (the reservation row, RETURNING all its columns) of a one-statement hold."""
    return f"""
period AS (
    UPDATE {UsagePeriod._meta.db_table}
    SET characters_reserved = characters_reserved + %(characters)s
    WHERE tenant_id = %(tenant_id)s AND period_start = %(period_start)s
      AND characters_reserved <= %(limit)s - %(characters)s - characters_used {condition}
    RETURNING id
), reservation AS (
    INSERT INTO {QuotaReservation._meta.db_table} (tenant_id, period_id, characters, characters_settled, state,
                                                   api_key_id, created_at)
    SELECT %(tenant_id)s, period.id, %(characters)s, 0, %(held)s, %(api_key_id)s, %(now)s FROM period
    RETURNING *
)"""


_RESERVE = f"WITH {_hold_ctes()}\nSELECT * FROM reservation"


def _reserve_in_one_statement(
    *, tenant: Tenant, characters: int, limit: int, api_key: ApiKey | None
) -> QuotaReservation | None:
    """PostgreSQL: the conditional UPDATE and the reservation row in one round trip. None when
    the period row does not exist yet or the hold does not fit: quota_reserve() then decides."""
    start, _ = period_bounds(tenant=tenant)
    reservation = next(iter(QuotaReservation.objects.raw(_RESERVE, {
        "tenant_id": tenant.pk, "period_start": start, "characters": characters, "limit": limit,
        "held": QuotaReservation.State.HELD, "api_key_id": api_key.pk if api_key else None, "now": timezone.now(),
    })), None)
    return reservation and _with_relations(reservation, tenant=tenant, api_key=api_key)


def quota_reserve(
    *, tenant: Tenant, characters: int, api_key: ApiKey | None = None
) -> QuotaReservation:
    """Hold `characters` of this month's allowance, or raise QuotaExceeded."""
    if characters < 0:
        raise ValueError("characters must be >= 0")
    limit = tenant.plan.monthly_characters
    if connection.vendor == "postgresql":
        reservation = _reserve_in_one_statement(tenant=tenant, characters=characters, limit=limit, api_key=api_key)
        if reservation is not None:
            return reservation
    with transaction.atomic():
        return _reserve(tenant=tenant, characters=characters, limit=limit, api_key=api_key)


_ADMIT = f"""
WITH slot AS (
    UPDATE {TenantQuota._meta.db_table}
    SET jobs_in_flight = jobs_in_flight + 1
    WHERE tenant_id = %(tenant_id)s AND jobs_in_flight < %(slots)s
    RETURNING tenant_id
), {_hold_ctes("AND EXISTS (SELECT 1 FROM slot)")}
SELECT reservation.*, (SELECT count(*) FROM slot) AS slot_taken
FROM (SELECT 1) AS one LEFT JOIN reservation ON TRUE
"""


def job_admit(*, tenant: Tenant, characters: int, api_key: ApiKey | None = None) -> QuotaReservation:
    """Take a concurrent-job slot and hold `characters` of the month: job_slot_acquire() then
    quota_reserve(), with their errors (ConcurrencyLimitExceeded first, then QuotaExceeded).

    On PostgreSQL both happen in one statement when both fit; otherwise the two services decide
    (and make the tenant's first quota or period row). A slot taken before the hold fails is
    given back with the transaction, which the error rolls back."""
    if characters < 0:
        raise ValueError("characters must be >= 0")
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            start, _ = period_bounds(tenant=tenant)
            # One row: the reservation's columns (all NULL when no hold was made) and slot_taken.
            row = next(iter(QuotaReservation.objects.raw(_ADMIT, {
                "tenant_id": tenant.pk, "slots": tenant.plan.concurrent_jobs, "period_start": start,
                "characters": characters, "limit": tenant.plan.monthly_characters,
                "held": QuotaReservation.State.HELD, "api_key_id": api_key.pk if api_key else None,
                "now": timezone.now(),
            })))
            if row.pk is not None:
                return _with_relations(row, tenant=tenant, api_key=api_key)
            if row.slot_taken:  # the hold did not fit, or this month has no period row yet: the ORM path says which
                return _reserve(tenant=tenant, characters=characters, limit=tenant.plan.monthly_characters,
                                api_key=api_key)
        job_slot_acquire(tenant=tenant)
        return quota_reserve(tenant=tenant, characters=characters, api_key=api_key)


def _with_relations(reservation: QuotaReservation, *, tenant: Tenant, api_key: ApiKey | None) -> QuotaReservation:
    """The reservation a statement above returned, with the tenant and key its caller has."""
    reservation.tenant = tenant
    reservation.api_key = api_key
    return reservation


def _reserve(*, tenant: Tenant, characters: int, limit: int, api_key: ApiKey | None) -> QuotaReservation:
    period = usage_period_current(tenant=tenant)
    admitted = (
        UsagePeriod.objects.for_tenant(tenant)
        .filter(pk=period.pk, characters_reserved__lte=Value(limit - characters) - F("characters_used"))
        .update(characters_reserved=F("characters_reserved") + characters)
    )
    if not admitted:
        period.refresh_from_db()
        _, period_end = period_bounds(tenant=tenant)
        spent = period.characters_used + period.characters_reserved
        raise QuotaExceeded(
            "Monthly character quota exceeded.",
            extra={
                "limit": limit,
                "used": period.characters_used,
                "reserved": period.characters_reserved,
                "requested": characters,
                "remaining": max(0, limit - spent),
                "period_end": period_end.isoformat(),
            },
            retry_after=_seconds_until(period_end),
        )
    return QuotaReservation.objects.create(
        tenant=tenant, period=period, characters=characters, api_key=api_key
    )


def _close(*, tenant: Tenant | int, reservation_id: int, used: int | None) -> QuotaReservation:
    # No savepoint when nested: a failure must undo the caller's whole transaction anyway.
    with transaction.atomic(savepoint=False):
        reservation = (
            QuotaReservation.objects.for_tenant(tenant).select_for_update().get(pk=reservation_id)
        )
        if reservation.state != QuotaReservation.State.HELD:
            return reservation  # Settling twice (a redelivered message) changes nothing.
        settled = 0 if used is None else min(max(used, 0), reservation.characters)
        UsagePeriod.objects.for_tenant(tenant).filter(pk=reservation.period_id).update(
            characters_reserved=F("characters_reserved") - reservation.characters,
            characters_used=F("characters_used") + settled,
        )
        reservation.state = (
            QuotaReservation.State.RELEASED if used is None else QuotaReservation.State.SETTLED
        )
        reservation.characters_settled = settled
        reservation.closed_at = timezone.now()
        reservation.save(update_fields=["state", "characters_settled", "closed_at"])
        return reservation


def quota_reservation_settle(
    *, tenant: Tenant | int, reservation_id: int, characters_used: int
) -> QuotaReservation:
    """Turn a hold into usage; anything held but not used goes back to the tenant."""
    return _close(tenant=tenant, reservation_id=reservation_id, used=characters_used)


def quota_reservation_release(*, tenant: Tenant | int, reservation_id: int) -> QuotaReservation:
    """Give the whole hold back (the work failed or was cancelled)."""
    return _close(tenant=tenant, reservation_id=reservation_id, used=None)


def quota_reservations_release_stale_all_tenants() -> int:
    """Release holds whose work died without settling them. Crosses tenants by design."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.PARLA_RESERVATION_TTL_SECONDS)
    stale = QuotaReservation.objects.filter(
        state=QuotaReservation.State.HELD, created_at__lt=cutoff
    ).values_list("tenant_id", "pk")
    released = 0
    for tenant_id, reservation_id in stale.iterator():
        quota_reservation_release(tenant=tenant_id, reservation_id=reservation_id)
        logger.info(
            "quota_reservations_release_stale.released",
            extra={"tenant_id": tenant_id, "reservation_id": reservation_id},
        )
        released += 1
    return released


def _tenant_quota(*, tenant: Tenant) -> TenantQuota:
    quota, _ = TenantQuota.objects.for_tenant(tenant).get_or_create(tenant=tenant)
    return quota


def job_slot_acquire(*, tenant: Tenant) -> None:
    """Take one of the plan's concurrent-job slots, or raise ConcurrencyLimitExceeded."""
    limit = tenant.plan.concurrent_jobs

    def take() -> int:
        return (
            TenantQuota.objects.for_tenant(tenant)
            .filter(jobs_in_flight__lt=limit)
            .update(jobs_in_flight=F("jobs_in_flight") + 1)
        )

    admitted = take()
    if not admitted:
        # No slot, or no quota row yet (a new tenant): make the row and try once more.
        _tenant_quota(tenant=tenant)
        admitted = take()
    if not admitted:
        raise ConcurrencyLimitExceeded(
            "Too many jobs running at once for this plan.",
            extra={"limit": limit},
            retry_after=5,
        )


def job_slot_release(*, tenant: Tenant | int) -> None:
    TenantQuota.objects.for_tenant(tenant).filter(jobs_in_flight__gt=0).update(
        jobs_in_flight=F("jobs_in_flight") - 1
    )


def holds_close_ctes(*, source: str, tenant_id: int, characters_used: int, now: dt.datetime) -> tuple[str, dict]:
    """PostgreSQL: what quota_reservation_settle(characters_used=...) and job_slot_release() do,
    as CTEs (`quota_reservation`, `quota_period`, `quota_slot`) for a caller's one statement,
    for the row of its CTE `source` (columns reservation_id: the hold, settled if still held;
    held_slot: whether it took a slot). Returns (the CTEs, their parameters).
    tests/synthesis/test_settle.py holds them to the same rows as those two services."""
    sql = f"""
quota_reservation AS (
    UPDATE {QuotaReservation._meta.db_table} AS r
    SET state = %(quota_settled)s, characters_settled = LEAST(GREATEST(%(quota_used)s, 0), r.characters),
        closed_at = %(quota_now)s
    FROM {source}
    WHERE r.id = {source}.reservation_id AND r.tenant_id = %(quota_tenant_id)s AND r.state = %(quota_held)s
    RETURNING r.period_id, r.characters, r.characters_settled
), quota_period AS (
    UPDATE {UsagePeriod._meta.db_table} AS p
    SET characters_reserved = p.characters_reserved - quota_reservation.characters,
        characters_used = p.characters_used + quota_reservation.characters_settled
    FROM quota_reservation
    WHERE p.id = quota_reservation.period_id AND p.tenant_id = %(quota_tenant_id)s
    RETURNING p.id
), quota_slot AS (
    UPDATE {TenantQuota._meta.db_table} AS q
    SET jobs_in_flight = q.jobs_in_flight - 1
    FROM {source}
    WHERE q.tenant_id = %(quota_tenant_id)s AND {source}.held_slot AND q.jobs_in_flight > 0
    RETURNING q.id
)"""
    return sql, {
        "quota_tenant_id": tenant_id, "quota_used": characters_used, "quota_now": now,
        "quota_held": QuotaReservation.State.HELD, "quota_settled": QuotaReservation.State.SETTLED,
    }
