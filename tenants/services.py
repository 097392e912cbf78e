"""Writes for tenants, members, API keys and the audit log."""

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from config.client_address import client_address
from tenants.errors import ApplicationError, Forbidden, InvalidState, NotFound
from tenants.keys import generate_key, hash_secret
from tenants.models import ApiKey, AuditEvent, Invitation, Membership, Plan, Tenant, TenantQuota
from tenants.outbound import webhook_url_validate

logger = logging.getLogger(__name__)
User = get_user_model()

ALL_SCOPES = [scope.value for scope in ApiKey.Scope]
# Roles that manage keys, members, invitations and settings.
MANAGER_ROLES = frozenset({Membership.Role.OWNER, Membership.Role.ADMIN})


@dataclass(frozen=True)
class AuditContext:
    """Who is acting and from where; built from a request, a command or a worker."""

    user: Any = None
    api_key: ApiKey | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> "AuditContext":
        api_key = request.auth if isinstance(getattr(request, "auth", None), ApiKey) else None
        user = request.user if getattr(request.user, "is_authenticated", False) else None
        return cls(
            user=user,
            api_key=api_key,
            ip_address=client_address(request) or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        )


SYSTEM = AuditContext()


def audit_event_record(
    *,
    tenant: Tenant,
    action: str,
    context: AuditContext = SYSTEM,
    obj: Any = None,
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        tenant=tenant,
        action=action,
        actor_user=context.user,
        actor_api_key=context.api_key,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        extra=extra or {},
    )


def plan_default() -> Plan:
    plan = Plan.objects.filter(slug=settings.PARLA_DEFAULT_PLAN).first()
    if plan is None:
        raise ApplicationError(
            f"The default plan {settings.PARLA_DEFAULT_PLAN!r} does not exist; run migrations."
        )
    return plan


@transaction.atomic
def tenant_create(
    *,
    name: str,
    slug: str | None = None,
    plan: Plan | None = None,
    time_zone: str = "UTC",
    context: AuditContext = SYSTEM,
) -> Tenant:
    tenant = Tenant(
        name=name,
        slug=slug or slugify(name),
        plan=plan or plan_default(),
        time_zone=time_zone,
        webhook_secret=secrets.token_urlsafe(32),
    )
    tenant.full_clean()
    tenant.save()
    TenantQuota.objects.create(tenant=tenant)
    audit_event_record(
        tenant=tenant, action="tenant.created", context=context, obj=tenant,
        extra={"plan": tenant.plan.slug},
    )
    return tenant


@transaction.atomic
def tenant_update(
    *, tenant: Tenant, context: AuditContext = SYSTEM, **changes: Any
) -> Tenant:
    """Change name, plan, status or time zone; plan and status changes are audited."""
    allowed = {"name", "plan", "status", "time_zone"}
    if unknown := set(changes) - allowed:
        raise ValueError(f"tenant_update cannot change {sorted(unknown)}")
    before = {field: getattr(tenant, field) for field in changes}
    for field, value in changes.items():
        setattr(tenant, field, value)
    tenant.full_clean()
    tenant.save()
    for field, old in before.items():
        new = getattr(tenant, field)
        if old != new and field in {"plan", "status"}:
            audit_event_record(
                tenant=tenant, action=f"tenant.{field}_changed", context=context, obj=tenant,
                extra={"from": str(old), "to": str(new)},
            )
    return tenant


@transaction.atomic
def tenant_webhook_secret_rotate(*, tenant: Tenant, context: AuditContext = SYSTEM) -> str:
    tenant.webhook_secret = secrets.token_urlsafe(32)
    tenant.save(update_fields=["webhook_secret", "updated_at"])
    audit_event_record(tenant=tenant, action="tenant.webhook_secret_rotated", context=context, obj=tenant)
    return tenant.webhook_secret


# --- Who may do what --------------------------------------------------------------------------
#
# Role rules live here, not in the views, so that every way in (dashboard, API, a future one)
# obeys them. The services that manage members, invitations and keys take `actor`: the
# membership acting, or None when no member acts (a management command, an operator in the
# admin, an API key whose scopes the API checked). There is no default, so each caller says.


def _actor_role(*, tenant: Tenant, actor: Membership | None) -> str | None:
    """The acting member's role, read again now (after the caller's lock, if it took one).

    SECURITY: the role the request started with may be stale (demoted or removed meanwhile),
    and a membership of another tenant has no rights here; both are refused."""
    if actor is None:
        return None
    role = Membership.objects.for_tenant(tenant).filter(pk=actor.pk).values_list("role", flat=True).first()
    if role is None:
        raise Forbidden("You are not a member of this workspace.")
    return role


def _require_manager(*, tenant: Tenant, actor: Membership | None, action: str) -> str | None:
    """The actor's role (None: no member acts), or Forbidden unless it is owner or admin."""
    role = _actor_role(tenant=tenant, actor=actor)
    if actor is not None and role not in MANAGER_ROLES:
        raise Forbidden(f"Only owners and admins can {action}.", extra={"role": role})
    return role


def _is_owner_or_system(role: str | None, actor: Membership | None) -> bool:
    return actor is None or role == Membership.Role.OWNER


def _keeps_an_owner(*, tenant: Tenant, without: Membership) -> None:
    if not (
        Membership.objects.for_tenant(tenant).filter(role=Membership.Role.OWNER).exclude(pk=without.pk).exists()
    ):
        raise InvalidState("A tenant needs at least one owner; make someone else owner first.")


def _membership_for_change(
    *, tenant: Tenant, actor: Membership | None, membership: Membership, action: str
) -> tuple[Membership, str | None]:
    """Lock the tenant row, check that the actor manages members, and read the membership
    afresh: (membership, the actor's role).

    NOTE: the tenant row lock serialises every role change and removal of the tenant, so two
    owners demoting or removing each other at once cannot leave it without an owner, and the
    roles read after it are current."""
    Tenant.objects.select_for_update().get(pk=tenant.pk)
    actor_role = _require_manager(tenant=tenant, actor=actor, action=action)
    found = Membership.objects.for_tenant(tenant).select_related("user").filter(pk=membership.pk).first()
    if found is None:
        raise NotFound()
    return found, actor_role


@transaction.atomic
def membership_create(
    *, tenant: Tenant, actor: Membership | None, user, role: str = Membership.Role.MEMBER,
    context: AuditContext = SYSTEM,
) -> Membership:
    """Add a user with a role. Owners and admins add members; only owners add owners."""
    actor_role = _require_manager(tenant=tenant, actor=actor, action="add members")
    if role == Membership.Role.OWNER and not _is_owner_or_system(actor_role, actor):
        raise Forbidden("Only an owner can make someone owner.")
    membership = Membership(tenant=tenant, user=user, role=role)
    membership.full_clean()
    membership.save()
    audit_event_record(
        tenant=tenant, action="membership.created", context=context, obj=membership,
        extra={"user": user.get_username(), "role": role},
    )
    return membership


@transaction.atomic
def membership_delete(
    *, tenant: Tenant, actor: Membership | None, membership: Membership, context: AuditContext = SYSTEM
) -> None:
    """Remove a member. Owners and admins remove others, but only an owner removes an owner,
    nobody removes themselves here, and a tenant always keeps at least one owner."""
    membership, actor_role = _membership_for_change(
        tenant=tenant, actor=actor, membership=membership, action="remove members"
    )
    if actor is not None and membership.pk == actor.pk:
        raise InvalidState("You cannot remove yourself. Ask another owner or admin.")
    if membership.role == Membership.Role.OWNER:
        if not _is_owner_or_system(actor_role, actor):
            raise Forbidden("Only an owner can remove an owner.")
        _keeps_an_owner(tenant=tenant, without=membership)
    audit_event_record(
        tenant=tenant, action="membership.deleted", context=context, obj=membership,
        extra={"user": membership.user.get_username(), "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def membership_role_change(
    *, tenant: Tenant, actor: Membership | None, membership: Membership, role: str,
    context: AuditContext = SYSTEM,
) -> Membership:
    """Give a member another role. Owners and admins change roles, but only owners make an
    owner or change an owner's role, nobody changes their own role here, and a tenant always
    keeps at least one owner."""
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", extra={"allowed": list(Membership.Role.values)})
    membership, actor_role = _membership_for_change(
        tenant=tenant, actor=actor, membership=membership, action="change roles"
    )
    if actor is not None and membership.pk == actor.pk:
        raise InvalidState("You cannot change your own role. Ask another owner.")
    previous = membership.role
    if Membership.Role.OWNER in (role, previous) and not _is_owner_or_system(actor_role, actor):
        # SECURITY: only owners make owners or change an owner's role.
        raise Forbidden("Only an owner can make someone owner or change an owner's role.")
    if previous == role:
        return membership
    if previous == Membership.Role.OWNER:
        _keeps_an_owner(tenant=tenant, without=membership)
    membership.role = role
    membership.save(update_fields=["role"])
    audit_event_record(
        tenant=tenant, action="membership.role_changed", context=context, obj=membership,
        extra={"user": membership.user.get_username(), "from": previous, "to": role},
    )
    return membership


def user_get_or_create(*, email: str, password: str | None = None) -> tuple[Any, bool]:
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    user = User(username=email, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    return user, True


@dataclass(frozen=True)
class CreatedInvitation:
    invitation: Invitation
    token: str


@transaction.atomic
def invitation_create(
    *, tenant: Tenant, actor: Membership | None, email: str, role: str = Membership.Role.MEMBER,
    context: AuditContext = SYSTEM,
) -> CreatedInvitation:
    """Invite an address to the tenant. The token for the e-mailed link is returned here once.

    Owners and admins invite; only owners invite owners. Inviting an address again renews its
    open invitation (new link, expiry and role); the old link stops working. SECURITY:
    nothing here reads or changes accounts, so the inviter learns nothing about whether the
    address has one, and nobody joins without accepting.
    """
    email = User.objects.normalize_email(email).strip().lower()
    if role not in Membership.Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", extra={"fields": {"role": ["Unknown role."]}})
    Tenant.objects.select_for_update().get(pk=tenant.pk)  # one open invitation per address, even in a race
    actor_role = _require_manager(tenant=tenant, actor=actor, action="invite members")
    if role == Membership.Role.OWNER and not _is_owner_or_system(actor_role, actor):
        message = "Only an owner can invite an owner."
        raise Forbidden(message, extra={"fields": {"role": [message]}})
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        message = f"{email} is already a member of {tenant.name}."
        raise InvalidState(message, extra={"fields": {"email": [message]}})
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.for_tenant(tenant).filter(email=email, accepted_at__isnull=True).first()
    if invitation is None:
        invitation = Invitation(tenant=tenant, email=email)
    invitation.role = role
    invitation.token_hash = hash_secret(token)  # 256 random bits: a fast hash is enough
    invitation.invited_by = context.user
    invitation.expires_at = timezone.now() + timedelta(days=settings.PARLA_INVITATION_DAYS)
    invitation.full_clean()
    invitation.save()
    audit_event_record(
        tenant=tenant, action="invitation.created", context=context, obj=invitation,
        extra={"email": email, "role": role},
    )
    return CreatedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_revoke(
    *, tenant: Tenant, actor: Membership | None, invitation: Invitation, context: AuditContext = SYSTEM
) -> None:
    """Withdraw an open invitation. Owners and admins withdraw them; only owners withdraw an
    invitation to become owner."""
    actor_role = _require_manager(tenant=tenant, actor=actor, action="withdraw invitations")
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().filter(pk=invitation.pk).first()
    if invitation is None:
        raise NotFound()
    if invitation.role == Membership.Role.OWNER and not _is_owner_or_system(actor_role, actor):
        raise Forbidden("Only an owner can withdraw an invitation to become owner.")
    if invitation.accepted_at is not None:
        raise InvalidState("This invitation was already accepted.")
    audit_event_record(
        tenant=tenant, action="invitation.revoked", context=context, obj=invitation,
        extra={"email": invitation.email, "role": invitation.role},
    )
    invitation.delete()


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user, context: AuditContext = SYSTEM) -> Membership:
    """The invited person joins the tenant with the invitation's role.

    SECURITY: only a user whose e-mail address is the invited one may accept; a forwarded or
    leaked link is no use to anybody else who is signed in.
    """
    tenant = invitation.tenant
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().filter(pk=invitation.pk).first()
    if invitation is None or not invitation.is_pending:
        raise NotFound("This invitation is no longer valid.")
    if (user.email or "").lower() != invitation.email:
        raise Forbidden("This invitation was sent to another e-mail address.")
    membership = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if membership is None:
        # actor=None: the invitation is the authority, and its role was checked when it was made.
        membership = membership_create(
            tenant=tenant, actor=None, user=user, role=invitation.role, context=context
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_event_record(
        tenant=tenant, action="invitation.accepted", context=context, obj=invitation,
        extra={"email": invitation.email, "role": membership.role},
    )
    return membership


@transaction.atomic
def invitation_accept_with_new_account(
    *, invitation: Invitation, password: str, context: AuditContext = SYSTEM
) -> Membership:
    """Someone invited without an account creates it (with this password) and joins."""
    exists = InvalidState("An account with this address exists: sign in to accept the invitation.")
    try:
        with transaction.atomic():
            user, created = user_get_or_create(email=invitation.email, password=password)
    except (IntegrityError, ValidationError):  # the address was taken by a concurrent request
        raise exists from None
    if not created:
        # SECURITY: never sign the visitor in to an account that already existed.
        raise exists
    return invitation_accept(invitation=invitation, user=user, context=replace(context, user=user))


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    plaintext: str


def api_key_create(
    *,
    tenant: Tenant,
    actor: Membership | None,
    name: str,
    scopes: list[str] | None = None,
    context: AuditContext = SYSTEM,
) -> CreatedApiKey:
    """Create a key; the plaintext is returned here once and never stored. Owners and admins
    create keys (actor None: a command, an operator, or a key holding the keys scope)."""
    _require_manager(tenant=tenant, actor=actor, action="manage API keys")
    scopes = sorted(set(ALL_SCOPES if scopes is None else scopes))
    if unknown := set(scopes) - set(ALL_SCOPES):
        raise ApplicationError("Unknown scopes.", extra={"fields": {"scopes": sorted(unknown)}})
    if not scopes:
        raise ApplicationError("A key needs at least one scope.", extra={"fields": {"scopes": []}})
    # SECURITY: a key can only mint keys with scopes it holds itself.
    if context.api_key is not None and not set(scopes) <= set(context.api_key.scopes):
        raise ApplicationError(
            "A key cannot grant scopes it does not have.",
            extra={"fields": {"scopes": sorted(set(scopes) - set(context.api_key.scopes))}},
        )
    if ApiKey.objects.for_tenant(tenant).filter(name=name).exists():
        raise ApplicationError(
            "An API key with this name already exists.",
            extra={"fields": {"name": ["An API key with this name already exists."]}},
        )
    for _attempt in range(3):
        generated = generate_key()
        try:
            with transaction.atomic():
                api_key = ApiKey(
                    tenant=tenant,
                    name=name,
                    prefix=generated.prefix,
                    secret_hash=generated.secret_hash,
                    scopes=scopes,
                    created_by=context.user,
                )
                api_key.full_clean(validate_unique=False, validate_constraints=False)
                api_key.save()
                audit_event_record(
                    tenant=tenant, action="api_key.created", context=context, obj=api_key,
                    extra={"scopes": scopes},
                )
                return CreatedApiKey(api_key=api_key, plaintext=generated.plaintext)
        except IntegrityError:
            # A prefix collision (rare) or a concurrent create with the same name.
            if ApiKey.objects.for_tenant(tenant).filter(name=name).exists():
                raise ApplicationError(
                    "An API key with this name already exists.",
                    extra={"fields": {"name": ["An API key with this name already exists."]}},
                ) from None
    raise InvalidState("Could not generate a unique key; try again.")


@transaction.atomic
def api_key_revoke(
    *, tenant: Tenant, actor: Membership | None, api_key: ApiKey, context: AuditContext = SYSTEM
) -> ApiKey:
    """Revoke at once. Revoking a revoked key is a no-op (DELETE is idempotent). Owners and
    admins revoke keys."""
    _require_manager(tenant=tenant, actor=actor, action="manage API keys")
    api_key = ApiKey.objects.for_tenant(tenant).select_for_update().filter(pk=api_key.pk).first()
    if api_key is None:
        raise NotFound()
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_event_record(tenant=tenant, action="api_key.revoked", context=context, obj=api_key)
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once per PARLA_API_KEY_TOUCH_SECONDS per key."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < (
        settings.PARLA_API_KEY_TOUCH_SECONDS
    ):
        return
    ApiKey.objects.for_tenant(api_key.tenant_id).filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


@transaction.atomic
def tenant_webhook_url_set(*, tenant: Tenant, url: str, context: AuditContext = SYSTEM) -> Tenant:
    """The default receiver of batch events (validated like every webhook URL)."""
    if url:
        webhook_url_validate(url, field="url")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    tenant.webhook_url = url
    tenant.full_clean()
    tenant.save(update_fields=["webhook_url", "updated_at"])
    audit_event_record(tenant=tenant, action="tenant.webhook_url_changed", context=context, obj=tenant,
                       extra={"url": url})
    return tenant
