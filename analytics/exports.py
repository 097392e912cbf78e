"""CSV renderings of usage reports and statements (the API, the dashboard and the admin).

Every cell goes through tenants.csv_cells: key, voice and tenant names are the tenant's text,
and a spreadsheet would run one that starts like a formula.
"""

import io

from analytics.operators import OperatorReport
from analytics.rollups import MEASURES
from analytics.selectors import UsageReport, UsageRow
from tenants.csv_cells import csv_writer

# The first column of a report's CSV, per grouping.
KEY_COLUMN = {"day": "day", "month": "month", "voice": "voice_id", "engine": "engine", "key": "api_key_id"}


def _measures(row: UsageRow) -> list:
    values = row.measures()
    return [values[name] for name in MEASURES]


def usage_report_csv(report: UsageReport) -> str:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow([KEY_COLUMN[report.group_by], "label", *MEASURES])
    for row in report.rows:
        writer.writerow([row.key if row.key is not None else "", row.label, *_measures(row)])
    return out.getvalue()


def usage_report_csv_filename(report: UsageReport) -> str:
    return f"parla-usage-{report.tenant.slug}-{report.start}-{report.end}-by-{report.group_by}.csv"


def statement_csv(*, days: UsageReport, voices: UsageReport) -> str:
    """A monthly statement: the header lines, then per-day and per-voice lines, then totals."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    tenant = days.tenant
    writer.writerow(["tenant", tenant.name, tenant.slug])
    writer.writerow(["period", days.start.isoformat(), days.end.isoformat(), days.time_zone])
    writer.writerow([])
    writer.writerow(["section", "key", *MEASURES])
    for row in days.rows:
        writer.writerow(["day", row.key, *_measures(row)])
    for row in voices.rows:
        writer.writerow(["voice", row.key, *_measures(row)])
    writer.writerow(["total", "", *_measures(days.totals)])
    if days.enrollments is not None:  # their own kind of usage: processing seconds, no characters
        enrolled = days.enrollments.totals
        writer.writerow([])
        writer.writerow(["section", "key", "enrollments", "succeeded", "failed", "processing_seconds"])
        writer.writerow(["voice_enrollments", "", enrolled.enrollments, enrolled.succeeded, enrolled.failed,
                         enrolled.processing_seconds])
    if days.cost is not None:
        writer.writerow([])
        writer.writerow(["cost_estimate", days.cost.currency, f"{days.cost.amount}",
                         f"{days.cost.price_text} per million billed characters"])
    return out.getvalue()


def operator_report_csv(report: OperatorReport) -> str:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(["tenant", "slug", "requests", "characters_billed", "audio_seconds", "cached_requests",
                     "cache_hit_rate", "errors"])
    for line in report.tenants:
        writer.writerow([line.tenant_name, line.tenant_slug, line.requests, line.characters_billed,
                         line.audio_seconds, line.cached_requests,
                         "" if line.cache_hit_rate is None else line.cache_hit_rate, line.errors])
    writer.writerow([])
    writer.writerow(["engine", "requests", "median_processing_seconds", "p95_processing_seconds"])
    for timing in report.engines:
        writer.writerow([timing.engine, timing.requests, timing.median_seconds, timing.p95_seconds])
    return out.getvalue()
