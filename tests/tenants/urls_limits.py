"""A test-only endpoint that reserves quota and a job slot through the real base view."""

from django.urls import include, path
from rest_framework.response import Response

from tenants.api_base import TenantScopedAPIView
from tenants.quotas import job_slot_acquire, quota_reserve


class ReserveView(TenantScopedAPIView):
    required_scope = "speech"

    def post(self, request):
        quota_reserve(tenant=request.tenant, characters=int(request.data["characters"]))
        if request.data.get("job"):
            job_slot_acquire(tenant=request.tenant)
        return Response({"ok": True}, status=202)


urlpatterns = [
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/test-reserve", ReserveView.as_view()),
]
