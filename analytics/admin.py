from django.contrib import admin

from analytics.models import UsageRecord
from tenants.admin import ReadOnlyAdminMixin


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The usage ledger, append-only: one row per finished job."""

    list_display = ["created_at", "tenant", "api_key", "engine", "voice_id", "mode", "characters",
                    "characters_billed", "audio_seconds", "cached", "processing_seconds", "job"]
    list_filter = ["engine", "mode", "cached", "tenant"]
    search_fields = ["voice_id", "tenant__name", "=job__id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "api_key"]
