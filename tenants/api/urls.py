from django.urls import path

from tenants.api.views import ApiKeyViewSet, TenantView
from tenants.api_base import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", TenantView.as_view(), name="tenant"),
    *router.urls,
]
