"""Operators' views of the ledger and the usage report across tenants."""

from django import forms
from django.contrib import admin
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from analytics.exports import operator_report_csv
from analytics.models import UsageDaily, UsageFailure, UsageRecord
from analytics.operators import usage_operator_report_all_tenants, usage_period_glance
from analytics.selectors import MAX_DATE, MAX_RANGE_DAYS, MIN_DATE
from tenants.admin import ReadOnlyAdminMixin, TenantAdmin
from tenants.models import Tenant


class TenantUsageAdmin(TenantAdmin):
    """The operators' tenant page, plus the current period as the ledger tells it (tenants sits
    below analytics, so the ledger's part is added here)."""

    readonly_fields = [*TenantAdmin.readonly_fields, "period_at_a_glance"]
    fields = [*TenantAdmin.fields]
    fields.insert(fields.index("usage_this_period") + 1, "period_at_a_glance")

    @admin.display(description="Current period at a glance")
    def period_at_a_glance(self, tenant: Tenant) -> str:
        if not tenant.pk:
            return "—"
        glance = usage_period_glance(tenant=tenant)
        usage = glance.summary
        return (
            f"{usage.characters_used:,} characters used, {usage.characters_reserved:,} held, "
            f"{usage.characters_remaining:,} remaining; {glance.requests:,} jobs, "
            f"{glance.audio_seconds:,.1f} s of audio, {glance.errors:,} failed ({usage.period_start:%B %Y})"
        )


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantUsageAdmin)


class OperatorReportForm(forms.Form):
    start = forms.DateField(label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (UTC)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if not (MIN_DATE <= start <= MAX_DATE and MIN_DATE <= end <= MAX_DATE):
                raise forms.ValidationError(f"Choose days between {MIN_DATE} and {MAX_DATE}.")
            if start > end:
                raise forms.ValidationError("The first day must not be after the last day.")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return cleaned


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The usage ledger, append-only: one row per finished job."""

    list_display = ["created_at", "tenant", "api_key", "user", "engine", "voice_id", "mode", "characters",
                    "characters_billed", "audio_seconds", "cached", "processing_seconds", "gpu_seconds", "job"]
    list_filter = ["engine", "mode", "cached", "tenant"]
    search_fields = ["voice_id", "tenant__name", "=job__id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "api_key", "user"]
    change_list_template = "admin/analytics/usagerecord/change_list.html"

    def get_urls(self):
        report = path("report/", self.admin_site.admin_view(self.report_view), name="analytics_usage_report")
        return [report, *super().get_urls()]

    def report_view(self, request):
        """Top tenants, errors, cache hits and processing times across tenants, with a CSV."""
        today = timezone.now().date()
        initial = {"start": today.replace(day=1), "end": today}
        form = OperatorReportForm(request.GET or initial)
        report = None
        if form.is_valid():
            report = usage_operator_report_all_tenants(start=form.cleaned_data["start"], end=form.cleaned_data["end"])
            if request.GET.get("format") == "csv":
                response = HttpResponse(operator_report_csv(report), content_type="text/csv; charset=utf-8")
                name = f"parla-usage-all-tenants-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Usage report",
            "form": form,
            "report": report,
            "top_characters": report.top("characters_billed") if report else [],
            "top_audio": report.top("audio_seconds") if report else [],
            "top_errors": [line for line in report.top("errors") if line.errors] if report else [],
            "changelist_url": reverse("admin:analytics_usagerecord_changelist"),
            "csv_query": request.GET.urlencode() if request.GET else
            f"start={initial['start']}&end={initial['end']}",
            "tenant_change_url": "admin:tenants_tenant_change",
        }
        return TemplateResponse(request, "admin/analytics/usage_report.html", context)


@admin.register(UsageFailure)
class UsageFailureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Failed jobs, counted as errors in the reports (append-only)."""

    list_display = ["created_at", "tenant", "api_key", "engine", "voice_id", "mode", "error_code", "job"]
    list_filter = ["engine", "error_code", "tenant"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "api_key"]


@admin.register(UsageDaily)
class UsageDailyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Daily rollups (built from the ledger; `manage.py usage_rollup` rebuilds them)."""

    list_display = ["day", "tenant", "voice_id", "engine", "api_key", "requests", "characters_billed",
                    "audio_seconds", "cached_requests", "errors"]
    list_filter = ["engine", "tenant"]
    date_hierarchy = "day"
    list_select_related = ["tenant", "api_key"]
