"""Writes for tenants, members, invitations, API keys and the audit log.

One module per subdomain; everything is importable from tenants.services as before:

- tenants.py: creation, settings, plan and status, the webhook receiver and secret.
- members.py: members and invitations.
- api_keys.py: API keys.
- roles.py: who may do what (the services above check it, not the views).
- audit.py: the audit log.
"""

from tenants.services.api_keys import (
    ALL_SCOPES,
    CreatedApiKey,
    api_key_create,
    api_key_revoke,
    api_key_touch,
)
from tenants.services.audit import SYSTEM, AuditContext, audit_event_record
from tenants.services.members import (
    CreatedInvitation,
    invitation_accept,
    invitation_accept_with_new_account,
    invitation_create,
    invitation_revoke,
    membership_create,
    membership_delete,
    membership_role_change,
    user_get_or_create,
)
from tenants.services.roles import MANAGER_ROLES
from tenants.services.tenants import (
    plan_default,
    tenant_create,
    tenant_update,
    tenant_webhook_secret_rotate,
    tenant_webhook_url_set,
)

__all__ = [
    "ALL_SCOPES",
    "MANAGER_ROLES",
    "SYSTEM",
    "AuditContext",
    "CreatedApiKey",
    "CreatedInvitation",
    "api_key_create",
    "api_key_revoke",
    "api_key_touch",
    "audit_event_record",
    "invitation_accept",
    "invitation_accept_with_new_account",
    "invitation_create",
    "invitation_revoke",
    "membership_create",
    "membership_delete",
    "membership_role_change",
    "plan_default",
    "tenant_create",
    "tenant_update",
    "tenant_webhook_secret_rotate",
    "tenant_webhook_url_set",
    "user_get_or_create",
]
