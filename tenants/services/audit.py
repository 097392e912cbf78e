"""The audit log: who did what to which object, from where."""

from dataclasses import dataclass
from typing import Any

from config.client_address import client_address
from tenants.models import ApiKey, AuditEvent, Tenant


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

