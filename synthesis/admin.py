from django.contrib import admin

from synthesis.models import CachedAudio
from tenants.admin import ReadOnlyAdminMixin


@admin.register(CachedAudio)
class CachedAudioAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the audio cache holds and how often it serves."""

    list_display = ["created_at", "tenant", "voice_id", "engine", "format", "duration_seconds", "size_bytes", "hits", "last_hit_at"]
    list_filter = ["engine", "format", "tenant"]
    search_fields = ["voice_id", "key", "tenant__name"]
    date_hierarchy = "created_at"
