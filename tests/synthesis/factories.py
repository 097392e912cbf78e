import factory
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from factory.django import DjangoModelFactory

from synthesis.models import SynthesisJob
from tests.tenants.factories import TenantFactory


class SynthesisJobFactory(DjangoModelFactory):
    """A finished job with stored audio (a few bytes standing in for a WAV)."""

    class Meta:
        model = SynthesisJob

    tenant = factory.SubFactory(TenantFactory)
    mode = SynthesisJob.Mode.ASYNC
    status = SynthesisJob.Status.SUCCEEDED
    voice_id = "piper:en_US-joe-medium"
    engine = "piper"
    queue_name = "synthesis-cpu"
    text = "Hello."
    characters = 6
    format = "wav"
    content_type = "audio/wav"
    sample_rate = 22050
    audio_seconds = 0.5
    size_bytes = 8
    storage_path = factory.LazyAttribute(
        lambda job: default_storage.save(f"tenants/{job.tenant.pk}/jobs/factory.wav", ContentFile(b"RIFFdata"))
    )
