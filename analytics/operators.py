"""The operators' views of usage (the admin): the report across tenants, and a tenant's
current period at a glance."""

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Q, Sum

from analytics.models import UsageFailure, UsageRecord
from analytics.rollups import local_bounds
from analytics.selectors import usage_report, usage_report_range_check
from tenants.models import Tenant
from tenants.selectors import UsageSummary, tenant_usage_summary


@dataclass
class TenantUsageLine:
    tenant_id: int
    tenant_name: str
    tenant_slug: str
    requests: int
    characters_billed: int
    audio_seconds: float
    cached_requests: int
    errors: int

    @property
    def cache_hit_rate(self) -> float | None:
        return round(self.cached_requests / self.requests, 4) if self.requests else None


@dataclass
class EngineTiming:
    engine: str
    requests: int
    median_seconds: float
    p95_seconds: float


@dataclass
class OperatorReport:
    since: dt.datetime
    until: dt.datetime
    tenants: list[TenantUsageLine]
    engines: list[EngineTiming]
    requests: int
    cached_requests: int
    errors: int

    @property
    def cache_hit_rate(self) -> float | None:
        return round(self.cached_requests / self.requests, 4) if self.requests else None

    def top(self, measure: str, limit: int = 10) -> list[TenantUsageLine]:
        return sorted(self.tenants, key=lambda line: (-getattr(line, measure), line.tenant_name))[:limit]


def _percentiles_all_tenants(since: dt.datetime, until: dt.datetime) -> list[EngineTiming]:
    """Median and p95 processing time per engine, from the ledger. Crosses tenants by design."""
    records = UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until, cached=False)
    if connection.vendor == "postgresql":
        sql = ("SELECT engine, COUNT(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_seconds), "
               "percentile_cont(0.95) WITHIN GROUP (ORDER BY processing_seconds) FROM analytics_usagerecord "
               "WHERE created_at >= %s AND created_at < %s AND NOT cached GROUP BY engine ORDER BY engine")
        with connection.cursor() as cursor:
            cursor.execute(sql, [since, until])
            return [EngineTiming(engine, count, round(median, 3), round(p95, 3))
                    for engine, count, median, p95 in cursor.fetchall()]
    values: dict[str, list[float]] = defaultdict(list)
    for engine, seconds in records.values_list("engine", "processing_seconds").iterator():
        values[engine].append(seconds)
    timings = []
    for engine, seconds in sorted(values.items()):
        quantiles = statistics.quantiles(seconds, n=20, method="inclusive") if len(seconds) > 1 else seconds * 19
        timings.append(EngineTiming(engine, len(seconds), round(statistics.median(seconds), 3),
                                    round(quantiles[18], 3)))
    return timings


def usage_operator_report_all_tenants(*, start: dt.date, end: dt.date) -> OperatorReport:
    """Usage across tenants from `start` to `end` (UTC days, both included). Crosses tenants
    by design: operators only (the admin)."""
    usage_report_range_check(start=start, end=end)
    since, until = local_bounds(tz=dt.UTC, start=start, end=end)
    lines: dict[int, dict] = defaultdict(lambda: {"requests": 0, "characters_billed": 0, "audio_seconds": 0.0,
                                                  "cached_requests": 0, "errors": 0})
    records = UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until)
    for row in records.values("tenant_id").annotate(
        requests=Count("id"), characters_billed=Sum("characters_billed"), audio_seconds=Sum("audio_seconds"),
        cached_requests=Count("id", filter=Q(cached=True)),
    ).order_by():
        lines[row["tenant_id"]].update({name: row[name] or 0 for name in
                                        ("requests", "characters_billed", "audio_seconds", "cached_requests")})
    failures = UsageFailure.objects.filter(created_at__gte=since, created_at__lt=until)
    for row in failures.values("tenant_id").annotate(errors=Count("id")).order_by():
        lines[row["tenant_id"]]["errors"] = row["errors"]
    tenants = {tenant.pk: tenant for tenant in Tenant.objects.filter(pk__in=list(lines))}
    report_lines = [
        TenantUsageLine(tenant_id=tenant_id, tenant_name=tenants[tenant_id].name, tenant_slug=tenants[tenant_id].slug,
                        audio_seconds=round(values.pop("audio_seconds"), 3), **values)
        for tenant_id, values in lines.items()
    ]
    report_lines.sort(key=lambda line: (-line.characters_billed, line.tenant_name))
    return OperatorReport(
        since=since, until=until, tenants=report_lines, engines=_percentiles_all_tenants(since, until),
        requests=sum(line.requests for line in report_lines),
        cached_requests=sum(line.cached_requests for line in report_lines),
        errors=sum(line.errors for line in report_lines),
    )


@dataclass(frozen=True)
class PeriodGlance:
    summary: UsageSummary
    requests: int
    audio_seconds: float
    errors: int


def usage_period_glance(*, tenant: Tenant) -> PeriodGlance:
    """The tenant's current billing month at a glance (the Tenant admin page)."""
    summary = tenant_usage_summary(tenant=tenant)
    report = usage_report(tenant=tenant, start=summary.period_start,
                          end=(summary.period_end - dt.timedelta(days=1)).date(), group_by="month")
    return PeriodGlance(summary=summary, requests=report.totals.requests,
                        audio_seconds=round(report.totals.audio_seconds, 1), errors=report.totals.errors)
