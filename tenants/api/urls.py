from django.urls import path

from tenants.api.views import ApiKeyViewSet, TenantView, WebhookSecretRotateView, WebhookSettingsView
from tenants.api_base import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", TenantView.as_view(), name="tenant"),
    path("tenant/webhook", WebhookSettingsView.as_view(), name="tenant-webhook"),
    path("tenant/webhook/rotate-secret", WebhookSecretRotateView.as_view(), name="tenant-webhook-rotate"),
    *router.urls,
]
