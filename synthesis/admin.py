from django.contrib import admin

from synthesis.models import CachedAudio


@admin.register(CachedAudio)
class CachedAudioAdmin(admin.ModelAdmin):
    """Operators see what the audio cache holds and how often it serves; entries are read-only."""

    list_display = ["created_at", "tenant", "voice_id", "engine", "format", "duration_seconds", "size_bytes", "hits", "last_hit_at"]
    list_filter = ["engine", "format", "tenant"]
    search_fields = ["voice_id", "key", "tenant__name"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
