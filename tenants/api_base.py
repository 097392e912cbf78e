"""The base classes every API view derives from.

They take the tenant from the credential (never from the URL or the body), apply the
tenant's rate limit, and scope every queryset with for_tenant(). Subclasses cannot
override the scoping: __init_subclass__ refuses it at import time.
"""

from typing import ClassVar

from rest_framework import viewsets
from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination, CursorPagination
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from tenants.authentication import tenant_for_request
from tenants.errors import RateLimited
from tenants.ratelimit import tenant_rate_limit_hit

_SEALED = ("perform_authentication", "get_queryset", "get_object", "initial", "finalize_response")
_UNSET = object()


class TenantScopedMixin:
    # The API key scope a view needs; None means any valid credential of the tenant.
    required_scope: ClassVar[str | None | object] = _UNSET

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__ and not cls.__dict__.get("_parla_base", False):
                raise TypeError(
                    f"{cls.__name__} must not override {name}; override scope_queryset()"
                )
        if not cls.__dict__.get("_parla_base", False) and cls.required_scope is _UNSET:
            raise TypeError(f"{cls.__name__} must declare required_scope (a scope or None)")

    def perform_authentication(self, request):
        super().perform_authentication(request)
        # Runs before permission checks: a request without a tenant goes no further.
        request.tenant = tenant_for_request(request)
        self._apply_rate_limit(request)

    def _apply_rate_limit(self, request) -> None:
        result = tenant_rate_limit_hit(tenant=request.tenant)
        request.parla_rate_limit = result
        if not result.allowed:
            raise RateLimited(
                "Too many requests for this plan; slow down.",
                extra={"limit": result.limit, "window_seconds": 60},
                retry_after=result.reset_seconds,
            )
        api_key = getattr(request, "auth", None)
        if api_key is not None:
            from tenants.services import api_key_touch

            api_key_touch(api_key=api_key)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        result = getattr(request, "parla_rate_limit", None)
        if result is not None:
            for header, value in result.headers().items():
                response[header] = value
        return response


class TenantScopedAPIView(TenantScopedMixin, APIView):
    """A single-resource endpoint of the caller's tenant (e.g. GET /api/v1/tenant)."""

    _parla_base = True


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    """A collection of the caller's tenant's objects."""

    _parla_base = True

    def get_queryset(self):
        return self.scope_queryset(self.queryset.for_tenant(self.request.tenant))

    def scope_queryset(self, qs):
        return qs


class CreatedAtCursorPagination(CursorPagination):
    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # DRF silently falls back to the default for a bad page_size; say so instead.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            from tenants.errors import ApplicationError

            raise ApplicationError(
                f"page_size must be a whole number from 1 to {self.max_page_size}.",
                extra={"fields": {self.page_size_query_param: ["Invalid page size."]}},
            )
        return super().get_page_size(request)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF answers a malformed cursor with 404; it is a bad request.
            from tenants.errors import ApplicationError

            raise ApplicationError(
                "The cursor is not one this API gave out.", extra={"fields": {"cursor": ["Invalid cursor."]}}
            ) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters


class ResultsEnvelope(BasePagination):
    """Short lists that need no pages, wrapped like paginated ones: {"results": [...]}."""

    def paginate_queryset(self, queryset, request, view=None):
        return list(queryset)

    def get_paginated_response(self, data):
        return Response({"results": data})

    def get_paginated_response_schema(self, schema):
        return {"type": "object", "properties": {"results": schema}, "required": ["results"]}


class OptionalSlashRouter(SimpleRouter):
    """Routes answer with or without a trailing slash (/api/v1/keys and /api/v1/keys/)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"
