"""Writes for tenants: creation, settings, plan and status, the webhook receiver and secret."""

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from tenants.errors import ApplicationError
from tenants.models import Plan, Tenant, TenantQuota
from tenants.outbound import webhook_url_validate
from tenants.services.audit import SYSTEM, AuditContext, audit_event_record


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

