from dataclasses import asdict

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tenants.api.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyOutputSerializer,
    TenantOutputSerializer,
    WebhookSettingsInputSerializer,
    WebhookSettingsOutputSerializer,
)
from tenants.api_base import CreatedAtCursorPagination, TenantScopedAPIView, TenantScopedViewSet
from tenants.authentication import membership_for_request, scopes_for_request
from tenants.models import ApiKey
from tenants.selectors import tenant_usage_summary
from tenants.services import (
    AuditContext,
    api_key_create,
    api_key_revoke,
    tenant_webhook_secret_rotate,
    tenant_webhook_url_set,
)


class TenantView(TenantScopedAPIView):
    required_scope = None

    @extend_schema(operation_id="tenant_retrieve", responses=TenantOutputSerializer, tags=["tenant"])
    def get(self, request: Request) -> Response:
        tenant = request.tenant
        data = {
            "id": tenant.pk,
            "name": tenant.name,
            "slug": tenant.slug,
            "status": tenant.status,
            "time_zone": tenant.time_zone,
            "plan": tenant.plan,
            "limits": tenant.plan.limits(),
            "usage": asdict(tenant_usage_summary(tenant=tenant)),
        }
        return Response(TenantOutputSerializer(data).data)


class ApiKeyViewSet(TenantScopedViewSet):
    queryset = ApiKey.objects  # Scoped by the base class.
    required_scope = ApiKey.Scope.KEYS.value
    pagination_class = CreatedAtCursorPagination
    serializer_class = ApiKeyOutputSerializer
    lookup_value_regex = r"\d+"

    def scope_queryset(self, qs):
        return qs.select_related("created_by")

    @extend_schema(responses=ApiKeyOutputSerializer(many=True), tags=["keys"])
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOutputSerializer(page, many=True).data)

    @extend_schema(
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
        tags=["keys"],
    )
    def create(self, request: Request) -> Response:
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        scopes = serializer.validated_data.get("scopes") or sorted(scopes_for_request(request))
        created = api_key_create(
            tenant=request.tenant,
            actor=membership_for_request(request),
            name=serializer.validated_data["name"],
            scopes=scopes,
            context=AuditContext.from_request(request),
        )
        created.api_key.key = created.plaintext
        return Response(
            ApiKeyCreatedOutputSerializer(created.api_key).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses={204: None}, tags=["keys"])
    def destroy(self, request: Request, pk: str) -> Response:
        api_key_revoke(
            tenant=request.tenant, actor=membership_for_request(request), api_key=self.get_object(),
            context=AuditContext.from_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


def _webhook_settings(tenant) -> dict:
    from tenants.outbound import SIGNATURE_HEADER

    return {"url": tenant.webhook_url, "secret": tenant.webhook_secret, "signature_header": SIGNATURE_HEADER}


class WebhookSettingsView(TenantScopedAPIView):
    """The tenant's default webhook receiver and signing secret."""

    # SECURITY: whoever sets the receiver or reads the secret can redirect or forge batch events:
    # owners and admins, or keys given the admin scope.
    required_scope = ApiKey.Scope.ADMIN.value

    @extend_schema(operation_id="tenant_webhook_retrieve", responses=WebhookSettingsOutputSerializer,
                   tags=["tenant"])
    def get(self, request: Request) -> Response:
        return Response(WebhookSettingsOutputSerializer(_webhook_settings(request.tenant)).data)

    @extend_schema(operation_id="tenant_webhook_update", request=WebhookSettingsInputSerializer,
                   responses={200: WebhookSettingsOutputSerializer,
                              400: OpenApiResponse(description="validation_error, webhook_url_not_allowed")},
                   tags=["tenant"])
    def put(self, request: Request) -> Response:
        serializer = WebhookSettingsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = tenant_webhook_url_set(tenant=request.tenant, url=serializer.validated_data["url"],
                                        context=AuditContext.from_request(request))
        return Response(WebhookSettingsOutputSerializer(_webhook_settings(tenant)).data)


class WebhookSecretRotateView(TenantScopedAPIView):
    required_scope = ApiKey.Scope.ADMIN.value

    @extend_schema(operation_id="tenant_webhook_secret_rotate", request=None,
                   responses=WebhookSettingsOutputSerializer, tags=["tenant"],
                   description="A new signing secret, effective for the next delivery.")
    def post(self, request: Request) -> Response:
        tenant_webhook_secret_rotate(tenant=request.tenant, context=AuditContext.from_request(request))
        request.tenant.refresh_from_db()
        return Response(WebhookSettingsOutputSerializer(_webhook_settings(request.tenant)).data)
