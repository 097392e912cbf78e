from django.contrib import admin

from batches.models import Batch, WebhookDelivery
from tenants.admin import ReadOnlyAdminMixin


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "url", "status", "attempts", "last_status_code", "last_error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "created_at", "tenant", "name", "status", "items_total", "characters_total",
                    "export_status", "finished_at"]
    list_filter = ["status", "export_status", "tenant"]
    search_fields = ["=id", "name", "tenant__name", "source_filename"]
    date_hierarchy = "created_at"
    inlines = [WebhookDeliveryInline]
    list_select_related = ["tenant"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The delivery log: what was sent where, how often, and what the receiver answered."""

    list_display = ["created_at", "tenant", "event", "url", "status", "attempts", "last_status_code",
                    "delivered_at"]
    list_filter = ["status", "event", "tenant"]
    search_fields = ["url", "tenant__name", "last_error"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant"]
