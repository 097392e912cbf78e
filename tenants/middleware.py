from django.utils.functional import SimpleLazyObject
from rest_framework.exceptions import NotAuthenticated

from tenants.authentication import tenant_for_request
from tenants.errors import NoTenant


class TenantMiddleware:
    """Puts the signed-in user's active tenant on request.tenant for server-rendered pages.

    It asks tenant_for_request, the one lookup the API base views and the dashboard pages use,
    so a template can never name a tenant the credential does not act for. API views resolve
    the tenant again from their own credential (tenants.api_base).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = SimpleLazyObject(lambda: self._tenant(request))
        return self.get_response(request)

    @staticmethod
    def _tenant(request):
        try:
            # A suspended workspace is still named: its page says so and offers the switcher.
            # Pages themselves refuse it (tenants.dashboard.tenant_page).
            return tenant_for_request(request, allow_suspended=True)
        except (NotAuthenticated, NoTenant):
            return None
