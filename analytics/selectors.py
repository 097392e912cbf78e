"""Reads of usage: tenant reports, daily series, monthly statements (the operators' views are in
analytics.operators).

Tenant reports read the daily rollups plus the ledger rows not yet rolled up (their pending
rows), in one snapshot, so they equal the ledger at every moment (see analytics.rollups).
Dates are the tenant's local days; `start` and `end` are both included.
"""

import calendar
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from analytics.models import (
    EnrollmentUsage,
    UsageDaily,
    UsageFailure,
    UsageRecord,
    UsageRollupPending,
    UsageRollupState,
)
from analytics.rollups import FLOAT_MEASURES, MEASURES, local_bounds, record_measures
from tenants.errors import ApplicationError
from tenants.models import ApiKey, Tenant
from tenants.selectors import UsageSummary, tenant_usage_summary

GROUP_BY = ("day", "month", "voice", "engine", "key")
MAX_RANGE_DAYS = 400
# Dates the reports accept: far enough either way for any real question, and no overflow
# when a date becomes a moment in a time zone.
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)

# Column of the rollups and of the ledger for each grouping.
_ROLLUP_COLUMN = {"day": "day", "voice": "voice_id", "engine": "engine", "key": "api_key_id"}
_LEDGER_COLUMN = {"voice": "voice_id", "engine": "engine", "key": "api_key_id"}


class InvalidReportRange(ApplicationError):
    pass


@dataclass
class UsageRow:
    key: str | None
    label: str
    requests: int = 0
    characters: int = 0
    characters_billed: int = 0
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0
    cached_requests: int = 0
    errors: int = 0

    def add(self, values: dict) -> None:
        for name in MEASURES:
            setattr(self, name, getattr(self, name) + (values.get(name) or 0))

    @property
    def cache_hit_rate(self) -> float | None:
        return round(self.cached_requests / self.requests, 4) if self.requests else None

    def measures(self) -> dict:
        values = {name: getattr(self, name) for name in MEASURES}
        for name in FLOAT_MEASURES:
            values[name] = round(values[name], 3)
        return values


@dataclass(frozen=True)
class CostEstimate:
    currency: str
    price_per_million_characters: Decimal
    characters_billed: int
    amount: Decimal

    @property
    def price_text(self) -> str:
        return f"{self.price_per_million_characters.normalize():f}"


@dataclass
class EnrollmentRow:
    """Voice enrollments that ran on a worker: their own kind of usage, never characters."""

    key: str | None
    label: str
    enrollments: int = 0
    succeeded: int = 0
    failed: int = 0
    processing_seconds: float = 0.0


@dataclass
class EnrollmentUsageSummary:
    rows: list[EnrollmentRow]
    totals: EnrollmentRow


@dataclass
class UsageReport:
    tenant: Tenant
    start: dt.date
    end: dt.date
    group_by: str
    rows: list[UsageRow]
    totals: UsageRow
    quota: UsageSummary
    cost: CostEstimate | None = None
    time_zone: str = field(default="UTC")
    enrollments: EnrollmentUsageSummary | None = None


def usage_report_range_check(*, start: dt.date, end: dt.date) -> None:
    """Raise a validation error (fields from/to) for a range reports do not answer."""
    for name, value in (("from", start), ("to", end)):
        if not MIN_DATE <= value <= MAX_DATE:
            raise InvalidReportRange(f"{name} must be between {MIN_DATE} and {MAX_DATE}.",
                                     extra={"fields": {name: ["Out of range."]}})
    if start > end:
        raise InvalidReportRange("from must not be after to.", extra={"fields": {"from": ["After to."]}})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidReportRange(
            f"A report covers at most {MAX_RANGE_DAYS} days; ask for a shorter range.",
            extra={"fields": {"to": [f"More than {MAX_RANGE_DAYS} days after from."]}, "max_days": MAX_RANGE_DAYS},
        )


def tenant_today(*, tenant: Tenant) -> dt.date:
    return timezone.localtime(timezone.now(), tenant.tzinfo).date()


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the month of `day` (safe up to 9999-12)."""
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _rollups_current(tenant: Tenant) -> bool:
    """False while the rollups are in another time zone than the tenant's (a rebuild is due)."""
    state = UsageRollupState.objects.for_tenant(tenant).first()
    if state is None or not state.time_zone:
        return not UsageDaily.objects.for_tenant(tenant).exists()
    return state.time_zone == tenant.time_zone


def _group_key(group_by: str, value) -> str | None:
    if value is None:
        return None
    if group_by == "day":
        return value.isoformat()
    if group_by == "month":
        return value.strftime("%Y-%m")
    return str(value)


def _from_rollups(tenant: Tenant, start: dt.date, end: dt.date, group_by: str) -> list[tuple]:
    daily = UsageDaily.objects.for_tenant(tenant).filter(day__gte=start, day__lte=end)
    if group_by == "month":
        daily = daily.annotate(group=TruncMonth("day"))
    else:
        daily = daily.annotate(group=F(_ROLLUP_COLUMN[group_by]))
    sums = {name: Sum(name) for name in MEASURES}
    return [(row["group"], row) for row in daily.values("group").annotate(**sums).order_by()]


def _from_ledger(tenant: Tenant, start: dt.date, end: dt.date, group_by: str, *, pending_only: bool) -> list[tuple]:
    tz = tenant.tzinfo
    since, until = local_bounds(tz=tz, start=start, end=end)
    records = UsageRecord.objects.for_tenant(tenant).filter(created_at__gte=since, created_at__lt=until)
    failures = UsageFailure.objects.for_tenant(tenant).filter(created_at__gte=since, created_at__lt=until)
    if pending_only:
        pending = UsageRollupPending.objects.for_tenant(tenant)
        records = records.filter(pk__in=pending.filter(record__isnull=False).values("record_id"))
        failures = failures.filter(pk__in=pending.filter(failure__isnull=False).values("failure_id"))
    out = []
    for queryset, measures in ((records, record_measures(records)), (failures, {"errors": Count("id")})):
        if group_by == "day":
            queryset = queryset.annotate(group=TruncDate("created_at", tzinfo=tz))
        elif group_by == "month":
            queryset = queryset.annotate(group=TruncMonth("created_at", tzinfo=tz))
        else:
            queryset = queryset.annotate(group=F(_LEDGER_COLUMN[group_by]))
        for row in queryset.values("group").annotate(**measures).order_by():
            group = row["group"]
            if group_by == "month" and isinstance(group, dt.datetime):
                group = group.date()
            out.append((group, row))
    return out


def _enrollment_usage(tenant: Tenant, start: dt.date, end: dt.date, group_by: str) -> EnrollmentUsageSummary:
    """Enrollments from their own ledger (a few a day per tenant: no rollups needed)."""
    tz = tenant.tzinfo
    since, until = local_bounds(tz=tz, start=start, end=end)
    usage = EnrollmentUsage.objects.for_tenant(tenant).filter(created_at__gte=since, created_at__lt=until)
    if group_by == "day":
        usage = usage.annotate(group=TruncDate("created_at", tzinfo=tz))
    elif group_by == "month":
        usage = usage.annotate(group=TruncMonth("created_at", tzinfo=tz))
    else:
        usage = usage.annotate(group=F(_LEDGER_COLUMN[group_by]))
    sums = usage.values("group").annotate(
        enrollments=Count("id"),
        succeeded=Count("id", filter=Q(outcome=EnrollmentUsage.Outcome.SUCCEEDED)),
        failed=Count("id", filter=Q(outcome=EnrollmentUsage.Outcome.FAILED)),
        processing_seconds=Sum("processing_seconds"),
    ).order_by()
    grouped = {}
    for values in sums:
        group = values["group"]
        if group_by == "month" and isinstance(group, dt.datetime):
            group = group.date()
        grouped[_group_key(group_by, group)] = values
    labels = _labels(tenant, group_by, list(grouped))
    rows = [
        EnrollmentRow(key=key, label=labels[key], enrollments=values["enrollments"], succeeded=values["succeeded"],
                      failed=values["failed"], processing_seconds=round(values["processing_seconds"] or 0.0, 3))
        for key, values in grouped.items()
    ]
    rows.sort(key=lambda row: row.key or "")
    totals = EnrollmentRow(
        key=None, label="Total", enrollments=sum(row.enrollments for row in rows),
        succeeded=sum(row.succeeded for row in rows), failed=sum(row.failed for row in rows),
        processing_seconds=round(sum(row.processing_seconds for row in rows), 3),
    )
    return EnrollmentUsageSummary(rows=rows, totals=totals)


def _labels(tenant: Tenant, group_by: str, keys: list[str | None]) -> dict[str | None, str]:
    if group_by != "key":
        return {key: key or "" for key in keys}
    ids = [int(key) for key in keys if key is not None]
    names = {str(api_key.pk): f"{api_key.name} ({api_key.prefix}…)"
             for api_key in ApiKey.objects.for_tenant(tenant).filter(pk__in=ids)}
    return {key: names.get(key, "Deleted key") if key is not None else "Dashboard (no API key)" for key in keys}


def usage_report(*, tenant: Tenant, start: dt.date, end: dt.date, group_by: str = "day") -> UsageReport:
    """The tenant's usage from `start` to `end` (local days, both included), grouped."""
    if group_by not in GROUP_BY:
        raise ApplicationError(f"group_by must be one of {', '.join(GROUP_BY)}.",
                               extra={"fields": {"group_by": ["Unknown grouping."]}})
    usage_report_range_check(start=start, end=end)
    with _snapshot():
        if _rollups_current(tenant):
            parts = _from_rollups(tenant, start, end, group_by)
            parts += _from_ledger(tenant, start, end, group_by, pending_only=True)
        else:
            parts = _from_ledger(tenant, start, end, group_by, pending_only=False)
        enrollments = _enrollment_usage(tenant, start, end, group_by)
    grouped: dict[str | None, dict] = defaultdict(dict)
    for group, values in parts:
        bucket = grouped[_group_key(group_by, group)]
        for name in MEASURES:
            bucket[name] = bucket.get(name, 0) + (values.get(name) or 0)
    labels = _labels(tenant, group_by, list(grouped))
    rows = []
    for key, values in grouped.items():
        row = UsageRow(key=key, label=labels[key])
        row.add(values)
        rows.append(row)
    if group_by in ("day", "month"):
        rows.sort(key=lambda row: row.key or "")
    else:
        rows.sort(key=lambda row: (-row.characters, -row.requests, row.label))
    totals = UsageRow(key=None, label="Total")
    for row in rows:
        totals.add(row.measures())
    for row in (*rows, totals):
        for name in FLOAT_MEASURES:
            setattr(row, name, round(getattr(row, name), 3))
    return UsageReport(
        tenant=tenant, start=start, end=end, group_by=group_by, rows=rows, totals=totals,
        quota=tenant_usage_summary(tenant=tenant), cost=usage_cost_estimate(tenant=tenant, totals=totals),
        time_zone=tenant.time_zone, enrollments=enrollments,
    )


class _snapshot:
    """One snapshot for every statement inside (REPEATABLE READ on PostgreSQL): the rollups
    and the pending rows are never read either side of a rollup run. SQLite transactions
    read one snapshot already."""

    def __enter__(self):
        # Inside an outer transaction (tests, a caller's atomic) the level is already fixed.
        outermost = not connection.in_atomic_block
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return self

    def __exit__(self, *exc):
        return self._atomic.__exit__(*exc)


def usage_cost_estimate(*, tenant: Tenant, totals: UsageRow) -> CostEstimate | None:
    plan = tenant.plan
    if plan.price_per_million_characters is None or not plan.currency:
        return None
    amount = (Decimal(totals.characters_billed) * plan.price_per_million_characters / Decimal(1_000_000))
    return CostEstimate(
        currency=plan.currency, price_per_million_characters=plan.price_per_million_characters,
        characters_billed=totals.characters_billed, amount=amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
    )


def usage_daily_series(report: UsageReport) -> list[UsageRow]:
    """Every day of a day-grouped report, days without usage included (for charts)."""
    if report.group_by != "day":
        raise ValueError("usage_daily_series needs a report grouped by day")
    by_day = {row.key: row for row in report.rows}
    series, day = [], report.start
    while day <= report.end:
        series.append(by_day.get(day.isoformat()) or UsageRow(key=day.isoformat(), label=day.isoformat()))
        day += dt.timedelta(days=1)
    return series
