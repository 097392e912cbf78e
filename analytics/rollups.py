"""Daily rollups of the ledger, built incrementally and rebuildable; always equal to the ledger.

Every ledger row (UsageRecord or UsageFailure) is written together with a UsageRollupPending
row in the same transaction. A rollup run, holding the tenant's lock, reads a set of pending
rows, adds exactly those ledger rows to UsageDaily and deletes exactly those pending rows, all
in one transaction. So for every committed ledger row, at every moment:

    either it is counted in UsageDaily and has no pending row,
    or it has a pending row and is not counted in UsageDaily.

A redelivered message (or two workers at once) finds the pending rows already gone: nothing is
counted twice. A lost message leaves pending rows that the next run for the tenant (or
`manage.py usage_rollup`) picks up, and reports add pending rows on top of the rollups
(analytics.selectors), so they are exact before any run.

Failed jobs are counted as `errors` on the day they failed, on the voice, engine and key
they were made with; they add nothing else (no request, no characters, no audio).

Days are the tenant's: a change of the tenant's time zone rebuilds all its rollups on the
next run (UsageRollupState remembers the zone they were built in).
"""

import datetime as dt
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.models import UsageDaily, UsageFailure, UsageRecord, UsageRollupPending, UsageRollupState
from tenants.models import Tenant

logger = logging.getLogger(__name__)

MEASURES = ("requests", "characters", "characters_billed", "audio_seconds", "processing_seconds",
            "cached_requests", "errors")
FLOAT_MEASURES = ("audio_seconds", "processing_seconds")
# Pending rows one run takes; a run loops until none are left.
RUN_BATCH = 5_000

BucketKey = tuple[dt.date, str, str, int | None]


def local_bounds(*, tz: zoneinfo.ZoneInfo, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first moment of `start`, first moment after `end`) in the time zone."""
    return (dt.datetime.combine(start, dt.time.min, tzinfo=tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz))


def record_measures(records: QuerySet) -> dict:
    """Aggregates of UsageRecord rows, named as UsageDaily's measures (errors excluded)."""
    return {
        "requests": Count("id"),
        "characters": Sum("characters"),
        "characters_billed": Sum("characters_billed"),
        "audio_seconds": Sum("audio_seconds"),
        "processing_seconds": Sum("processing_seconds"),
        "cached_requests": Count("id", filter=Q(cached=True)),
    }


def _zero() -> dict:
    return {name: 0.0 if name in FLOAT_MEASURES else 0 for name in MEASURES}


def _buckets(*, tz, records: QuerySet, failures: QuerySet) -> dict[BucketKey, dict]:
    """Sums of the given ledger rows per (local day, voice, engine, key)."""
    sums: dict[BucketKey, dict] = defaultdict(_zero)
    keys = ("day", "voice_id", "engine", "api_key_id")
    grouped = (records.annotate(day=TruncDate("created_at", tzinfo=tz)).values(*keys)
               .annotate(**record_measures(records)).order_by())
    for row in grouped:
        bucket = sums[tuple(row[key] for key in keys)]
        for name in MEASURES[:-1]:
            bucket[name] += row[name] or 0
    errors = (failures.annotate(day=TruncDate("created_at", tzinfo=tz)).values(*keys)
              .annotate(errors=Count("id")).order_by())
    for row in errors:
        sums[tuple(row[key] for key in keys)]["errors"] += row["errors"]
    return sums


def _lock(tenant_id: int) -> UsageRollupState:
    """Take the tenant's rollup lock (call inside a transaction); rollup runs and rebuilds of
    one tenant never interleave. An UPDATE locks the row on PostgreSQL and takes the write
    lock on SQLite, so later reads in the transaction see every run committed before."""
    state, _ = UsageRollupState.objects.for_tenant(tenant_id).get_or_create(tenant_id=tenant_id)
    UsageRollupState.objects.for_tenant(tenant_id).filter(pk=state.pk).update(updated_at=timezone.now())
    state.refresh_from_db()
    return state


def _add(*, tenant_id: int, sums: dict[BucketKey, dict]) -> None:
    if not sums:
        return
    days = {key[0] for key in sums}
    existing = {
        (row.day, row.voice_id, row.engine, row.api_key_id): row
        for row in UsageDaily.objects.for_tenant(tenant_id).filter(day__in=days)
    }
    changed, created = [], []
    for key, values in sums.items():
        row = existing.get(key)
        if row is None:
            day, voice_id, engine, api_key_id = key
            created.append(UsageDaily(tenant_id=tenant_id, day=day, voice_id=voice_id, engine=engine,
                                      api_key_id=api_key_id, **values))
            continue
        for name in MEASURES:
            setattr(row, name, getattr(row, name) + values[name])
        changed.append(row)
    UsageDaily.objects.bulk_create(created, batch_size=1000)
    UsageDaily.objects.bulk_update(changed, MEASURES, batch_size=1000)


def _take_pending(*, tenant_id: int, tz) -> int:
    """Add one batch of pending ledger rows to the rollups and forget them. Locked caller."""
    pending = list(UsageRollupPending.objects.for_tenant(tenant_id).order_by("pk")
                   .values_list("pk", "record_id", "failure_id")[:RUN_BATCH])
    if not pending:
        return 0
    record_ids = [record_id for _, record_id, _ in pending if record_id]
    failure_ids = [failure_id for _, _, failure_id in pending if failure_id]
    sums = _buckets(
        tz=tz,
        records=UsageRecord.objects.for_tenant(tenant_id).filter(pk__in=record_ids),
        failures=UsageFailure.objects.for_tenant(tenant_id).filter(pk__in=failure_ids),
    )
    _add(tenant_id=tenant_id, sums=sums)
    UsageRollupPending.objects.for_tenant(tenant_id).filter(pk__in=[pk for pk, _, _ in pending]).delete()
    return len(pending)


def _rebuild_locked(*, tenant: Tenant, start: dt.date | None, end: dt.date | None) -> None:
    """Recompute the rollups of [start, end] (everything when None) from the ledger."""
    tz = tenant.tzinfo
    while _take_pending(tenant_id=tenant.pk, tz=tz):
        pass
    daily = UsageDaily.objects.for_tenant(tenant)
    records = UsageRecord.objects.for_tenant(tenant)
    failures = UsageFailure.objects.for_tenant(tenant)
    if start is not None and end is not None:
        since, until = local_bounds(tz=tz, start=start, end=end)
        daily = daily.filter(day__gte=start, day__lte=end)
        records = records.filter(created_at__gte=since, created_at__lt=until)
        failures = failures.filter(created_at__gte=since, created_at__lt=until)
    daily.delete()
    # Rows committed since the pending rows were taken still have theirs: leave them to the
    # next run, as the invariant in the module docstring requires.
    still_pending = UsageRollupPending.objects.for_tenant(tenant)
    records = records.exclude(pk__in=still_pending.filter(record__isnull=False).values("record_id"))
    failures = failures.exclude(pk__in=still_pending.filter(failure__isnull=False).values("failure_id"))
    sums = _buckets(tz=tz, records=records, failures=failures)
    UsageDaily.objects.bulk_create(
        [UsageDaily(tenant_id=tenant.pk, day=day, voice_id=voice_id, engine=engine, api_key_id=api_key_id, **values)
         for (day, voice_id, engine, api_key_id), values in sums.items()],
        batch_size=2000,
    )


def _zone_changed(state: UsageRollupState, tenant: Tenant) -> bool:
    if not state.time_zone:
        # First run: rollups from before the state row existed (none normally) are rebuilt.
        return UsageDaily.objects.for_tenant(tenant).exists()
    return state.time_zone != tenant.time_zone


def _remember_zone(state: UsageRollupState, tenant: Tenant) -> None:
    if state.time_zone != tenant.time_zone:
        UsageRollupState.objects.for_tenant(tenant).filter(pk=state.pk).update(time_zone=tenant.time_zone)


def usage_rollup_run(*, tenant_id: int) -> int:
    """Add the tenant's pending ledger rows to its daily rollups. Idempotent; returns the
    number of ledger rows added."""
    if not Tenant.objects.filter(pk=tenant_id).exists():
        logger.info("usage_rollup_run.missing", extra={"tenant_id": tenant_id})
        return 0
    added = 0
    while True:
        with transaction.atomic():
            state = _lock(tenant_id)
            tenant = Tenant.objects.get(pk=tenant_id)
            if _zone_changed(state, tenant):
                logger.info("usage_rollup_run.time_zone_changed",
                            extra={"tenant_id": tenant_id, "from": state.time_zone, "to": tenant.time_zone})
                _rebuild_locked(tenant=tenant, start=None, end=None)
                _remember_zone(state, tenant)
                return added
            _remember_zone(state, tenant)
            taken = _take_pending(tenant_id=tenant_id, tz=tenant.tzinfo)
        added += taken
        if taken < RUN_BATCH:
            if added:
                logger.info("usage_rollup_run.added", extra={"tenant_id": tenant_id, "rows": added})
            return added


def usage_rollup_rebuild(*, tenant: Tenant, start: dt.date | None = None, end: dt.date | None = None) -> None:
    """Recompute a tenant's rollups for [start, end] (local days; all days when None)."""
    with transaction.atomic():
        state = _lock(tenant.pk)
        tenant = Tenant.objects.get(pk=tenant.pk)
        if _zone_changed(state, tenant):
            start = end = None  # Every day moved: rebuild them all.
        _rebuild_locked(tenant=tenant, start=start, end=end)
        _remember_zone(state, tenant)
    logger.info("usage_rollup_rebuild.done", extra={"tenant_id": tenant.pk, "start": str(start), "end": str(end)})


def usage_rollup_pending_tenant_ids_all_tenants() -> list[int]:
    """Tenants with ledger rows not yet rolled up. Crosses tenants by design."""
    return sorted(set(UsageRollupPending.objects.values_list("tenant_id", flat=True).distinct()))


def usage_rollup_run_all_tenants(tenant_ids: Iterable[int] | None = None) -> int:
    """Roll up every tenant's pending rows (after a lost message, or from the command)."""
    ids = usage_rollup_pending_tenant_ids_all_tenants() if tenant_ids is None else tenant_ids
    return sum(usage_rollup_run(tenant_id=tenant_id) for tenant_id in ids)
