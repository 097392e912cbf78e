from django.contrib import admin

from synthesis.models import CachedAudio, SynthesisJob
from tenants.admin import ReadOnlyAdminMixin


@admin.register(CachedAudio)
class CachedAudioAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the audio cache holds and how often it serves."""

    list_display = ["created_at", "tenant", "voice_id", "engine", "format", "duration_seconds", "size_bytes", "hits",
                    "last_hit_at"]
    list_filter = ["engine", "format", "tenant"]
    search_fields = ["voice_id", "key", "tenant__name"]
    date_hierarchy = "created_at"


@admin.register(SynthesisJob)
class SynthesisJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every piece of synthesis work, for operators chasing a tenant's report."""

    list_display = ["id", "created_at", "tenant", "mode", "status", "engine", "voice_id", "characters",
                    "audio_seconds", "cache_hit", "attempts", "error_code", "queue_name"]
    list_filter = ["status", "mode", "engine", "queue_name", "cache_hit", "tenant"]
    search_fields = ["=id", "voice_id", "tenant__name", "error_code", "worker_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
