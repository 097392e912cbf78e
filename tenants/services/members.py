"""Writes for members and invitations, under the role rules of tenants.services.roles."""

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.errors import ApplicationError, Forbidden, InvalidState, NotFound
from tenants.keys import hash_secret
from tenants.models import Invitation, Membership, Tenant
from tenants.services.audit import SYSTEM, AuditContext, audit_event_record
from tenants.services.roles import manager_required, owner_or_system

User = get_user_model()


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
    actor_role = manager_required(tenant=tenant, actor=actor, action=action)
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
    actor_role = manager_required(tenant=tenant, actor=actor, action="add members")
    if role == Membership.Role.OWNER and not owner_or_system(actor_role, actor):
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
        if not owner_or_system(actor_role, actor):
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
    if Membership.Role.OWNER in (role, previous) and not owner_or_system(actor_role, actor):
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
    actor_role = manager_required(tenant=tenant, actor=actor, action="invite members")
    if role == Membership.Role.OWNER and not owner_or_system(actor_role, actor):
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
    actor_role = manager_required(tenant=tenant, actor=actor, action="withdraw invitations")
    invitation = Invitation.objects.for_tenant(tenant).select_for_update().filter(pk=invitation.pk).first()
    if invitation is None:
        raise NotFound()
    if invitation.role == Membership.Role.OWNER and not owner_or_system(actor_role, actor):
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

