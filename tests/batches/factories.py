import factory
from factory.django import DjangoModelFactory

from batches.models import Batch
from tests.tenants.factories import TenantFactory


class BatchFactory(DjangoModelFactory):
    class Meta:
        model = Batch

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Batch {n}")
    voice_id = "piper:en_US-joe-medium"
    items_total = 0
    characters_total = 0
