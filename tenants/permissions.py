from rest_framework.permissions import BasePermission

from tenants.authentication import scopes_for_request
from tenants.errors import InsufficientScope


class HasScope(BasePermission):
    """Allows the request when its credential holds the view's `required_scope`."""

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "required_scope", None)
        if required is None:
            return True
        if required not in scopes_for_request(request):
            raise InsufficientScope(f"This credential lacks the '{required}' scope.")
        return True
