"""Writes for API keys: created (the secret shown once), revoked, touched on use."""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.errors import ApplicationError, InvalidState, NotFound
from tenants.keys import generate_key
from tenants.models import ApiKey, Membership, Tenant
from tenants.services.audit import SYSTEM, AuditContext, audit_event_record
from tenants.services.roles import manager_required

ALL_SCOPES = [scope.value for scope in ApiKey.Scope]


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
    manager_required(tenant=tenant, actor=actor, action="manage API keys")
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
    manager_required(tenant=tenant, actor=actor, action="manage API keys")
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

