"""Credentials: API keys (Bearer or X-API-Key) and dashboard sessions."""

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from config.logging import log_context_bind
from tenants.errors import ApiKeyRevoked, InvalidApiKey, NoTenant, TenantSuspended
from tenants.keys import secret_matches, split_prefix
from tenants.models import ApiKey, Membership, Tenant
from tenants.selectors import api_key_by_prefix, membership_for_user, tenant_for_user

SESSION_TENANT_KEY = "parla_tenant_id"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def _presented_key(self, request) -> str | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != self.keyword.lower():
                return None  # Another scheme (e.g. Basic): not ours to judge.
            value = value.strip()
            if not value or " " in value:
                raise InvalidApiKey("Malformed Authorization header; use 'Bearer <key>'.")
            return value
        value = request.META.get("HTTP_X_API_KEY", "").strip()
        return value or None

    def authenticate(self, request):
        presented = self._presented_key(request)
        if presented is None:
            return None
        prefix = split_prefix(presented)
        if prefix is None:
            raise InvalidApiKey()
        # The key itself names its tenant, so this lookup is by the globally unique prefix.
        api_key = api_key_by_prefix(prefix=prefix)
        if api_key is None or not secret_matches(presented, api_key.secret_hash):
            raise InvalidApiKey()
        if api_key.is_revoked:
            raise ApiKeyRevoked()
        log_context_bind(tenant_id=api_key.tenant_id)  # every later log line of the request
        if not api_key.tenant.is_active:
            raise TenantSuspended()
        return AnonymousUser(), api_key

    def authenticate_header(self, request) -> str:
        # Without this DRF would answer a missing key with 403 instead of 401.
        return f'{self.keyword} realm="parla"'


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """Dashboard sessions (CSRF enforced by the parent class)."""


def tenant_for_request(request, *, allow_suspended: bool = False) -> Tenant:
    """The tenant a request acts for, from its credential only (never from URL or body).

    The one lookup behind the API base views, the dashboard pages and TenantMiddleware.
    `allow_suspended` is for the middleware alone: templates still name a suspended
    workspace (and offer the switch to another), while every page and API view refuses it.
    """
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return auth.tenant
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise exceptions.NotAuthenticated("Authentication credentials were not provided.")
    tenant = tenant_for_user(user=user, tenant_id=request.session.get(SESSION_TENANT_KEY))
    if tenant is None:
        raise NoTenant()
    log_context_bind(tenant_id=tenant.pk)
    if not tenant.is_active and not allow_suspended:
        raise TenantSuspended()
    return tenant


def membership_for_request(request) -> Membership | None:
    """The membership a dashboard session acts with in request.tenant, for the services that
    check roles. None for API-key requests: a key's scopes stand in for a role."""
    if isinstance(getattr(request, "auth", None), ApiKey):
        return None
    tenant = getattr(request, "tenant", None)
    if not tenant:  # none resolved (the middleware's lazy None is falsy)
        return None
    return membership_for_user(tenant=tenant, user=getattr(request, "user", None))


# Dashboard users act with scopes that follow their role: members neither manage keys nor
# the tenant's settings.
_ROLE_SCOPES = {
    Membership.Role.OWNER: {scope.value for scope in ApiKey.Scope},
    Membership.Role.ADMIN: {scope.value for scope in ApiKey.Scope},
    Membership.Role.MEMBER: (
        {scope.value for scope in ApiKey.Scope} - {ApiKey.Scope.KEYS.value, ApiKey.Scope.ADMIN.value}
    ),
}


def scopes_for_request(request) -> set[str]:
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return set(auth.scopes)
    membership = membership_for_request(request)
    return _ROLE_SCOPES.get(membership.role, set()) if membership else set()
