"""The one way to read tenant data: `Model.objects.for_tenant(tenant)`."""

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from tenants.models import Tenant


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: "Tenant | int") -> "TenantQuerySet":
        tenant_id = getattr(tenant, "pk", tenant)
        if tenant_id is None:
            # SECURITY: a missing tenant must never widen a query to every tenant.
            raise ValueError("for_tenant() needs a tenant.")
        return self.filter(tenant_id=tenant_id)


class TenantOwnedModel(models.Model):
    """Base of every row that belongs to one tenant."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
