"""Reads for tenants and API keys. Every query starts from for_tenant()."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import QuerySet
from django.utils import timezone

from tenants.errors import NotFound
from tenants.keys import hash_secret
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Tenant, TenantQuota, UsagePeriod, User
from tenants.quotas import period_bounds


def api_key_by_prefix(*, prefix: str) -> ApiKey | None:
    """The key with this (globally unique) prefix, its tenant and the tenant's plan, or None."""
    return ApiKey.objects.select_related("tenant__plan").filter(prefix=prefix).order_by().first()


def api_key_list(*, tenant: Tenant, include_revoked: bool = True) -> QuerySet[ApiKey]:
    qs = ApiKey.objects.for_tenant(tenant).select_related("created_by")
    if not include_revoked:
        qs = qs.filter(revoked_at__isnull=True)
    return qs


def api_key_get(*, tenant: Tenant, api_key_id: int) -> ApiKey:
    api_key = api_key_list(tenant=tenant).filter(pk=api_key_id).first()
    if api_key is None:
        raise NotFound()
    return api_key


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    return Membership.objects.for_tenant(tenant).select_related("user")


def membership_get(*, tenant: Tenant, membership_id: int) -> Membership:
    membership = membership_list(tenant=tenant).filter(pk=membership_id).first()
    if membership is None:
        raise NotFound()
    return membership


def membership_list_for_user(*, user) -> QuerySet[Membership]:
    """The signed-in user's own memberships, across tenants (the dashboard's tenant switcher)."""
    return Membership.objects.filter(user=user, tenant__status=Tenant.Status.ACTIVE).select_related("tenant")


def invitation_list_pending(*, tenant: Tenant) -> QuerySet[Invitation]:
    """Invitations not accepted yet, expired ones included (the page says they expired)."""
    return Invitation.objects.for_tenant(tenant).filter(accepted_at__isnull=True).order_by("created_at")


def invitation_get(*, tenant: Tenant, invitation_id: int) -> Invitation:
    invitation = Invitation.objects.for_tenant(tenant).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound()
    return invitation


def invitation_get_by_token(*, token: str) -> Invitation:
    """The open invitation a link's token belongs to; unknown, used and expired tokens alike
    raise NotFound.

    SECURITY: the token is the credential here, like an API key, so the lookup is by its hash
    across tenants; the tenant comes from the invitation row, never from the URL.
    """
    if not token or len(token) > 128:
        raise NotFound("This invitation is no longer valid.")
    invitation = (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(token_hash=hash_secret(token), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        raise NotFound("This invitation is no longer valid.")
    return invitation


def user_has_account(*, email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def audit_event_list(*, tenant: Tenant) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.for_tenant(tenant)


@dataclass(frozen=True)
class UsageSummary:
    period_start: date
    period_end: datetime
    characters_limit: int
    characters_used: int
    characters_reserved: int
    characters_remaining: int
    concurrent_jobs_limit: int
    jobs_in_flight: int


def tenant_usage_summary(*, tenant: Tenant) -> UsageSummary:
    start, end = period_bounds(tenant=tenant)
    period = UsagePeriod.objects.for_tenant(tenant).filter(period_start=start).first()
    used = period.characters_used if period else 0
    reserved = period.characters_reserved if period else 0
    quota = TenantQuota.objects.for_tenant(tenant).first()
    limit = tenant.plan.monthly_characters
    return UsageSummary(
        period_start=start,
        period_end=end,
        characters_limit=limit,
        characters_used=used,
        characters_reserved=reserved,
        characters_remaining=max(0, limit - used - reserved),
        concurrent_jobs_limit=tenant.plan.concurrent_jobs,
        jobs_in_flight=quota.jobs_in_flight if quota else 0,
    )


def tenant_for_user(*, user, tenant_id: int | None = None) -> Tenant | None:
    """The tenant a signed-in user acts in: the chosen one if they belong, else their first."""
    memberships = Membership.objects.filter(user=user).select_related("tenant__plan")
    if tenant_id is not None:
        chosen = memberships.filter(tenant_id=tenant_id).first()
        if chosen is not None:
            return chosen.tenant
    first = memberships.order_by("created_at").first()
    return first.tenant if first else None


def membership_for_user(*, tenant: Tenant, user) -> Membership | None:
    """The user's membership in this tenant: who acts, for the services that check roles."""
    if user is None or not user.is_authenticated:
        return None
    return Membership.objects.for_tenant(tenant).filter(user=user).first()


def membership_role(*, tenant: Tenant, user) -> str | None:
    membership = membership_for_user(tenant=tenant, user=user)
    return membership.role if membership else None
