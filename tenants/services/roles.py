"""Who may do what in a tenant.

Role rules live in the services, not in the views, so that every way in (dashboard, API, a
future one) obeys them. The services that manage members, invitations and keys take `actor`:
the membership acting, or None when no member acts (a management command, an operator in the
admin, an API key whose scopes the API checked). There is no default, so each caller says.
"""

from tenants.errors import Forbidden
from tenants.models import Membership, Tenant

# Roles that manage keys, members, invitations and settings.
MANAGER_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})


def acting_role(*, tenant: Tenant, actor: Membership | None) -> str | None:
    """The acting member's role, read again now (after the caller's lock, if it took one).

    SECURITY: the role the request started with may be stale (demoted or removed meanwhile),
    and a membership of another tenant has no rights here; both are refused."""
    if actor is None:
        return None
    role = Membership.objects.for_tenant(tenant).filter(pk=actor.pk).values_list("role", flat=True).first()
    if role is None:
        raise Forbidden("You are not a member of this workspace.")
    return role


def manager_required(*, tenant: Tenant, actor: Membership | None, action: str) -> str | None:
    """The actor's role (None: no member acts), or Forbidden unless it is owner or admin."""
    role = acting_role(tenant=tenant, actor=actor)
    if actor is not None and role not in MANAGER_ROLES:
        raise Forbidden(f"Only owners and admins can {action}.", extra={"role": role})
    return role


def owner_or_system(role: str | None, actor: Membership | None) -> bool:
    return actor is None or role == Membership.Role.OWNER

