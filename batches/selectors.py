"""Reads for batches."""

from django.db.models import QuerySet

from batches.models import Batch, WebhookDelivery
from synthesis.models import SynthesisJob
from tenants.errors import NotFound
from tenants.models import Tenant


def batch_list(*, tenant: Tenant) -> QuerySet[Batch]:
    return Batch.objects.for_tenant(tenant)


def batch_get(*, tenant: Tenant | int, batch_id: int) -> Batch:
    batch = Batch.objects.for_tenant(tenant).filter(pk=batch_id).first()
    if batch is None:
        raise NotFound()
    return batch


def batch_items(*, tenant: Tenant, batch: Batch) -> QuerySet[SynthesisJob]:
    return SynthesisJob.objects.for_tenant(tenant).filter(batch=batch)


def batch_webhooks(*, tenant: Tenant, batch: Batch) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.for_tenant(tenant).filter(batch=batch)


def batch_item_get(*, tenant: Tenant, batch: Batch, job_id: int) -> SynthesisJob:
    item = SynthesisJob.objects.for_tenant(tenant).filter(batch=batch, pk=job_id).first()
    if item is None:
        raise NotFound()
    return item
