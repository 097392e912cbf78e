"""Usage reports for the caller's tenant: JSON and CSV, read from the rollups."""

import datetime as dt

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from analytics.api.serializers import UsageQueryInputSerializer, UsageReportOutputSerializer
from analytics.exports import usage_report_csv, usage_report_csv_filename
from analytics.selectors import GROUP_BY, MAX_RANGE_DAYS, UsageReport, month_bounds, tenant_today, usage_report
from synthesis.api.responses import AnyAcceptNegotiation
from tenants.api_base import TenantScopedAPIView
from tenants.models import ApiKey

PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day, in the tenant's time zone (default: the "
                     "first day of the current month)."),
    OpenApiParameter("to", OpenApiTypes.DATE, description=f"Last day, included (default: today). At most "
                     f"{MAX_RANGE_DAYS} days after from."),
    OpenApiParameter("group_by", str, enum=list(GROUP_BY), description="Rows per day (default), month, voice, "
                     "engine or API key."),
]
ERRORS = {400: OpenApiResponse(description="validation_error: a bad date, from after to, a range over "
                                           f"{MAX_RANGE_DAYS} days or an unknown group_by (`extra.fields`).")}
DESCRIPTION = ("Your usage: jobs that produced audio (requests), characters, characters billed (cached audio is "
               "free), audio and processing seconds, cache hits, and failed jobs (errors, not charged). Voice "
               "enrollments are reported apart (`enrollments`: count and processing seconds, no characters). Days "
               "are in your tenant's time zone. Exact at once: jobs finished a moment ago are included.")


def report_from_request(request: Request) -> UsageReport:
    query = UsageQueryInputSerializer(data=request.query_params.dict())
    query.is_valid(raise_exception=True)
    values = query.validated_data
    tenant = request.tenant
    end: dt.date = values.get("to") or tenant_today(tenant=tenant)
    start: dt.date = values.get("from") or month_bounds(end)[0]
    return usage_report(tenant=tenant, start=start, end=end, group_by=values["group_by"])


def report_data(report: UsageReport) -> dict:
    quota = report.quota
    return {
        "from": report.start,
        "to": report.end,
        "time_zone": report.time_zone,
        "group_by": report.group_by,
        "rows": report.rows,
        "totals": report.totals,
        "quota": {
            "period_start": quota.period_start,
            "period_end": quota.period_end,
            "characters_limit": quota.characters_limit,
            "characters_used": quota.characters_used,
            "characters_held": quota.characters_reserved,
            "characters_remaining": quota.characters_remaining,
        },
        "cost": report.cost,
        "enrollments": report.enrollments,
    }


class UsageView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.USAGE.value

    @extend_schema(operation_id="usage_retrieve", parameters=PARAMETERS, tags=["usage"], description=DESCRIPTION,
                   responses={200: UsageReportOutputSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(UsageReportOutputSerializer(report_data(report_from_request(request))).data)


class UsageCsvView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.USAGE.value
    # The answer is CSV whatever Accept asks for; errors still come as JSON.
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        operation_id="usage_csv", parameters=PARAMETERS, tags=["usage"],
        description="The rows of GET /api/v1/usage as CSV: the grouping's column, label, then the measures.",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row."),
                   **ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        report = report_from_request(request)
        response = HttpResponse(usage_report_csv(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{usage_report_csv_filename(report)}"'
        return response
