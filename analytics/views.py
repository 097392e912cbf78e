"""The Usage page, its CSV, and the monthly statement (HTML to print, and CSV)."""

import datetime as dt
from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analytics.charts import bar_chart
from analytics.exports import statement_csv, usage_report_csv, usage_report_csv_filename
from analytics.forms import PERIODS, UsagePeriodForm
from analytics.selectors import (
    MAX_DATE,
    MIN_DATE,
    UsageReport,
    month_bounds,
    tenant_today,
    usage_daily_series,
    usage_report,
)
from tenants.dashboard import tenant_page

STATEMENT_MONTHS = 12


def _share(rows, total: float, measure: str = "characters") -> list[dict]:
    """Rows with their share of the total, for the breakdown tables' bars."""
    return [{"row": row, "percent": round(100 * getattr(row, measure) / total, 1) if total else 0} for row in rows]


def _recent_months(today: dt.date) -> list[dt.date]:
    months, first = [], today.replace(day=1)
    for _ in range(STATEMENT_MONTHS):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months


@require_GET
@tenant_page
def usage_page(request):
    tenant = request.tenant
    today = tenant_today(tenant=tenant)
    form = UsagePeriodForm(request.GET, today=today)
    if form.is_valid():
        start, end, period = form.cleaned_data["start"], form.cleaned_data["end"], form.cleaned_data["period"]
    else:
        start, end, period = month_bounds(today)[0], today, "invalid"
    days = usage_report(tenant=tenant, start=start, end=end, group_by="day")
    series = usage_daily_series(days)
    breakdowns = []
    for group_by, title, heading in (("voice", "By voice", "Voice"), ("engine", "By engine", "Engine"),
                                     ("key", "By API key", "Key")):
        report = usage_report(tenant=tenant, start=start, end=end, group_by=group_by)
        breakdowns.append({"id": group_by, "title": title, "heading": heading,
                           "rows": _share(report.rows, days.totals.characters)})
    quota = days.quota
    query = urlencode({"from": start.isoformat(), "to": end.isoformat()})
    return render(request, "analytics/usage.html", {
        "form": form,
        "period": period,
        "periods": [{"value": value, "label": label, "url": f"?{urlencode({'period': value})}"}
                    for value, label in PERIODS if value != "custom"],
        "start": start,
        "end": end,
        "report": days,
        "totals": days.totals,
        "series": series,
        "charts": [
            bar_chart(chart_id="chart-characters", title="Characters per day", unit="characters",
                      x_axis=f"Day ({tenant.time_zone})",
                      points=[(dt.date.fromisoformat(row.key), row.characters) for row in series]),
            bar_chart(chart_id="chart-audio", title="Audio seconds per day", unit="seconds",
                      x_axis=f"Day ({tenant.time_zone})", decimals=1,
                      points=[(dt.date.fromisoformat(row.key), round(row.audio_seconds, 1)) for row in series]),
        ],
        "breakdowns": breakdowns,
        "quota": quota,
        "quota_percent": min(100, round(100 * (quota.characters_used + quota.characters_reserved)
                                        / quota.characters_limit, 1)) if quota.characters_limit else 100,
        "csv_url": f"{reverse('analytics:usage-csv')}?{query}&group_by=day",
        "months": _recent_months(today),
        "min_date": MIN_DATE,
        "max_date": MAX_DATE,
    })


def _csv_response(content: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@tenant_page
def usage_csv(request):
    form = UsagePeriodForm(request.GET, today=tenant_today(tenant=request.tenant))
    if not form.is_valid():
        messages = [error for errors in form.errors.values() for error in errors]
        return HttpResponse(" ".join(messages), status=400, content_type="text/plain; charset=utf-8")
    data = form.cleaned_data
    report = usage_report(tenant=request.tenant, start=data["start"], end=data["end"], group_by=data["group_by"])
    return _csv_response(usage_report_csv(report), usage_report_csv_filename(report))


def _statement(request, month: dt.date) -> tuple[UsageReport, UsageReport]:
    if not MIN_DATE <= month <= MAX_DATE:
        raise Http404("No such month.")
    start, end = month_bounds(month)
    days = usage_report(tenant=request.tenant, start=start, end=end, group_by="day")
    voices = usage_report(tenant=request.tenant, start=start, end=end, group_by="voice")
    return days, voices


@require_GET
@tenant_page
def statement_page(request, month: dt.date):
    days, voices = _statement(request, month)
    today = tenant_today(tenant=request.tenant)
    return render(request, "analytics/statement.html", {
        "days": days,
        "voices": voices,
        "totals": days.totals,
        "month": month,
        "complete": days.end < today,
        "generated_at": dt.datetime.now(request.tenant.tzinfo),
    })


@require_GET
@tenant_page
def statement_csv_download(request, month: dt.date):
    days, voices = _statement(request, month)
    return _csv_response(statement_csv(days=days, voices=voices),
                         f"parla-statement-{request.tenant.slug}-{month:%Y-%m}.csv")
