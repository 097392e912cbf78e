from django.utils.functional import SimpleLazyObject

from config.logging import log_context_bind
from tenants.authentication import SESSION_TENANT_KEY
from tenants.selectors import tenant_for_user


class TenantMiddleware:
    """Puts the signed-in user's active tenant on request.tenant for server-rendered pages.

    API views resolve the tenant themselves from the credential (tenants.api_base).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = SimpleLazyObject(lambda: self._tenant(request))
        return self.get_response(request)

    @staticmethod
    def _tenant(request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        tenant = tenant_for_user(user=user, tenant_id=request.session.get(SESSION_TENANT_KEY))
        if tenant is not None:
            log_context_bind(tenant_id=tenant.pk)
        return tenant
