import factory
from factory.django import DjangoModelFactory

from tests.tenants.factories import TenantFactory
from voices.models import VoiceProfile, VoiceReference


class VoiceProfileFactory(DjangoModelFactory):
    class Meta:
        model = VoiceProfile

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Voice {n}")
    kind = VoiceProfile.Kind.CATALOG
    engine = "piper"
    base_voice_id = "piper:en_US-joe-medium"
    status = VoiceProfile.Status.READY


class VoiceReferenceFactory(DjangoModelFactory):
    class Meta:
        model = VoiceReference

    profile = factory.SubFactory(VoiceProfileFactory, kind=VoiceProfile.Kind.MATCHED, engine="kokoro", base_voice_id="")
    tenant = factory.SelfAttribute("profile.tenant")
    storage_path = factory.Sequence(lambda n: f"tenants/x/voices/x/references/{n}.wav")
    speech_seconds = 5.0
    duration_seconds = 5.2
    sample_rate = 24000
    source_format = "wav"
    source_sample_rate = 48000
    source_channels = 1
    size_bytes = 250_000
    checksum = "0" * 64
